package main

import (
	"context"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testlog"
)

// TestBuildInfoMetric starts a gateway and a Resource from a binary
// built with -ldflags -X main.version=... -X main.commit=... and scrapes
// their /metrics: switchyard_build_info carries the version and commit
// that `switchyard version` prints.
func TestBuildInfoMetric(t *testing.T) {
	bin := stampedBinary(t)
	_, out, _ := runBinary(t, bin, "version")
	if !strings.HasPrefix(out, "switchyard "+stampVersion+" (commit "+stampCommit) {
		t.Fatalf("switchyard version: %q", out)
	}
	want := `switchyard_build_info{go_version="` + runtime.Version() + `",revision="` + stampCommit + `",version="` + stampVersion + `"} 1`
	gwAdmin, res := freeAddr(t), freeAddr(t)
	for _, p := range []struct {
		name, metrics string
		args          []string
	}{
		{"gateway", "http://" + gwAdmin + "/metrics",
			[]string{"gateway", "--listen", freeAddr(t), "--admin", gwAdmin, "--drain-delay", "0", "--route", "m=http://127.0.0.1:1"}},
		{"resource", "http://" + res + "/metrics", []string{"resource", "--listen", res}},
	} {
		t.Run(p.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, p.args...)
			var logs testlog.Buffer
			cmd.Stdout, cmd.Stderr = &logs, &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}()
			waitServing(t, p.metrics)
			body := getText(t, p.metrics)
			if !strings.Contains(body, want+"\n") {
				var got []string
				for _, l := range strings.Split(body, "\n") {
					if strings.HasPrefix(l, "switchyard_build_info") {
						got = append(got, l)
					}
				}
				t.Errorf("%s /metrics: want %s, got %q\nlogs: %s", p.name, want, got, logs.String())
			}
		})
	}
}
