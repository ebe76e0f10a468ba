package cpuload

import (
	"os"
	"os/exec"
	"runtime"
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
		{"waited-for children", "7 (h) S 1 42 42 0 -1 0 0 0 0 0 5 6 120 33 20 0 1 0", procStat{pgrp: 42, utime: 5, stime: 6, cutime: 120, cstime: 33}, ""},
		{"no parens", "7 nginx R 1 42 42", procStat{}, "parentheses"},
		{"short", "7 (x) R 1 42 42 0", procStat{}, "fields"},
		{"no children's times", "7 (x) R 1 42 42 0 -1 0 0 0 0 0 5 6 0", procStat{}, "fields"},
		{"bad pgrp", "7 (x) R 1 zz 42 0 -1 0 0 0 0 0 5 6 0 0", procStat{}, "pgrp"},
		{"bad utime", "7 (x) R 1 42 42 0 -1 0 0 0 0 0 -5 6 0 0", procStat{}, "utime"},
		{"bad stime", "7 (x) R 1 42 42 0 -1 0 0 0 0 0 5 x 0 0", procStat{}, "stime"},
		{"bad cstime", "7 (x) R 1 42 42 0 -1 0 0 0 0 0 5 6 0 y", procStat{}, "children"},
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
	f.Add([]byte("7 (a (b) c) R 1 42 42 0 -1 0 0 0 0 0 5 6 0 0"))
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
	a, err := GroupCPU(pg)
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
		b, err := GroupCPU(pg)
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
	if _, err := GroupCPU(0); err == nil {
		t.Fatal("pgid 0: no error")
	}
}

// TestGroupTimesSplit checks that a loop of system calls shows as system
// time.
func TestGroupTimesSplit(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	pg := syscall.Getpgrp()
	a, err := GroupTimes(pg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<16)
	deadline := time.Now().Add(5 * time.Second)
	var b Times
	for {
		for range 2000 {
			if _, err := f.Read(buf); err != nil { // each read is a system call
				t.Fatal(err)
			}
		}
		if b, err = GroupTimes(pg); err != nil {
			t.Fatal(err)
		}
		if b.System > a.System {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("system time did not grow: %+v then %+v", a, b)
		}
	}
	if b.User < a.User {
		t.Errorf("user time went back: %v then %v", a.User, b.User)
	}
	if _, err := GroupTimes(0); err == nil {
		t.Fatal("pgid 0: no error")
	}
}

var sink int

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"cpu  100 5 50 900 3 0 70 20 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n", (100 + 5 + 50 + 0 + 70 + 20) * 10 * time.Millisecond, ""},
		{"cpu  1 2 3 4 5 6 7 8", 27 * 10 * time.Millisecond, ""},
		{"cpu0 1 2 3 4 5 6 7 8 9\n", 0, "first line"},
		{"cpu  1 2 3\n", 0, "first line"},
		{"cpu  1 x 3 4 5 6 7 8 9\n", 0, "field 2"},
		{"", 0, "first line"},
	}
	for _, tc := range tests {
		got, err := parseProcStat([]byte(tc.in))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want one naming %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("cpu  100 5 50 900 3 0 70 20 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"))
	f.Add([]byte("cpu 1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseProcStat(b); err != nil && d != 0 {
			t.Fatalf("error %v with %v", err, d)
		}
	})
}

// TestOtherLoad: snapshots of this machine give a load in [0, CPUs].
// The group measured is a child of the test's own, as the harness runs
// each server: not the test's group, which under go test ./... holds
// sibling test binaries whose exit would take their CPU out of Ours.
func TestOtherLoad(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc")
	}
	child := exec.Command("sleep", "30")
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := child.Start(); err != nil {
		t.Skip("no sleep binary:", err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	a := Take([]int{child.Process.Pid})
	if !a.OK {
		t.Fatalf("snapshot: %s", a.Reason)
	}
	time.Sleep(200 * time.Millisecond) // an interval to measure, not synchronisation
	b := Take([]int{child.Process.Pid})
	load, ok := Other(a, b)
	if !ok || load < 0 || load > float64(runtime.NumCPU())+0.5 {
		t.Fatalf("other load %v (ok %v)", load, ok)
	}
	if _, ok := Other(Snapshot{}, b); ok {
		t.Fatal("a failed snapshot gave a load")
	}
}
