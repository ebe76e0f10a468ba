package admin

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testlog"
)

// TestHandlerPanicAnswered: a panic in an admin handler (here the metrics
// handler the gateway hands the admin port) is answered 500 with a JSON
// body and none of the headers the handler had set, and logged with its
// stack; a panic after the answer began cuts that answer instead of
// passing for a whole one; the port keeps serving.
func TestHandlerPanicAnswered(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("X-Test-Panic") {
		case "before":
			w.Header().Set("Content-Encoding", "gzip")
			panic("boom")
		case "after":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "metric_a 1\n")
			http.NewResponseController(w).Flush()
			panic("boom after")
		}
		_, _ = io.WriteString(w, "metric_a 1\n")
	})
	var logs testlog.Buffer
	srv := httptest.NewServer(Handler(Deps{Metrics: metrics, Log: slog.New(slog.NewTextHandler(&logs, nil))}))
	defer srv.Close()
	c := &http.Client{Timeout: 5 * time.Second}
	get := func(path, panicking string) (*http.Response, []byte, error) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("X-Test-Panic", panicking)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s (panic %q): %v", path, panicking, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}

	resp, b, err := get("/metrics", "before")
	var e struct {
		Error string `json:"error"`
	}
	if err != nil || resp.StatusCode != 500 || resp.Header.Get("Content-Type") != "application/json" ||
		json.Unmarshal(b, &e) != nil || e.Error == "" {
		t.Fatalf("a panic before the answer: %d %q %q (read: %v)", resp.StatusCode, resp.Header.Get("Content-Type"), b, err)
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" {
		t.Errorf("the 500 kept the handler's Content-Encoding %q", ce)
	}
	if l := logs.String(); !strings.Contains(l, "panic=boom") || !strings.Contains(l, "stack=") || !strings.Contains(l, "path=/metrics") {
		t.Errorf("the panic was not logged with its stack: %s", l)
	}

	resp, b, err = get("/metrics", "after")
	if err == nil {
		t.Errorf("a panic after the answer began passed for a whole answer: %d %q", resp.StatusCode, b)
	}
	if !strings.Contains(logs.String(), `panic="boom after"`) {
		t.Errorf("the second panic was not logged: %s", logs.String())
	}

	for _, path := range []string{"/metrics", "/healthz"} {
		if resp, b, err := get(path, "no"); err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s after the panics: %d %q %v", path, resp.StatusCode, b, err)
		}
	}
}
