package scrape

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/sim"
)

// harness runs a Scraper and forwards every OnResult to a channel.
type harness struct {
	s       *Scraper
	results chan Target
	cancel  context.CancelFunc
	done    chan struct{}
}

func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{results: make(chan Target, 4096), done: make(chan struct{})}
	cfg.OnResult = func(tg Target) {
		select {
		case h.results <- tg:
		default: // the test reads results with Result; a full channel only drops a wake-up
		}
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { _ = s.Run(ctx); close(h.done) }()
	t.Cleanup(h.stop)
	return h
}

// stop cancels Run and waits for it: every scrape goroutine has ended.
func (h *harness) stop() {
	h.cancel()
	<-h.done
}

// waitResult waits until tg's result satisfies ok, or fails the test after
// 10 s (the scrapes are real HTTP on loopback).
func (h *harness) waitResult(t *testing.T, tg Target, what string, ok func(Result) bool) Result {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		if r, have := h.s.Result(tg); have && ok(r) {
			return r
		}
		select {
		case <-h.results:
		case <-deadline.C:
			r, _ := h.s.Result(tg)
			t.Fatalf("%s: %s: not seen within 10s; last result %+v", tg.URL, what, r)
		}
	}
}

func simNode(t *testing.T, engine string) *sim.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	n, err := sim.Start(ctx, sim.Config{Engine: engine, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func TestScrapeSimEngines(t *testing.T) {
	h := start(t, Config{Interval: MinInterval, Timeout: 2 * time.Second})
	var ts []Target
	for _, e := range []string{"vllm", "sglang", "tgi", "triton", "mindie"} {
		ts = append(ts, Target{URL: simNode(t, e).URL() + "/metrics", Engine: e})
	}
	if err := h.s.Set(ts); err != nil {
		t.Fatal(err)
	}
	for _, tg := range ts {
		r := h.waitResult(t, tg, "a good scrape", Result.Fresh)
		if r.Load.Engine != tg.Engine {
			t.Errorf("%s: load engine %q", tg.Engine, r.Load.Engine)
		}
		// Every dialect but Triton's reports running requests (the Triton
		// adapter reads only nv_inference_pending_request_count).
		if run, ok := r.Load.Running.Get(); (!ok && tg.Engine != "triton") || run != 0 {
			t.Errorf("%s: idle sim node: running %v, want known 0", tg.Engine, r.Load.Running)
		}
	}
}

// A hung target and a failing one get error results while a good target
// keeps being scraped, even with one scrape slot.
func TestScrapeHangAndFailureDoNotBlockOthers(t *testing.T) {
	good := Target{URL: simNode(t, "vllm").URL() + "/metrics", Engine: "vllm"}
	hung := simNode(t, "vllm")
	hung.Fail(sim.ModeHang)
	hungT := Target{URL: hung.URL() + "/metrics", Engine: "vllm"}
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	t.Cleanup(failing.Close)
	failT := Target{URL: failing.URL + "/metrics", Engine: "vllm"}
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "# HELP nothing_useful x\nnothing_useful 1\n")
	}))
	t.Cleanup(garbage.Close)
	garbageT := Target{URL: garbage.URL + "/metrics", Engine: "vllm"}

	const timeout = 300 * time.Millisecond
	h := start(t, Config{Interval: MinInterval, Timeout: timeout, Concurrency: 1})
	if err := h.s.Set([]Target{good, hungT, failT, garbageT}); err != nil {
		t.Fatal(err)
	}
	r := h.waitResult(t, hungT, "a timeout", func(r Result) bool { return r.Err != nil })
	if !strings.Contains(r.Err.Error(), "no answer within") || r.Fresh() || !r.At.IsZero() {
		t.Errorf("hung target: %+v", r)
	}
	r = h.waitResult(t, failT, "a status error", func(r Result) bool { return r.Err != nil })
	if !strings.Contains(r.Err.Error(), "status 500") {
		t.Errorf("failing target: %v", r.Err)
	}
	r = h.waitResult(t, garbageT, "a parse error", func(r Result) bool { return r.Err != nil })
	if !errors.Is(r.Err, engines.ErrNoLoadMetrics) {
		t.Errorf("garbage target: %v, want ErrNoLoadMetrics", r.Err)
	}
	// While the hung target keeps timing out, the good one is scraped
	// again and again: three more good scrapes than it had once the hung
	// one failed for the second time.
	h.waitResult(t, hungT, "a second timeout", func(r Result) bool { return r.Failures >= 2 })
	g0, _ := h.s.Result(good)
	r = h.waitResult(t, good, "3 more good scrapes", func(r Result) bool { return r.Scrapes >= g0.Scrapes+3 })
	if !r.Fresh() {
		t.Errorf("good target: %+v", r)
	}
}

