package compare

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

func TestBaselineContender(t *testing.T) {
	if err := (&Config{Only: []string{"switchyard-base"}}).Validate(); err == nil || !strings.Contains(err.Error(), "baseline") {
		t.Fatalf("switchyard-base without a binary: %v", err)
	}
	if err := (&Config{BaselineBin: "/nonexistent/switchyard"}).Validate(); err == nil {
		t.Fatal("missing baseline binary: no error")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := (&Config{BaselineBin: self, Only: []string{"switchyard", "switchyard-base"}}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, ts := range []string{"", "/usr/bin/taskset"} {
		e := &runEnv{self: "/new/switchyard", base: "/old/switchyard", proxyCPU: 1, taskset: ts}
		cmd, err := switchyardBaseCmd(e, confData{Dir: t.TempDir(), Listen: "127.0.0.1:1", Backends: []string{"127.0.0.1:2"}})
		if err != nil {
			t.Fatal(err)
		}
		args := strings.Join(cmd.Args, " ")
		if !strings.Contains(args, "/old/switchyard gateway --listen 127.0.0.1:1 --route bench=http://127.0.0.1:2") || strings.Contains(args, "/new/") {
			t.Fatalf("taskset %q: baseline command %q (path %s)", ts, args, cmd.Path)
		}
		if ts == "" && cmd.Path != "/old/switchyard" {
			t.Fatalf("path %s", cmd.Path)
		}
	}
}

// TestWaitQuiet: waitQuiet returns at once under a threshold no load
// reaches.
func TestWaitQuiet(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := Config{QuietWait: time.Second, QuietBelow: 64}.withDefaults()
	if err := waitQuiet(ctx, cfg, nil, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	if err := (&Config{QuietWait: -time.Second}).Validate(); err == nil {
		t.Fatal("negative quiet wait: no error")
	}
}
