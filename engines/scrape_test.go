package engines_test

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/engines"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serve answers path → (status, body) and 404 otherwise.
func serve(t *testing.T, tlsOn bool, routes map[string]func(w http.ResponseWriter)) *httptest.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, ok := routes[r.URL.Path]; ok {
			f(w)
			return
		}
		http.NotFound(w, r)
	})
	s := httptest.NewUnstartedServer(h)
	// The TLS cases make the server log handshake errors: not ours to see.
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsOn {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func body(b []byte) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) { _, _ = w.Write(b) }
}

func status(code int) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) { w.WriteHeader(code) }
}

func TestScrapeSGLangFallsBackToLoads(t *testing.T) {
	ctx := testCtx(t)
	s := serve(t, false, map[string]func(http.ResponseWriter){"/v1/loads": body(fixture(t, "sglang/v1-loads-dp2-derived.json"))})
	l, err := engines.Scrape(ctx, nil, s.URL+"/metrics", lookup(t, "sglang"))
	if err != nil || l.Source != "/v1/loads" || l.Running.String() != "21" || l.Waiting.String() != "3" {
		t.Fatalf("load %+v err %v", l, err)
	}
	// With metrics enabled the metrics win.
	s2 := serve(t, false, map[string]func(http.ResponseWriter){
		"/metrics":  body(fixture(t, "sglang/metrics-production-metrics-docs-llama3.1-8b.prom")),
		"/v1/loads": body(fixture(t, "sglang/v1-loads-dp2-derived.json")),
	})
	l, err = engines.Scrape(ctx, nil, s2.URL+"/metrics", lookup(t, "sglang"))
	if err != nil || l.Source != "metrics" || l.Running.String() != "162" {
		t.Fatalf("load %+v err %v", l, err)
	}
	// Neither: the error names both.
	s3 := serve(t, false, nil)
	_, err = engines.Scrape(ctx, nil, s3.URL+"/metrics", lookup(t, "sglang"))
	if err == nil || !strings.Contains(err.Error(), "fallback") || !strings.Contains(err.Error(), "/v1/loads: status 404") {
		t.Errorf("err = %v", err)
	}
	// No fallback for vLLM: a 404 is an error.
	if _, err := engines.Scrape(ctx, nil, s3.URL+"/metrics", lookup(t, "vllm")); err == nil || !strings.Contains(err.Error(), "status 404") {
		t.Errorf("vllm 404: %v", err)
	}
}

// TestScrapeMindIEHints: each way a MindIE scrape is misconfigured gets
// an error that says what is missing.
func TestScrapeMindIEHints(t *testing.T) {
	ctx := testCtx(t)
	mindie := lookup(t, "mindie")
	metrics := fixture(t, "ascend/mindie-motor-api-doc-metrics-llama3-8b.prom")

	off := serve(t, false, map[string]func(http.ResponseWriter){"/metrics": status(http.StatusServiceUnavailable)})
	empty := serve(t, false, map[string]func(http.ResponseWriter){"/metrics": body(nil)})
	tlsOn := serve(t, true, map[string]func(http.ResponseWriter){"/metrics": body(metrics)})
	plain := serve(t, false, map[string]func(http.ResponseWriter){"/metrics": body(metrics)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	cases := []struct {
		name, url string
		client    *http.Client
		mention   string
	}{
		{"monitor mode off (503)", off.URL + "/metrics", nil, "MIES_SERVICE_MONITOR_MODE=1"},
		{"monitor mode off (empty)", empty.URL + "/metrics", nil, "MIES_SERVICE_MONITOR_MODE=1"},
		{"http to the https default", "http://" + strings.TrimPrefix(tlsOn.URL, "https://") + "/metrics", nil, "serves HTTPS by default"},
		{"https to a plain server", "https://" + strings.TrimPrefix(plain.URL, "http://") + "/metrics", nil, "plain HTTP"},
		{"untrusted certificate", tlsOn.URL + "/metrics", &http.Client{Timeout: 5 * time.Second}, "certificate is not trusted"},
		{"wrong address", closed + "/metrics", nil, "management address, by default 127.0.0.2 port 1027"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := engines.Scrape(ctx, c.client, c.url, mindie)
			if err == nil || !strings.Contains(err.Error(), c.mention) {
				t.Errorf("err = %v, want it to mention %q", err, c.mention)
			}
		})
	}
	// Configured right (HTTPS, trusted CA): the load.
	l, err := engines.Scrape(ctx, tlsOn.Client(), tlsOn.URL+"/metrics", mindie)
	if err != nil || l.KVCache.String() != "1" || l.PrefixCacheHitRate.String() != "0.5" {
		t.Errorf("load %+v err %v", l, err)
	}
}

func TestScrapeTRTLLMServeNeedsFlags(t *testing.T) {
	ctx := testCtx(t)
	// trtllm-serve without return_perf_metrics has no /prometheus/metrics.
	s := serve(t, false, nil)
	_, err := engines.Scrape(ctx, nil, s.URL+"/prometheus/metrics", lookup(t, "trtllm-serve"))
	if err == nil || !strings.Contains(err.Error(), "enable_iter_perf_stats") {
		t.Errorf("err = %v", err)
	}
}
