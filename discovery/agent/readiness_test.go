package agent_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/agent"
)

// TestReadinessToleratesOneLostProbe: an engine that was serving is
// reported not ready after two probes in a row find it down, not after
// one (a probe lost on a loaded host); it is ready again at the first
// good answer; before it has ever answered it is not ready.
func TestReadinessToleratesOneLostProbe(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusInternalServerError)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	probe, err := agent.EngineReadiness("vllm", srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		status int
		want   discovery.Readiness
	}{
		{500, discovery.ReadinessNotReady}, // never answered yet
		{200, discovery.ReadinessReady},
		{500, discovery.ReadinessReady}, // one lost probe
		{200, discovery.ReadinessReady},
		{500, discovery.ReadinessReady},
		{500, discovery.ReadinessNotReady}, // two in a row
		{500, discovery.ReadinessNotReady},
		{200, discovery.ReadinessReady},
	}
	for i, s := range steps {
		status.Store(int32(s.status))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got := probe(ctx)
		cancel()
		if got != s.want {
			t.Fatalf("step %d (health %d): %v, want %v", i, s.status, got, s.want)
		}
	}
	// No answer at all counts as down too.
	srv.Close()
	for i, want := range []discovery.Readiness{discovery.ReadinessReady, discovery.ReadinessNotReady} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got := probe(ctx)
		cancel()
		if got != want {
			t.Fatalf("closed server, probe %d: %v, want %v", i, got, want)
		}
	}
}
