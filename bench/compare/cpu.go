package compare

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

// groupCPU returns the CPU time (user + system) used so far by every live
// process of process group pgid, read from /proc/*/stat. The contenders run
// in their own group (nginx: master and worker), so this is the proxy's
// whole cost. Processes that exit between two reads take their time with
// them; none should during a measured run.
func groupCPU(pgid int) (time.Duration, error) {
	if pgid <= 0 {
		return 0, fmt.Errorf("compare: cpu: no process")
	}
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil || len(stats) == 0 {
		return 0, fmt.Errorf("compare: cpu: /proc unreadable")
	}
	var ticks uint64
	found := false
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseStat(b)
		if err != nil {
			return 0, fmt.Errorf("compare: cpu: %s: %w", p, err)
		}
		if st.pgrp == pgid {
			ticks += st.utime + st.stime
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("compare: cpu: no process in group %d", pgid)
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}

type procStat struct {
	pgrp         int
	utime, stime uint64
}

// parseStat reads fields 5 (pgrp), 14 (utime) and 15 (stime) of a
// /proc/PID/stat line. The command name (field 2) is in parentheses and may
// hold spaces and parentheses, so fields are counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	var st procStat
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st, fmt.Errorf("no command name in parentheses")
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return st, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
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
	st.pgrp, st.utime, st.stime = pgrp, ut, stime
	return st, nil
}
