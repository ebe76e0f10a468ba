package policysim

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/bench/hist"
)

// TestParseTablesCommitted reads the committed report, from which the
// committed charts are drawn.
func TestParseTablesCommitted(t *testing.T) {
	b, err := os.ReadFile("../results/policies.md")
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseTables(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d.Loads, []float64{0.5, 0.8, 0.9, 0.95}) {
		t.Errorf("loads %v", d.Loads)
	}
	if want := append(Policies(), Extras()...); !slices.Equal(d.Policies, want) {
		t.Errorf("policies %q, want %q", d.Policies, want)
	}
	for pi, p := range d.Policies {
		for li, pt := range d.Points[pi] {
			// Every run of the report is there; p99 ≤ p99.9 (both may be ∞).
			if math.IsNaN(pt.P99) || !(pt.P99 <= pt.P999) || !(pt.UtilSpread >= 0 && pt.UtilCV >= 0) {
				t.Errorf("%s at %v: %+v", p, d.Loads[li], pt)
			}
		}
	}
}

// TestParseTablesRoundTrip parses what Matrix.Tables writes, per-type
// tables included, and gets ChartData back.
func TestParseTablesRoundTrip(t *testing.T) {
	m := &Matrix{Config: MatrixConfig{
		Base:     DefaultConfig(),
		Loads:    []float64{0.5, 0.9},
		Policies: []string{"dynamic-swrr", "round-robin", "capacity-c2"},
	}}
	for _, l := range m.Config.Loads {
		for i, p := range m.Config.Policies {
			if l == 0.9 && p == "capacity-c2" {
				continue // a missing run
			}
			r := &Result{Policy: p, Load: l, P50: 1, P99: 2 + float64(i), P999: 5 + l, UtilSpread: 0.25, UtilCV: 0.125, Arrived: 10, Completed: 10}
			if p == "round-robin" {
				r.P99, r.P999 = math.Inf(1), math.Inf(1)
			}
			r.ByType = make([]hist.Histogram, len(m.Config.Base.Types))
			m.Results = append(m.Results, r)
		}
	}
	md := "# Balancing policies at scale\n" + m.Tables() + "\n#### Share of completed requests and p99 per card type at 90 %\n\n" + m.TypeShares(0.9)
	got, err := ParseTables(md)
	if err != nil {
		t.Fatal(err)
	}
	want := m.ChartData()
	if !slices.Equal(got.Loads, want.Loads) || !slices.Equal(got.Policies, want.Policies) {
		t.Fatalf("got %v %q, want %v %q", got.Loads, got.Policies, want.Loads, want.Policies)
	}
	same := func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) || math.Abs(a-b) < 5e-3 }
	for pi := range want.Points {
		for li := range want.Loads {
			g, w := got.Points[pi][li], want.Points[pi][li]
			if !same(g.P99, w.P99) || !same(g.P999, w.P999) || !same(g.UtilSpread, w.UtilSpread) || !same(g.UtilCV, w.UtilCV) {
				t.Errorf("%s at %v: got %+v, want %+v", want.Policies[pi], want.Loads[li], g, w)
			}
		}
	}
	dir := t.TempDir()
	if err := WriteCharts(dir, got); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{P99Chart, P999Chart, SpreadChart, CVChart} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestParseTablesErrors(t *testing.T) {
	row := "| p2c | 1 | 2 | 3 | 4 | 0 (0 %) | 0 (0 %) | 9 | 0.5 | 0.1 | 0.2 |\n"
	for _, tc := range []struct{ name, md, want string }{
		{"no table", "# Balancing policies at scale\n", "no results table"},
		{"table outside a load", tableHeader + "\n" + row, `line 1: a results table outside a "### Load" section`},
		{"bad load", "### Load high %\n", "line 1: load"},
		{"bad number", "### Load 50 %\n" + tableHeader + "\n" + strings.Replace(row, "| 2 |", "| two |", 1), "line 3, column 3"},
		{"short row", "### Load 50 %\n" + tableHeader + "\n| p2c | 1 |\n", "line 3: 2 cells, want 11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTables(tc.md)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
