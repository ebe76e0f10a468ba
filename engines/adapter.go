package engines

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
)

// Adapter describes one inference engine. Implementations are stateless
// and safe for concurrent use; ParseLoad must not block beyond reading r.
type Adapter interface {
	// Name is the registry key, e.g. "vllm".
	Name() string
	// Spec describes the engine's request protocol and probes.
	Spec() Spec
	// ParseLoad reads one Prometheus text exposition of the engine's
	// metrics. It fails with an error wrapping ErrMalformed (bad or cut
	// text, or every running/waiting value out of range) or
	// ErrNoLoadMetrics (none of the engine's load metrics present). Other
	// out-of-range values do not fail the parse: they are dropped and
	// counted in Load.Anomalies.
	ParseLoad(r io.Reader) (Load, error)
}

// ModelIn says where a request names its model.
type ModelIn string

const (
	// ModelInBody: the JSON body's "model" field (OpenAI-compatible APIs).
	ModelInBody ModelIn = "body:model"
	// ModelInPath: the URL path, /v2/models/{name}/infer (KServe v2).
	ModelInPath ModelIn = "path:/v2/models/{name}"
	// ModelInGRPCField: field 1 (model_name) of ModelInferRequest.
	ModelInGRPCField ModelIn = "grpc:model_name"
	// ModelInRoute: the Ray Serve application's route_prefix, plus the
	// optional serve_multiplexed_model_id header for multiplexed models.
	ModelInRoute ModelIn = "route_prefix"
	// ModelInServer: one model per server; the name in the body is ignored.
	ModelInServer ModelIn = "server"
)

// Stream names a streaming wire format.
type Stream string

const (
	// StreamSSE: text/event-stream, `data: {json}\n\n` chunks ending with
	// `data: [DONE]` (OpenAI-compatible).
	StreamSSE Stream = "sse"
	// StreamSSENoDone: SSE without the [DONE] terminator (TGI /generate_stream).
	StreamSSENoDone Stream = "sse-no-done"
	// StreamGRPC: a bidirectional gRPC stream (KServe ModelStreamInfer).
	StreamGRPC Stream = "grpc-stream"
	// StreamNone: no streaming on this endpoint.
	StreamNone Stream = "none"
)

// Endpoint is one request path an engine serves.
type Endpoint struct {
	Method string  `json:"method"`
	Path   string  `json:"path"`
	Model  ModelIn `json:"model"`
	Stream Stream  `json:"stream"`
}

// Spec is the static description of an engine.
type Spec struct {
	// DefaultPort is the engine's usual serving port.
	DefaultPort int `json:"default_port"`
	// Endpoints lists the inference paths.
	Endpoints []Endpoint `json:"endpoints"`
	// MetricsPath and MetricsPort give the Prometheus endpoint (port 0 =
	// the serving port).
	MetricsPath string `json:"metrics_path"`
	MetricsPort int    `json:"metrics_port,omitempty"`
	// LivePath answers 200 while the process is up.
	LivePath string `json:"live_path"`
	// ReadyPath answers 200 when the engine accepts requests.
	ReadyPath string `json:"ready_path"`
	// HealthPort is the port of LivePath and ReadyPath (0 = the serving
	// port). MindIE answers them on its management port.
	HealthPort int `json:"health_port,omitempty"`
	// ManagementAddr is the address the engine binds its management and
	// metrics listeners to by default when that differs from the serving
	// address (MindIE: 127.0.0.2), so a scrape must target it.
	ManagementAddr string `json:"management_addr,omitempty"`
	// TLS means the engine serves HTTPS by default (MindIE:
	// ServerConfig.httpsEnabled is true in its shipped config.json).
	TLS bool `json:"tls,omitempty"`
	// MetricsNeed says what must be set on the engine for MetricsPath to
	// answer, e.g. "--enable-metrics"; errors from Scrape repeat it.
	MetricsNeed string `json:"metrics_need,omitempty"`
	// BusyOnReady503 means a 503 from ReadyPath while LivePath answers 200
	// says "busy" (alive, saturated), not "down" (MindIE).
	BusyOnReady503 bool `json:"busy_on_ready_503,omitempty"`
	// Notes explains anything the fields do not.
	Notes string `json:"notes,omitempty"`
}

// MetricsURL returns the metrics URL of the engine on host (no port;
// "" means ManagementAddr when set, else 127.0.0.1), with https when TLS
// is on by default.
func (s Spec) MetricsURL(host string) string {
	port := s.MetricsPort
	if port == 0 {
		port = s.DefaultPort
	}
	return s.base(host, port) + s.MetricsPath
}

// HealthBase returns the base URL for LivePath and ReadyPath on host (as
// for MetricsURL), for ProbeHealth.
func (s Spec) HealthBase(host string) string {
	port := s.HealthPort
	if port == 0 {
		port = s.DefaultPort
	}
	return s.base(host, port)
}

func (s Spec) base(host string, port int) string {
	scheme := "http"
	if s.TLS {
		scheme = "https"
	}
	if host == "" {
		host = s.ManagementAddr
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// Health is the meaning of a probe answer.
type Health string

const (
	HealthReady    Health = "ready"     // accepts requests
	HealthBusy     Health = "busy"      // alive but saturated: route elsewhere for now
	HealthNotReady Health = "not-ready" // alive, loading or draining
	HealthDown     Health = "down"      // no answer or server error
)

// ClassifyReady maps the HTTP status of the ready probe (and whether the
// live probe answered 200) to a Health. status 0 means no answer.
func (s Spec) ClassifyReady(status int, live bool) Health {
	switch {
	case status == http.StatusOK:
		return HealthReady
	case status == http.StatusServiceUnavailable && s.BusyOnReady503 && live:
		return HealthBusy
	case status == 0:
		return HealthDown
	case live:
		return HealthNotReady
	default:
		return HealthDown
	}
}

var (
	regMu    sync.RWMutex
	registry = map[string]Adapter{}
	aliases  = map[string]string{}
)

// Register adds an adapter under its Name and optional aliases. It is
// meant for init functions and panics on a duplicate name, which is a
// programming error.
func Register(a Adapter, alias ...string) {
	regMu.Lock()
	defer regMu.Unlock()
	name := a.Name()
	if _, dup := registry[name]; dup {
		panic("BUG: engines: adapter " + name + " registered twice")
	}
	registry[name] = a
	for _, al := range alias {
		aliases[al] = name
	}
}

// Lookup returns the adapter registered under name or an alias. The
// error wraps ErrUnknownEngine.
func Lookup(name string) (Adapter, error) {
	regMu.RLock()
	defer regMu.RUnlock()
	if a, ok := registry[name]; ok {
		return a, nil
	}
	if n, ok := aliases[name]; ok {
		return registry[n], nil
	}
	return nil, fmt.Errorf("engines: %q: %w (known: %v)", name, ErrUnknownEngine, namesLocked())
}

// Names returns the registered adapter names, sorted.
func Names() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	return namesLocked()
}

func namesLocked() []string {
	out := make([]string, 0, len(registry))
	for n := range registry {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
