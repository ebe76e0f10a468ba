package cpu

import (
	"errors"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/engines"
)

const stat1 = `cpu  100 0 100 800 0 0 0 0 0 0
cpu0 50 0 50 400 0 0 0 0 0 0
cpu1 50 0 50 400 0 0 0 0 0 0
intr 1 2 3
ctxt 42
`

const stat2 = `cpu  250 0 150 900 100 0 0 0 50 0
cpu0 125 0 75 450 50 0 0 0 0 0
cpu1 125 0 75 450 50 0 0 0 0 0
`

func TestUtilization(t *testing.T) {
	a, err := ParseStat(strings.NewReader(stat1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseStat(strings.NewReader(stat2))
	if err != nil {
		t.Fatal(err)
	}
	if a.CPUs != 2 {
		t.Errorf("cpus = %d", a.CPUs)
	}
	// delta total 400 (guest excluded), idle+iowait delta 200 → 0.5 busy.
	u, err := Utilization(a, b)
	if err != nil || u.String() != "0.5" {
		t.Errorf("util = %s, %v", u, err)
	}
	if u, _ := Utilization(a, a); u.IsKnown() {
		t.Error("no elapsed time must be unknown")
	}
	if _, err := Utilization(b, a); err == nil {
		t.Error("backwards counters accepted")
	}
}

func TestParseStatErrors(t *testing.T) {
	for _, c := range []struct{ text, mention string }{
		{"", "empty"},
		{"cpu  1 2 x 4\n", "line 1"},
		{"cpu  1 2\n", "at least 4"},
		{"intr 1\n", "no aggregate"},
		{"cpu  1 2 3 4", "truncated"},
	} {
		if _, err := ParseStat(strings.NewReader(c.text)); !errors.Is(err, engines.ErrMalformed) || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%q: err = %v", c.text, err)
		}
	}
}

func TestCPUMax(t *testing.T) {
	q, err := ParseCPUMax(strings.NewReader("max 100000\n"))
	if err != nil || q.Cores.IsKnown() {
		t.Errorf("max: %+v %v", q, err)
	}
	q, err = ParseCPUMax(strings.NewReader("150000 100000\n"))
	if err != nil || q.Cores.String() != "1.5" {
		t.Errorf("1.5: %+v %v", q, err)
	}
	r := Report(Stat{CPUs: 8}, q, engines.Known(0.25))
	if r.Count != 1.5 || r.Utilization.String() != "0.25" {
		t.Errorf("report %+v", r)
	}
	if r := Report(Stat{CPUs: 8}, Quota{}, engines.Unknown); r.Count != 8 {
		t.Errorf("unlimited report %+v", r)
	}
	for _, bad := range []string{"\n", "max\n", "x 100000\n", "100 0\n", "0 100000\n"} {
		if _, err := ParseCPUMax(strings.NewReader(bad)); !errors.Is(err, engines.ErrMalformed) {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(stat1))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		if _, err := ParseStat(strings.NewReader(string(b))); err != nil && !errors.Is(err, engines.ErrMalformed) {
			t.Fatalf("untyped: %v", err)
		}
	})
}

func FuzzParseCPUMax(f *testing.F) {
	f.Add([]byte("max 100000\n"))
	f.Add([]byte("200000 100000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseCPUMax(strings.NewReader(string(b)))
		if err != nil {
			if !errors.Is(err, engines.ErrMalformed) {
				t.Fatalf("untyped: %v", err)
			}
			return
		}
		if c, ok := q.Cores.Get(); ok && c <= 0 {
			t.Fatalf("cores %v", c)
		}
	})
}
