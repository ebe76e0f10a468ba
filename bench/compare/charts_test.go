package compare

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestParseTableCommitted reads the committed report, from which the
// committed charts are drawn.
func TestParseTableCommitted(t *testing.T) {
	b, err := os.ReadFile("../results/proxy-compare.md")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := ParseTable(string(b))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range rows {
		names = append(names, r.Name)
		if !(r.RPS > 0 && r.P50 > 0 && r.P99 >= r.P50) {
			t.Errorf("%+v", r)
		}
	}
	if !slices.Equal(names, []string{"direct", "switchyard", "minproxy", "nginx", "haproxy", "caddy"}) {
		t.Errorf("contenders %q", names)
	}
}

// TestParseTableRoundTrip parses what Report.Table writes.
func TestParseTableRoundTrip(t *testing.T) {
	r := &Report{Rows: []*Row{
		{Name: "direct", RPS: []float64{1000.4, 900, 1100}, P50: []int64{1_000_000, 1_200_000, 1_100_000}, P99: []int64{2_000_000, 2_500_000, 2_250_000}},
		{Name: "caddy", Skipped: "not installed | apt failed"},
		{Name: "switchyard", RPS: []float64{800}, P50: []int64{1_500_000}, P99: []int64{3_125_000}},
	}}
	rows, err := ParseTable("# Proxy comparison\n\n" + r.Table() + "\nmore text\n| not | the | table |\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []ChartRow{{"direct", 1000, 1.1, 2.25}, {"switchyard", 800, 1.5, 3.125}}
	if !slices.Equal(rows, want) {
		t.Errorf("rows %+v, want %+v", rows, want)
	}
	if err := WriteCharts(t.TempDir(), "x", rows); err != nil {
		t.Error(err)
	}
}

func TestParseTableErrors(t *testing.T) {
	for _, tc := range []struct{ name, md, want string }{
		{"no table", "# Proxy comparison\n", "no results table"},
		{"bad number", tableHeader + " x |\n| --- |\n| direct | fast | 1 / 2 | 1.0 | 2.0 |\n", "line 3, column 2"},
		{"short row", tableHeader + " x |\n| direct | 1 |\n", "line 2: 2 cells"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTable(tc.md)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestWriteCharts(t *testing.T) {
	dir := t.TempDir()
	if err := WriteCharts(dir, "proxy-compare", []ChartRow{{"a", 10, 1, 2}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"proxy-compare-rps.png", "proxy-compare-latency.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := WriteCharts(dir, "x", nil); err == nil {
		t.Error("no error for no rows")
	}
}
