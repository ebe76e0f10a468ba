package demo

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemo runs a short demo end to end: a real Resource, gateway and
// simulated fleet, agents as child processes of a freshly built switchyard
// binary, a drain and a kill -9. It checks the demo's own exit criteria
// and that the report and plots are written.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes about a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "switchyard")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/switchyard-dev/switchyard/cmd/switchyard")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var log bytes.Buffer
	rep, err := Run(ctx, Config{
		Duration: 12 * time.Second,
		Load:     0.3, // the race detector slows everything down
		Agent:    []string{bin, "agent"},
		OutDir:   filepath.Join(dir, "out"),
		Log:      &log,
	})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, log.String())
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	t.Log(text.String())
	if rep.Requests < 100 || rep.Succeeded < rep.Requests-rep.LostInCrash {
		t.Errorf("requests %d, succeeded %d, lost in crash %d", rep.Requests, rep.Succeeded, rep.LostInCrash)
	}
	if rep.ClientErrors != 0 {
		t.Errorf("client errors: %d: %v", rep.ClientErrors, rep.ErrorSamples)
	}
	for _, e := range []Ejection{rep.Drained, rep.Crashed} {
		if !e.OK || e.Seconds < 0 || e.Seconds > MaxEjection.Seconds() {
			t.Errorf("ejection of %s: %+v", e.Node, e)
		}
	}
	if !rep.Passed() {
		t.Error("the report says FAIL")
	}
	// Part of the load went to the Ray application, through the gateway's
	// Ray source, to both Ray nodes' proxies, without errors.
	if r := rep.Ray; r.Requests < 10 || r.Errors != 0 || r.Succeeded != r.Requests || r.ByProxy["ray-head"] == 0 || r.ByProxy["ray-gpu"] == 0 {
		t.Errorf("Ray application: %+v", r)
	}
	if !strings.Contains(text.String(), "Ray Serve application ray-llm") {
		t.Error("text report lacks the Ray application")
	}
	if !strings.Contains(text.String(), "Ejection of") {
		t.Error("text report lacks the ejection lines")
	}
	if rep.DrainAt <= 0 || rep.CrashAt <= rep.DrainAt {
		t.Errorf("event times: drain at %.2f s, crash at %.2f s", rep.DrainAt, rep.CrashAt)
	}
	for _, f := range []string{SharesChart, UtilisationChart, LatencyChart} {
		checkPNG(t, filepath.Join(dir, "out", f))
	}
}

// checkPNG checks that path is a PNG of the charts' size.
func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if cfg.Width < 800 || cfg.Height < 400 {
		t.Errorf("%s: %dx%d", path, cfg.Width, cfg.Height)
	}
}
