package admin

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/forward"
	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/telemetry"
	"github.com/switchyard-dev/switchyard/gateway/tenant"
)

// The gateway's TestAdminPage drives the page against a whole gateway;
// this test covers what that gateway does not wire yet (API keys) and a
// weight history with many samples, against the admin handler alone.

// startChromium starts Debian's chromium headless for one test (skipped
// when it is not installed, a failure under CI=true) and returns its
// tab's context; the browser lives at most limit.
func startChromium(t *testing.T, limit time.Duration) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium is not installed (.ci/run installs Debian's chromium)")
		}
		t.Skip("chromium is not installed: apt-get install -y chromium")
	}
	life, cancelLife := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancelLife)
	alloc, cancelAlloc := chromedp.NewExecAllocator(life,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		// Its singleton socket's directory goes to TMPDIR, and stays
		// there when the browser is killed: the test's own one is removed.
		chromedp.Env("TMPDIR="+t.TempDir()),
	)
	t.Cleanup(cancelAlloc)
	tab, cancelTab := chromedp.NewContext(alloc)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return tab
}

// TestPageTenantsAndHistory: with API keys the page lists the tenants
// with their limits and usage, and a node's sparkline draws every sample
// of its history; no console errors.
func TestPageTenantsAndHistory(t *testing.T) {
	tab := startChromium(t, time.Minute)

	var cur atomic.Pointer[route.Set]
	cur.Store(testSet(t, map[string]map[string]float64{"m": {"127.0.0.1:1001": 1, "127.0.0.1:1002": 2}}))
	m, err := telemetry.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := telemetry.NewTracing(config.TelemetryConfig{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	core := forward.New(m, tr, log)
	core.SetRoutes(cur.Load())
	weights := NewWeightHistory(core.Routes) // the first sample
	for range 11 {
		weights.sample(time.Now())
	}
	path := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(path, []byte(keysFile), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := tenant.Open(tenant.Config{Path: path, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := keys.Lookup([]byte("sk-team-a-0123456789abcdef"))
	a.Admit(time.Now())
	a.Charge(time.Now(), 42)
	srv := httptest.NewServer(Handler(Deps{
		Core: core, Metrics: m.Handler(), Log: log, Weights: weights,
		Source:  func(*route.Route) (string, bool) { return "static", false },
		Guard:   func() *Guard { return NewGuard(&config.AdminConfig{}, "", "127.0.0.1:0") },
		Tenants: func() *tenant.Store { return keys },
	}))
	defer srv.Close()

	var mu sync.Mutex
	var problems []string
	cctx, stopConsole := context.WithCancel(tab)
	msgs := chromedp.Console(cctx)
	consoleDone := make(chan struct{})
	go func() {
		defer close(consoleDone)
		for msg, err := range msgs {
			if err != nil {
				return
			}
			if msg.Type == chromedp.ConsoleError || msg.IsException() {
				mu.Lock()
				problems = append(problems, fmt.Sprintf("%s (%s:%d)", msg, msg.URL, msg.Line+1))
				mu.Unlock()
			}
		}
	}()

	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#tenants tr[data-tenant]`))); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	type view struct {
		Tenants []string
		Points  []int
	}
	v, err := chromedp.Run(ctx, chromedp.Evaluate[view](`({
		Tenants: [...document.querySelectorAll("#tenants tr[data-tenant]")].map(r => [...r.cells].map(c => c.textContent).join("|")),
		Points: [...document.querySelectorAll("#nodes svg.spark polyline")].map(p => p.getAttribute("points").split(" ").length),
	})`))
	if err != nil {
		t.Fatal(err)
	}
	// team-a: 2 requests/min, 1000 tokens/min, 4 concurrent, llama only;
	// 1 admitted, nothing refused, 42 tokens, none in flight.
	want := []string{"nightly|batch|∞|∞|∞|all|0|0 / 0 / 0|0|0", "team-a|interactive|2|1000|4|llama|1|0 / 0 / 0|42|0"}
	if strings.Join(v.Tenants, "\n") != strings.Join(want, "\n") {
		t.Errorf("tenant rows:\n%s\nwant:\n%s", strings.Join(v.Tenants, "\n"), strings.Join(want, "\n"))
	}
	if len(v.Points) != 2 || v.Points[0] != 12 || v.Points[1] != 12 {
		t.Errorf("sparklines have %v points, want 12 each", v.Points)
	}
	stopConsole()
	<-consoleDone
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("console: %s", p)
	}
}
