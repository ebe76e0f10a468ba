// Package cpuload reads CPU time from /proc for the benchmark harnesses:
// a process group's user and system time (GroupTimes, GroupCPU), and how much CPU other
// work on a shared machine used between two moments (Take, Other).
//
// Linux only; elsewhere every function reports an error or !ok. Safe for
// concurrent use: it keeps no state.
package cpuload

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// clockTick is the kernel's USER_HZ, the unit of utime and stime in
// /proc/PID/stat: 100 on every Linux architecture Go supports.
const clockTick = 100

// Times is CPU time split into user time (the process's own code) and
// system time (the kernel's work in its system calls; for a proxy on
// loopback, mostly the TCP stack).
type Times struct{ User, System time.Duration }

// Total is user plus system time.
func (t Times) Total() time.Duration { return t.User + t.System }

// GroupCPU returns the CPU time (user + system) used so far by every live
// process of process group pgid: GroupTimes(pgid).Total().
func GroupCPU(pgid int) (time.Duration, error) {
	t, err := GroupTimes(pgid)
	return t.Total(), err
}

// GroupTimes returns the user and system time used so far by every live
// process of process group pgid, read from /proc/*/stat. A harness runs
// each measured server in its own group (nginx: master and worker), so
// this is the server's whole cost. Processes that exit between two reads
// take their time with them; none should during a measured run.
func GroupTimes(pgid int) (Times, error) {
	if pgid <= 0 {
		return Times{}, fmt.Errorf("cpuload: no process")
	}
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return Times{}, fmt.Errorf("cpuload: /proc unreadable")
	}
	var user, system uint64
	found := false
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseStat(b)
		if err != nil {
			continue // not a process line we can read: not one of ours
		}
		if st.pgrp == pgid {
			user += st.utime
			system += st.stime
			found = true
		}
	}
	if !found {
		return Times{}, fmt.Errorf("cpuload: no process in group %d", pgid)
	}
	return Times{User: ticks(user), System: ticks(system)}, nil
}

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / clockTick }

type procStat struct {
	pgrp           int
	utime, stime   uint64
	cutime, cstime uint64 // of waited-for children
}

// parseStat reads fields 5 (pgrp), 14 (utime), 15 (stime), 16 (cutime)
// and 17 (cstime) of a /proc/PID/stat line. The command name (field 2)
// is in parentheses and may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	var st procStat
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st, fmt.Errorf("no command name in parentheses")
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state)
	if len(f) < 15 {
		return st, fmt.Errorf("%d fields after the command name, want at least 15", len(f))
	}
	pgrp, err := strconv.Atoi(string(f[2]))
	if err != nil {
		return st, fmt.Errorf("field 5 (pgrp) %q: %w", f[2], err)
	}
	ut, err := strconv.ParseUint(string(f[11]), 10, 64)
	if err != nil {
		return st, fmt.Errorf("field 14 (utime) %q: %w", f[11], err)
	}
	stime, err := strconv.ParseUint(string(f[12]), 10, 64)
	if err != nil {
		return st, fmt.Errorf("field 15 (stime) %q: %w", f[12], err)
	}
	var child [2]uint64
	for i := range child {
		if child[i], err = strconv.ParseUint(string(f[13+i]), 10, 64); err != nil {
			return st, fmt.Errorf("field %d (children's time) %q: %w", 16+i, f[13+i], err)
		}
	}
	st.pgrp, st.utime, st.stime = pgrp, ut, stime
	st.cutime, st.cstime = child[0], child[1]
	return st, nil
}

// Snapshot is the machine's and our own CPU time at one moment, to tell
// how much CPU other work on the (shared) machine used in between.
type Snapshot struct {
	At     time.Time
	Busy   time.Duration // user+nice+system+irq+softirq+steal of all CPUs (/proc/stat)
	Ours   time.Duration // this process (a harness: load generator, backends), its waited-for children and the given groups
	OK     bool
	Reason string // why not OK
}

// Take reads /proc/stat, /proc/self/stat and the given process groups
// (the measured servers): "ours" is this process, its waited-for
// children (say h2load, exited and waited for before the snapshot after
// a measured run) and those groups. The machine side counts irq and
// softirq time too: a process's system time includes the softirq work
// (loopback packet processing) done in its system calls, which
// /proc/stat books as softirq.
func Take(pgids []int) Snapshot {
	s := Snapshot{At: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		s.Reason = err.Error()
		return s
	}
	busy, err := parseProcStat(b)
	if err != nil {
		s.Reason = err.Error()
		return s
	}
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		s.Reason = err.Error()
		return s
	}
	st, err := parseStat(self)
	if err != nil {
		s.Reason = err.Error()
		return s
	}
	s.Busy = busy
	s.Ours = ticks(st.utime + st.stime + st.cutime + st.cstime)
	for _, pg := range pgids {
		if d, err := GroupCPU(pg); err == nil {
			s.Ours += d
		}
	}
	s.OK = true
	return s
}

// Other is the CPU other work used between a and b, in cores
// (0.5: half a core on average). Negative rounding noise reads as 0.
func Other(a, b Snapshot) (float64, bool) {
	wall := b.At.Sub(a.At)
	if !a.OK || !b.OK || wall <= 0 {
		return 0, false
	}
	other := (b.Busy - a.Busy) - (b.Ours - a.Ours)
	return max(other.Seconds()/wall.Seconds(), 0), true
}

// parseProcStat returns user+nice+system+irq+softirq+steal of the
// aggregate "cpu" line of /proc/stat.
func parseProcStat(b []byte) (time.Duration, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return 0, fmt.Errorf("/proc/stat: first line %q: want \"cpu\" and at least 8 counters", line)
	}
	var n uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		v, err := strconv.ParseUint(string(f[i]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: field %d %q: %w", i, f[i], err)
		}
		n += v
	}
	return ticks(n), nil
}
