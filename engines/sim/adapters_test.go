package sim

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard-dev/switchyard/engines"
	_ "github.com/switchyard-dev/switchyard/engines/all"
	"github.com/switchyard-dev/switchyard/engines/kserve"
	"github.com/switchyard-dev/switchyard/engines/triton"
	"github.com/switchyard-dev/switchyard/engines/vllm"
)

// TestAdaptersAgainstSim checks the engines package's own probes against
// the sim: the vllm adapter scrapes its load, and the health probes of
// the vllm and triton specs read draining and slow start correctly.
func TestAdaptersAgainstSim(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	n := start(t, Config{Model: "m", Override: fast, StartupDelay: time.Hour})
	if h := engines.ProbeHealth(ctx, nil, n.URL(), triton.Spec); h != engines.HealthNotReady {
		t.Errorf("starting (kserve spec): %s", h)
	}
	n2 := start(t, Config{Model: "m", Override: fast})
	l, err := engines.Scrape(ctx, nil, n2.URL()+vllm.Spec.MetricsPath, mustLookup(t, "vllm"))
	if err != nil || l.Running.String() != "0" || l.KVCache.String() != "0" {
		t.Errorf("scrape: %+v %v", l, err)
	}
	if h := engines.ProbeHealth(ctx, nil, n2.URL(), vllm.Spec); h != engines.HealthReady {
		t.Errorf("ready: %s", h)
	}
	n2.Drain()
	if h := engines.ProbeHealth(ctx, nil, n2.URL(), triton.Spec); h != engines.HealthNotReady {
		t.Errorf("draining (kserve spec): %s", h)
	}
	n2.Crash()
	if h := engines.ProbeHealth(ctx, nil, n2.URL(), vllm.Spec); h != engines.HealthDown {
		t.Errorf("crashed: %s", h)
	}
	if _, err := engines.Scrape(ctx, http.DefaultClient, n2.URL()+"/metrics", mustLookup(t, "vllm")); err == nil {
		t.Error("scrape of a crashed node succeeded")
	}
}

func mustLookup(t *testing.T, name string) engines.Adapter {
	t.Helper()
	a, err := engines.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestGRPCCrashCutsInFlight: a crash ends an in-flight ModelInfer with
// Unavailable instead of leaving it hanging.
func TestGRPCCrashCutsInFlight(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	n := start(t, Config{Model: "m", GRPCListen: "127.0.0.1:0", Override: Profile{Prefill: time.Hour}})
	cc := dial(t, n.GRPCAddr())
	errc := make(chan error, 1)
	go func() {
		var out []byte
		errc <- cc.Invoke(ctx, kserve.ModelInfer, kserve.InferRequest{ModelName: "m"}.Marshal(), &out)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for n.Stats().Running == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	n.Crash()
	select {
	case err := <-errc:
		if status.Code(err) != codes.Unavailable {
			t.Errorf("in-flight call after crash: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("in-flight call still hanging after crash")
	}
}

// TestEngineDialects: with Engine set, the sim's /metrics is read by the
// matching adapter, and MindIE's ready probe says busy when saturated.
func TestEngineDialects(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	for _, eng := range []string{"vllm", "sglang", "tgi", "triton", "mindie"} {
		t.Run(eng, func(t *testing.T) {
			n := start(t, Config{Model: "m", Engine: eng, Override: Profile{Slots: 1, Prefill: time.Hour}})
			go func() {
				req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/completions", strings.NewReader(`{"prompt":"x"}`))
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			go func() {
				req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/completions", strings.NewReader(`{"prompt":"x"}`))
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			deadline := time.Now().Add(5 * time.Second)
			for (n.Stats().Running != 1 || n.Stats().Waiting != 1) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			l, err := engines.Scrape(ctx, nil, n.URL()+"/metrics", mustLookup(t, eng))
			if err != nil {
				t.Fatal(err)
			}
			wantRunning := "1"
			if eng == "triton" {
				wantRunning = "unknown" // Triton exports no running gauge
			}
			if l.Running.String() != wantRunning || l.Waiting.String() != "1" {
				t.Errorf("load %+v", l)
			}
			spec := mustLookup(t, eng).Spec()
			want := engines.HealthReady
			if eng == "mindie" {
				want = engines.HealthBusy
			}
			if h := engines.ProbeHealth(ctx, nil, n.URL(), spec); h != want {
				t.Errorf("health %s, want %s", h, want)
			}
		})
	}
}
