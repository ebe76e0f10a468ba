package sim

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load drives n with `clients` closed-loop clients for d and returns the
// completed requests per second and the median latency.
func load(t *testing.T, ctx context.Context, n *Node, clients int, d time.Duration) (float64, time.Duration) {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var (
		mu   sync.Mutex
		lats []time.Duration
		done atomic.Int64
		wg   sync.WaitGroup
	)
	stop := time.Now().Add(d)
	begin := time.Now()
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) && ctx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/completions", strings.NewReader(`{"prompt":"x"}`))
				resp, err := c.Do(req)
				if err != nil {
					t.Errorf("request: %v", err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
					return
				}
				lat := time.Since(t0)
				done.Add(1)
				mu.Lock()
				lats = append(lats, lat)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(begin)
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	if len(lats) == 0 {
		t.Error("no request completed")
		return 0, 0
	}
	return float64(done.Load()) / elapsed.Seconds(), lats[len(lats)/2]
}

// TestThroughputFollowsCoefficient shows the performance model: a card
// with twice the coefficient has twice the slots at the same per-token
// time, so with each node's slots kept busy it completes about twice the
// requests per second at about the same latency. Tolerances are wide
// (±25 %) because the machine is a shared 2-core box.
func TestThroughputFollowsCoefficient(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	ctx := testCtx(t, 30*time.Second)
	base := Profile{Card: "test card", SlotsPerCoefficient: 4, Prefill: 40 * time.Millisecond, PerToken: 10 * time.Millisecond, MaxTokens: 8}
	one, two := base, base
	one.Coefficient, two.Coefficient = 1, 2
	n1 := start(t, Config{ID: "x1", Model: "m", Override: one})
	n2 := start(t, Config{ID: "x2", Model: "m", Override: two})
	if n1.Profile().SlotCount() != 4 || n2.Profile().SlotCount() != 8 {
		t.Fatalf("slots %d and %d", n1.Profile().SlotCount(), n2.Profile().SlotCount())
	}
	service := base.Prefill + time.Duration(base.MaxTokens)*base.PerToken // 120ms
	// Both nodes are loaded over the same window, so machine noise hits
	// them alike and the ratio stays stable.
	const d = 1500 * time.Millisecond
	var tp1, tp2 float64
	var lat1, lat2 time.Duration
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); tp1, lat1 = load(t, ctx, n1, n1.Profile().SlotCount(), d) }()
	go func() { defer wg.Done(); tp2, lat2 = load(t, ctx, n2, n2.Profile().SlotCount(), d) }()
	wg.Wait()
	t.Logf("coef 1: %.1f req/s, median %v; coef 2: %.1f req/s, median %v (model: %v per request)", tp1, lat1, tp2, lat2, service)
	if lat1 < service || lat2 < service {
		t.Errorf("latency below the modelled service time %v: %v, %v", service, lat1, lat2)
	}
	if r := tp2 / tp1; r < 1.5 || r > 2.5 {
		t.Errorf("throughput ratio %.2f, want about 2", r)
	}
	if r := float64(lat2) / float64(lat1); r < 0.75 || r > 1.33 {
		t.Errorf("latency ratio %.2f, want about 1", r)
	}
	// The slowdown factor (noisy neighbour) stretches latency.
	n1.SetSlowdown(2)
	_, slow := load(t, ctx, n1, n1.Profile().SlotCount(), 600*time.Millisecond)
	if slow < 2*service {
		t.Errorf("slowdown 2: median %v < %v", slow, 2*service)
	}
}
