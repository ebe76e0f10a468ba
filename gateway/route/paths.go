package route

import (
	"bytes"
	"errors"
	"strings"
)

// ErrBadPath: a request path the gateway refuses to interpret — not
// absolute, a malformed or forbidden percent-escape (an encoded slash,
// backslash or control character, which engines decode differently), or
// a path that climbs above the root. It answers 400.
var ErrBadPath = errors.New("gateway: malformed request path")

// NormalizePath writes the normal form of an absolute request path (no
// query) into dst and returns it: percent-escapes of ordinary characters
// decoded, "//" collapsed, "." and ".." segments resolved (RFC 3986
// §5.2.4). Routing and the allowlist see this form, and it is what the
// node receives, so the gateway and the engine cannot read one path two
// ways. A path that is already normal is returned as it is (no copy).
func NormalizePath(p, dst []byte) ([]byte, error) {
	if len(p) == 0 || p[0] != '/' {
		return nil, ErrBadPath
	}
	if isNormal(p) {
		return p, nil
	}
	out := dst[:0]
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c == '%' {
			if i+2 >= len(p) || unhex(p[i+1]) < 0 || unhex(p[i+2]) < 0 {
				return nil, ErrBadPath
			}
			c = byte(unhex(p[i+1])<<4 | unhex(p[i+2]))
			i += 2
			if c == '/' || c == '\\' || c < 0x20 || c == 0x7f || c == '%' {
				return nil, ErrBadPath
			}
		} else if c < 0x20 || c == 0x7f {
			return nil, ErrBadPath
		}
		out = append(out, c)
	}
	return removeDots(out)
}

// isNormal reports a path with nothing to normalise: no escapes, no empty
// or dot segments, no control characters.
func isNormal(p []byte) bool {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '%' || c < 0x20 || c == 0x7f:
			return false
		case c == '/' && i+1 < len(p) && (p[i+1] == '/' || p[i+1] == '.'):
			return false
		}
	}
	return true
}

// removeDots collapses "//" and resolves "." and ".." in place. A ".."
// above the root is an error (a path that tries it is not a mistake).
func removeDots(p []byte) ([]byte, error) {
	out := p[:0]
	for i := 0; i < len(p); {
		// p[i] is '/': read the segment after it.
		j := i + 1
		for j < len(p) && p[j] != '/' {
			j++
		}
		seg := p[i+1 : j]
		last := j == len(p)
		switch {
		case len(seg) == 0 && !last: // "//"
		case string(seg) == ".":
			if last {
				out = append(out, '/')
			}
		case string(seg) == "..":
			k := bytes.LastIndexByte(out, '/')
			if k < 0 {
				return nil, ErrBadPath
			}
			out = out[:k]
			if last {
				out = append(out, '/')
			}
		default:
			out = append(out, '/')
			out = append(out, seg...)
		}
		i = j
	}
	if len(out) == 0 {
		out = append(out, '/')
	}
	return out, nil
}

// The inference APIs every route allows by default: the OpenAI API (as
// vLLM, SGLang, TGI, TensorRT-LLM and MindIE serve it), the KServe v2 /
// Open Inference Protocol data plane over HTTP (inference, readiness and
// metadata; not the repository's load/unload) and over gRPC. Engine
// control paths — vLLM's /sleep and LoRA loading, SGLang's weight
// updates, Triton's model load/unload, metrics — are never forwarded
// unless a route's allow_paths names them.
var (
	defaultExact = []string{
		"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses",
		"/v1/models", "/v1/rerank", "/v1/score", "/v1/audio/transcriptions", "/v1/audio/translations",
		"/v2", "/v2/health/live", "/v2/health/ready",
		"/inference.GRPCInferenceService/ModelInfer", "/inference.GRPCInferenceService/ModelStreamInfer",
		"/inference.GRPCInferenceService/ModelReady", "/inference.GRPCInferenceService/ModelMetadata",
		"/inference.GRPCInferenceService/ServerLive", "/inference.GRPCInferenceService/ServerReady",
		"/inference.GRPCInferenceService/ServerMetadata",
	}
	// kserveVerbs are what may follow /v2/models/{name}[/versions/{v}].
	kserveVerbs = []string{"", "/infer", "/ready", "/generate", "/generate_stream"}
)

// allowlist is one route's allowed paths: exact paths and prefixes
// (written with a trailing "/" or "*" in allow_paths), checked after
// normalisation.
type allowlist struct {
	exact    map[string]struct{}
	prefixes []string // whole segments: the prefix, or under it
	stars    []string // any path starting with it ("/debug*")
}

func newAllowlist(extra []string, rayPrefix, pathPrefix string) allowlist {
	a := allowlist{exact: make(map[string]struct{}, len(defaultExact)+len(extra))}
	for _, p := range defaultExact {
		a.exact[p] = struct{}{}
	}
	for _, p := range extra {
		switch {
		case strings.HasSuffix(p, "*"):
			a.stars = append(a.stars, strings.TrimSuffix(p, "*"))
		case strings.HasSuffix(p, "/") && len(p) > 1:
			a.prefixes = append(a.prefixes, p)
		default:
			a.exact[p] = struct{}{}
		}
	}
	// A Ray application's or a path-prefix route's API is whatever lives
	// under its prefix.
	for _, p := range []string{rayPrefix, pathPrefix} {
		if p != "" {
			a.prefixes = append(a.prefixes, p)
		}
	}
	return a
}

// allows reports whether the normalised path p may reach the route's
// nodes.
func (a *allowlist) allows(p []byte) bool {
	if _, ok := a.exact[string(p)]; ok {
		return true
	}
	if isKServeModelPath(p) {
		return true
	}
	for _, pre := range a.prefixes {
		if hasPathPrefix(p, pre) {
			return true
		}
	}
	for _, pre := range a.stars {
		if bytes.HasPrefix(p, []byte(pre)) {
			return true
		}
	}
	return false
}

// hasPathPrefix: p is pre, or lies under it (pre ends with "/", or the
// next byte of p is "/").
func hasPathPrefix(p []byte, pre string) bool {
	if len(p) < len(pre) || string(p[:len(pre)]) != pre {
		return false
	}
	return len(p) == len(pre) || pre[len(pre)-1] == '/' || p[len(pre)] == '/'
}

// isKServeModelPath: /v2/models/{name}[/versions/{v}]{"", /infer, /ready,
// /generate, /generate_stream}.
func isKServeModelPath(p []byte) bool {
	rest, ok := bytes.CutPrefix(p, []byte(kservePrefix))
	if !ok {
		return false
	}
	i := bytes.IndexByte(rest, '/')
	if i == 0 {
		return false
	}
	if i < 0 {
		return len(rest) > 0
	}
	rest = rest[i:]
	if v, ok := bytes.CutPrefix(rest, []byte("/versions/")); ok {
		j := bytes.IndexByte(v, '/')
		if j == 0 || len(v) == 0 {
			return false
		}
		if j < 0 {
			return true
		}
		rest = v[j:]
	}
	for _, verb := range kserveVerbs {
		if string(rest) == verb {
			return true
		}
	}
	return false
}