// A target that fails and comes back gets a fresh load again; its
// failure count resets.
func TestScrapeRecovery(t *testing.T) {
	var mu sync.Mutex
	down := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := down
		mu.Unlock()
		if d {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "vllm:num_requests_running{model_name=\"m\"} 3\nvllm:num_requests_waiting{model_name=\"m\"} 1\n")
	}))
	t.Cleanup(srv.Close)
	tg := Target{URL: srv.URL + "/metrics", Engine: "vllm"}
	h := start(t, Config{Interval: MinInterval})
	if err := h.s.Set([]Target{tg}); err != nil {
		t.Fatal(err)
	}
	h.waitResult(t, tg, "two failures", func(r Result) bool { return r.Failures >= 2 })
	mu.Lock()
	down = false
	mu.Unlock()
	r := h.waitResult(t, tg, "recovery", Result.Fresh)
	if r.Failures != 0 || r.Load.Running.Or(-1) != 3 || r.Load.Waiting.Or(-1) != 1 {
		t.Errorf("after recovery: %+v", r)
	}
}

// Removed targets are forgotten and their loops end; kept ones keep their
// result; bad targets are reported and left out.
func TestScrapeSet(t *testing.T) {
	a := Target{URL: simNode(t, "vllm").URL() + "/metrics", Engine: "vllm"}
	b := Target{URL: simNode(t, "sglang").URL() + "/metrics", Engine: "sglang"}
	h := start(t, Config{Interval: MinInterval})
	if err := h.s.Set([]Target{a, b, a}); err != nil {
		t.Fatal(err)
	}
	h.waitResult(t, a, "a good scrape", Result.Fresh)
	h.waitResult(t, b, "a good scrape", Result.Fresh)
	ra, _ := h.s.Result(a)

	bad := []Target{{URL: "http://127.0.0.1:1/metrics", Engine: "no-such-engine"}, {URL: "ftp://x/metrics", Engine: "vllm"}, {URL: "/metrics", Engine: "vllm"}}
	err := h.s.Set(append([]Target{a}, bad...))
	if !errors.Is(err, ErrTarget) || !errors.Is(err, engines.ErrUnknownEngine) {
		t.Fatalf("Set with bad targets: %v", err)
	}
	for _, tg := range bad {
		if !strings.Contains(err.Error(), tg.URL) {
			t.Errorf("error does not name %q: %v", tg.URL, err)
		}
	}
	if got := h.s.Targets(); len(got) != 1 || got[0] != a {
		t.Fatalf("targets after Set: %v", got)
	}
	if _, ok := h.s.Result(b); ok {
		t.Error("removed target still has a result")
	}
	if r, ok := h.s.Result(a); !ok || r.Scrapes < ra.Scrapes {
		t.Errorf("kept target lost its result: %+v", r)
	}
	// Run returns only once every loop has ended (no leaked goroutines).
	h.stop()
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults", Config{}, ""},
		{"fast interval", Config{Interval: 10 * time.Millisecond}, "scrape.interval"},
		{"negative timeout", Config{Timeout: -1}, "scrape.timeout"},
		{"huge timeout", Config{Timeout: time.Hour}, "scrape.timeout"},
		{"negative concurrency", Config{Concurrency: -1}, "scrape.concurrency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want+":")):
				t.Fatalf("err %v, want one naming %s", err, tc.want)
			}
		})
	}
}

func TestRunTwice(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatalf("first Run: %v", err)
	}
	if err := s.Run(ctx); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func TestJitter(t *testing.T) {
	for range 1000 {
		if d := jitter(time.Second); d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Fatalf("jitter(1s) = %v", d)
		}
	}
}
