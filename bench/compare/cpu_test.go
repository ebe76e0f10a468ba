package compare

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name, in string
		want     procStat
		err      string
	}{
		{"plain", "1234 (nginx) S 1 1230 1230 0 -1 4194560 100 0 0 0 57 31 0 0 20 0 1 0 100 0 0", procStat{pgrp: 1230, utime: 57, stime: 31}, ""},
		{"name with spaces and parens", "7 (a (b) c) R 1 42 42 0 -1 0 0 0 0 0 5 6 0 0 20 0 1 0", procStat{pgrp: 42, utime: 5, stime: 6}, ""},
		{"no parens", "7 nginx R 1 42 42", procStat{}, "parentheses"},
		{"short", "7 (x) R 1 42 42 0", procStat{}, "fields"},
		{"bad pgrp", "7 (x) R 1 zz 42 0 -1 0 0 0 0 0 5 6 0", procStat{}, "pgrp"},
		{"bad utime", "7 (x) R 1 42 42 0 -1 0 0 0 0 0 -5 6 0", procStat{}, "utime"},
		{"bad stime", "7 (x) R 1 42 42 0 -1 0 0 0 0 0 5 x 0", procStat{}, "stime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one naming %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1234 (nginx) S 1 1230 1230 0 -1 4194560 100 0 0 0 57 31 0 0 20 0 1 0 100 0 0"))
	f.Add([]byte("7 (a (b) c) R 1 42 42 0 -1 0 0 0 0 0 5 6 0"))
	f.Add([]byte(")"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStat(b)
		if err != nil && st != (procStat{}) {
			t.Fatalf("error %v with a non-zero result %+v", err, st)
		}
	})
}

// TestGroupCPU reads the CPU time of this test's own process group, which
// grows while the test burns a little CPU.
func TestGroupCPU(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	pg := syscall.Getpgrp()
	a, err := groupCPU(pg)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		x := 0
		for i := range 5_000_000 {
			x += i ^ (x >> 3)
		}
		sink = x
		b, err := groupCPU(pg)
		if err != nil {
			t.Fatal(err)
		}
		if b > a {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("group CPU did not grow: %v then %v", a, b)
		}
	}
	if _, err := groupCPU(0); err == nil {
		t.Fatal("pgid 0: no error")
	}
}

var sink int

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
		cmd, err := switchyardBaseCmd(e, t.TempDir(), "127.0.0.1:1", []string{"127.0.0.1:2"})
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
