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
	names := map[string][]string{}
	for _, r := range rows {
		names[r.Section] = append(names[r.Section], r.Name)
		if !(r.RPS > 0 && r.P50 > 0 && r.P99 >= r.P50) {
			t.Errorf("%+v", r)
		}
		if r.Name != "direct" && r.CPU <= 0 {
			t.Errorf("%s %s: no CPU figure", r.Section, r.Name)
		}
	}
	for _, sec := range Sections() {
		if !slices.Contains(names[sec], "switchyard") || !slices.Contains(names[sec], "nginx") || !slices.Contains(names[sec], "haproxy") {
			t.Errorf("section %s: contenders %q", sec, names[sec])
		}
	}
}

// TestParseTableRoundTrip parses what Report.Table writes.
func TestParseTableRoundTrip(t *testing.T) {
	r := &Report{Rows: []*Row{
		{Name: "direct", RPS: []float64{1000.4, 900, 1100}, P50: []int64{1_000_000, 1_200_000, 1_100_000}, P99: []int64{2_000_000, 2_500_000, 2_250_000}},
		{Name: "caddy", Skipped: "not installed | apt failed"},
		{Name: "switchyard", RPS: []float64{800}, P50: []int64{1_500_000}, P99: []int64{3_125_000}},
	}}
	h2 := []*Row{{Name: "nginx", RPS: []float64{500}, P50: []int64{2_000_000}, P99: []int64{4_000_000}, CPUPerReq: []float64{20.5}, UserPerReq: []float64{9.5}}}
	md := "# Proxy comparison\n\n## HTTP/1.1\n\n" + r.Table() + "\nmore text\n| not | the | table |\n\n## " + sectionTitle(SectionH2) + "\n\n" + table(h2)
	rows, err := ParseTable(md)
	if err != nil {
		t.Fatal(err)
	}
	want := []ChartRow{
		{Section: SectionHTTP1, Name: "direct", RPS: 1000, P50: 1.1, P99: 2.25},
		{Section: SectionHTTP1, Name: "switchyard", RPS: 800, P50: 1.5, P99: 3.125},
		{Section: SectionH2, Name: "nginx", RPS: 500, P50: 2, P99: 4, CPU: 20.5},
	}
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
	if err := WriteCharts(dir, "proxy-compare", []ChartRow{{Section: SectionHTTP1, Name: "a", RPS: 10, P50: 1, P99: 2, CPU: 3}, {Section: SectionGRPC, Name: "b", RPS: 5, P50: 2, P99: 3}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"proxy-compare-rps.png", "proxy-compare-latency.png", "proxy-compare-cpu.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if err := WriteCharts(dir, "x", nil); err == nil {
		t.Error("no error for no rows")
	}
}
