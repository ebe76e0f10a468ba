package main

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/bench/gwproc"
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
	check := func(t *testing.T, metrics string, logs func() string) {
		body := getText(t, metrics)
		if !strings.Contains(body, want+"\n") {
			var got []string
			for _, l := range strings.Split(body, "\n") {
				if strings.HasPrefix(l, "switchyard_build_info") {
					got = append(got, l)
				}
			}
			t.Errorf("%s: want %s, got %q\nlogs: %s", metrics, want, got, logs())
		}
	}
	t.Run("gateway", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p, err := gwproc.Start(ctx, gwproc.Config{
			Command: []string{bin, "gateway", "--listen", gwproc.AnyPort, "--admin", gwproc.AnyPort, "--drain-delay", "0", "--route", "m=http://127.0.0.1:1"},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Stop()
		check(t, "http://"+p.Admin+"/metrics", p.Tail)
	})
	t.Run("resource", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		addr, logs := startLoggedProc(ctx, t, "resource: listening", bin, "resource", "--listen", "127.0.0.1:0", "--log-format", "json")
		check(t, "http://"+addr+"/metrics", logs.String)
	})
}

// startLoggedProc runs bin with args (JSON logs on stderr) until the test
// ends, and returns the addr attribute of its log line msg, once logged,
// and its output.
func startLoggedProc(ctx context.Context, t *testing.T, msg, bin string, args ...string) (string, *testlog.Buffer) {
	t.Helper()
	logs := &testlog.Buffer{}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout = logs
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addrc := make(chan string, 1)
	read := make(chan struct{}) // closed once stderr is read to its end
	go func() {
		defer close(read)
		sc := bufio.NewScanner(io.TeeReader(stderr, logs))
		for sc.Scan() {
			if m, addr := gwproc.LineAddr(sc.Bytes()); m == msg && len(addrc) == 0 {
				addrc <- addr
			}
		}
		_, _ = io.Copy(logs, stderr) // after a line too long for the scanner
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-read // Wait closes the pipe: read it to its end first
		_ = cmd.Wait()
	})
	select {
	case addr := <-addrc:
		return addr, logs
	case <-read:
		t.Fatalf("%s exited before it logged %q: %s", args[0], msg, logs.String())
	case <-ctx.Done():
		t.Fatalf("%s did not log %q: %s", args[0], msg, logs.String())
	}
	return "", nil
}
