package compare

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDirectRunAndReport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := Run(ctx, Config{Only: []string{"direct", "nginx"}, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond,
		Rounds: 2, Concurrency: 4, Install: false})
	if err != nil {
		t.Fatal(err)
	}
	d := rep.Row("direct")
	if d == nil || d.Skipped != "" || len(d.RPS) != 2 || d.Errors != 0 || d.MedianRPS() <= 0 || d.MedianP99() <= 0 {
		t.Fatalf("direct row %+v", d)
	}
	// nginx either ran (installed) or was skipped with a reason; it never
	// fails the run.
	if n := rep.Row("nginx"); n == nil || (n.Skipped == "" && len(n.RPS) != 2) {
		t.Fatalf("nginx row %+v", n)
	}
	dir := t.TempDir()
	if err := rep.Write(dir, "switchyard bench compare --test"); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "proxy-compare.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"`switchyard bench compare --test`", "| direct |", "## Machine"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, f := range []string{"proxy-compare-rps.png", "proxy-compare-latency.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestConfigsNameListenAndBackends(t *testing.T) {
	dir := t.TempDir()
	backends := []string{"127.0.0.1:1111", "127.0.0.1:2222"}
	for _, c := range []struct{ name, tmpl string }{{"nginx.conf", NginxConf}, {"haproxy.cfg", HAProxyConf}, {"Caddyfile", CaddyConf}} {
		p, err := render(dir, c.name, c.tmpl, confData{dir, "127.0.0.1:9999", backends})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		for _, want := range append([]string{"127.0.0.1:9999"}, backends...) {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %s:\n%s", c.name, want, b)
			}
		}
	}
}

func TestMedianAndValidate(t *testing.T) {
	cases := []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}}
	for _, c := range cases {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	bad := []Config{{Only: []string{"varnish"}}, {Rounds: -1}, {Duration: time.Hour}}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestPaired(t *testing.T) {
	rep := &Report{Rows: []*Row{
		{Name: "switchyard", RPS: []float64{100, 90, 50}, CPUPerReq: []float64{10, 11, 20}},
		{Name: "switchyard-base", RPS: []float64{100, 100, 40}, CPUPerReq: []float64{11, 11, 25}},
	}}
	got := rep.Paired()
	for _, want := range []string{"req/s: median ratio 1.000 (per round 1.000 / 0.900 / 1.250); best round 100 vs 100",
		"CPU µs/req: median ratio 0.909 (per round 0.909 / 1.000 / 0.800); best round 10.00 vs 11.00"} {
		if !strings.Contains(got, want) {
			t.Errorf("Paired() = %q, want it to contain %q", got, want)
		}
	}
	if (&Report{Rows: rep.Rows[:1]}).Paired() != "" {
		t.Error("no baseline row: want no A/B section")
	}
}
