package compare

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/bench/loadgen"
)

// TestH2LoadRecordings parses real h2load outputs (testdata/README.md).
func TestH2LoadRecordings(t *testing.T) {
	tests := []struct {
		name     string
		sum      h2loadSummary
		ok       int64
		errs     map[string]int64
		maxLatUS int64
	}{
		{"h2load-nginx-ok", h2loadSummary{total: 2001, succeeded: 2000, failed: 1, errored: 1}, 5, map[string]int64{"stream": 1}, 3100},
		{"h2load-nginx-404", h2loadSummary{total: 5, failed: 5}, 0, map[string]int64{"status-4xx": 5}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := os.ReadFile(filepath.Join("testdata", tc.name+".out"))
			if err != nil {
				t.Fatal(err)
			}
			sum, err := parseH2LoadSummary(out)
			if err != nil || sum != tc.sum {
				t.Fatalf("summary %+v, %v; want %+v", sum, err, tc.sum)
			}
			log, err := os.ReadFile(filepath.Join("testdata", tc.name+".log"))
			if err != nil {
				t.Fatal(err)
			}
			res := &loadgen.Result{Errors: map[string]int64{}}
			if err := addH2LoadLog(res, log); err != nil {
				t.Fatal(err)
			}
			if res.OK != tc.ok || len(res.Errors) != len(tc.errs) {
				t.Fatalf("ok %d errors %v; want %d, %v", res.OK, res.Errors, tc.ok, tc.errs)
			}
			for k, v := range tc.errs {
				if res.Errors[k] != v {
					t.Errorf("errors[%s] = %d, want %d", k, res.Errors[k], v)
				}
			}
			if tc.ok > 0 {
				if got := res.Latency.Max() / 1000; got < tc.maxLatUS-30 || got > tc.maxLatUS+30 {
					t.Errorf("max latency %d µs, want about %d", got, tc.maxLatUS)
				}
			}
		})
	}
}

func TestH2LoadMalformed(t *testing.T) {
	if _, err := parseH2LoadSummary([]byte("finished in 1.00s\n")); err == nil || !strings.Contains(err.Error(), "requests:") {
		t.Errorf("no requests line: %v", err)
	}
	for _, bad := range []string{"1\t200\n", "1\tok\t5\n", "1\t200\t-4\n", "1\t200\tfast\n"} {
		res := &loadgen.Result{Errors: map[string]int64{}}
		if err := addH2LoadLog(res, []byte(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v, want an error naming line 1", bad, err)
		}
	}
}

func FuzzAddH2LoadLog(f *testing.F) {
	for _, name := range []string{"h2load-nginx-ok.log", "h2load-nginx-404.log"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		res := &loadgen.Result{Errors: map[string]int64{}}
		lines := int64(strings.Count(string(b), "\n")) + boolInt(len(b) > 0 && b[len(b)-1] != '\n')
		if err := addH2LoadLog(res, b); err == nil && res.OK+res.ErrorCount() != lines {
			t.Fatalf("%d ok + %d errors for %d lines %q", res.OK, res.ErrorCount(), lines, b)
		}
	})
}

func boolInt(v bool) int64 {
	if v {
		return 1
	}
	return 0
}

// TestH2LoadAgainstH2CBackend runs the real h2load against the harness's
// h2c backend, twice on the same log file (h2load appends to it). It
// skips without h2load, except under CI=true, where .ci/run installs it.
func TestH2LoadAgainstH2CBackend(t *testing.T) {
	bin, err := lookBin("h2load")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("h2load not installed: .ci/run installs nghttp2-client")
		}
		t.Skip("h2load not installed (apt-get install nghttp2-client)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, err := StartH2CBackend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	body := filepath.Join(dir, "request.json")
	if err := os.WriteFile(body, []byte(Request), 0o644); err != nil {
		t.Fatal(err)
	}
	run := h2loadRun{bin: bin, target: "http://" + addr + "/v1/chat/completions", bodyFile: body, logFile: filepath.Join(dir, "h2load.log"),
		conns: 2, streams: 2, duration: time.Second}
	for i := range 2 {
		res, err := run.run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.OK == 0 || res.OK != res.Sent || res.ErrorCount() != 0 || res.Elapsed != time.Second || res.Latency.Count() != uint64(res.OK) {
			t.Fatalf("run %d: sent %d ok %d errors %v elapsed %v latencies %d", i, res.Sent, res.OK, res.Errors, res.Elapsed, res.Latency.Count())
		}
	}
	// And the request the backend answered is the bench reply over h2c.
	out, err := exec.CommandContext(ctx, bin, "-n", "1", "-c", "1", "-d", body, "http://"+addr+"/v1/chat/completions").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Application protocol: h2c") || !strings.Contains(string(out), "1 succeeded") {
		t.Fatalf("h2load: %v\n%s", err, out)
	}
}
