package chaos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuick runs the CI subset of the suite (QuickNames) against the
// real binary, built here: the whole topology, real processes, real
// faults. What it needs and may miss — Linux (/proc), a go toolchain to
// build the binary, the loopback addresses 127.0.0.2–10 — fails the test
// under CI=true and skips it otherwise, saying what is missing.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the chaos suite's quick subset (about a minute): not with -short")
	}
	missing := func(what string) {
		if os.Getenv("CI") == "true" {
			t.Fatal(what)
		}
		t.Skip(what)
	}
	if err := supported(); err != nil {
		missing(err.Error())
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		missing("no go toolchain on PATH to build the switchyard binary")
	}
	for i := 2; i <= 10; i++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", i))
		if err != nil {
			missing(fmt.Sprintf("loopback address 127.0.0.%d unusable: %v", i, err))
		}
		ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "switchyard")
	begin := time.Now()
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/switchyard-dev/switchyard/cmd/switchyard")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("binary built in %.1f s", time.Since(begin).Seconds())
	rep, err := Run(ctx, Config{Bin: bin, Quick: true, Dir: filepath.Join(dir, "run"), Command: "go test -run TestQuick ./bench/chaos", Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s\n%s", rep.Table(), rep.Summary())
	if len(rep.Rows) != len(QuickNames())+1 {
		t.Fatalf("%d rows for %d quick cases and the teardown", len(rep.Rows), len(QuickNames()))
	}
	if rep.Failed() {
		t.Fatalf("the quick subset failed:%s\n(logs of every process: %s)", rep.Failures(), rep.Dir)
	}
}

// testLog writes progress lines to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(time.Now().Format("15:04:05.000") + "  " + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
