package route

import (
	"bytes"
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/v1/chat/completions", "/v1/chat/completions"},
		{"/", "/"},
		{"/v1//chat///completions", "/v1/chat/completions"},
		{"/v1/./chat/completions", "/v1/chat/completions"},
		{"/v1/x/../chat/completions", "/v1/chat/completions"},
		{"/v1/chat/completions/.", "/v1/chat/completions/"},
		{"/v1/chat/x/..", "/v1/chat/"},
		{"/v1/%63hat/completions", "/v1/chat/completions"},
		{"/v1/%2e%2e/v1/models", "/v1/models"},
		{"/v2/models/a%20b/infer", "/v2/models/a b/infer"},
		{"/.well-known/x", "/.well-known/x"},
		{"/a/..b/c", "/a/..b/c"},
	}
	for _, tc := range tests {
		got, err := NormalizePath([]byte(tc.in), nil)
		if err != nil || string(got) != tc.want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "v1/models", "/..", "/v1/../../etc", "/v1/chat%2Fcompletions", "/v1/%5c", "/v1/%00", "/v1/%zz", "/v1/%4", "/v1/\x01", "/v1/%25", "/%2e%2e/%2e%2e"} {
		if got, err := NormalizePath([]byte(bad), nil); !errors.Is(err, ErrBadPath) {
			t.Errorf("NormalizePath(%q) = %q, %v; want ErrBadPath", bad, got, err)
		}
	}
	// A normal path costs no copy and no allocation.
	p := []byte("/v1/chat/completions")
	if got, _ := NormalizePath(p, nil); &got[0] != &p[0] {
		t.Error("a normal path was copied")
	}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { _, _ = NormalizePath([]byte("/v1//x/../chat/completions"), buf) }); n != 0 {
		t.Errorf("NormalizePath allocates %v", n)
	}
}

// FuzzNormalizePath: the result is normal (a fixed point, no dot or empty
// segments), and for paths without escapes it agrees with path.Clean.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/v1/chat/completions", "/a//b/../c/./d/", "/%2e%2e/x", "/x/%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 1<<12 {
			return
		}
		got, err := NormalizePath([]byte(in), nil)
		if err != nil {
			return
		}
		again, err := NormalizePath(got, nil)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("%q -> %q -> %q, %v: not a fixed point", in, got, again, err)
		}
		if !isNormal(got) && !strings.Contains(string(got), "/.") {
			t.Fatalf("%q -> %q is not normal", in, got)
		}
		for _, seg := range strings.Split(string(got), "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q -> %q keeps a dot segment", in, got)
			}
		}
		if !strings.Contains(in, "%") {
			want := path.Clean(in)
			if strings.HasSuffix(in, "/") || strings.HasSuffix(in, "/.") || strings.HasSuffix(in, "/..") {
				if want != "/" {
					want += "/"
				}
			}
			if string(got) != want {
				t.Fatalf("%q -> %q, path.Clean gives %q", in, got, want)
			}
		} else if u, perr := url.PathUnescape(in); perr == nil && !strings.ContainsAny(u, "\\%") && !strings.Contains(in, "%2f") && !strings.Contains(in, "%2F") {
			_ = u // decoded forms are checked by the fixed-point test above
		}
	})
}

func TestAllowlist(t *testing.T) {
	a := newAllowlist([]string{"/v1/tokenize", "/admin-ok/", "/debug*"}, "/summarize", "")
	for _, p := range []string{
		"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/v1/models",
		"/v2", "/v2/health/ready", "/v2/models/resnet", "/v2/models/resnet/infer", "/v2/models/resnet/ready",
		"/v2/models/llama/generate_stream", "/v2/models/resnet/versions/3/infer", "/v2/models/resnet/versions/3",
		"/inference.GRPCInferenceService/ModelInfer", "/inference.GRPCInferenceService/ModelStreamInfer",
		"/v1/tokenize", "/admin-ok/x", "/debugging", "/summarize", "/summarize/run",
	} {
		if !a.allows([]byte(p)) {
			t.Errorf("%s refused", p)
		}
	}
	for _, p := range []string{
		"/sleep", "/wake_up", "/v1/load_lora_adapter", "/v1/unload_lora_adapter", "/update_weights_from_disk",
		"/v2/repository/models/resnet/load", "/v2/repository/index", "/metrics", "/health",
		"/v2/models/resnet/trace/setting", "/v2/models/resnet/versions/3/infer/x", "/v2/models//infer",
		"/inference.GRPCInferenceService/RepositoryModelLoad", "/v1/chat/completions/x", "/summarizer", "/admin-ok",
	} {
		if a.allows([]byte(p)) {
			t.Errorf("%s allowed", p)
		}
	}
}
