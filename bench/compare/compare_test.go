package compare

import (
	"context"
	"encoding/json"
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
	// gRPC: the load generator straight to the gRPC backend.
	if g := findRow(rep.GRPC, "direct"); g == nil || g.Skipped != "" || len(g.RPS) != 2 || g.Errors != 0 || g.MedianRPS() <= 0 {
		t.Fatalf("gRPC direct row %+v", g)
	}
	// HTTP/2: h2load straight to the h2c backend, or the section skipped
	// with a reason when h2load is missing (allowed outside CI only).
	if _, err := lookBin("h2load"); err != nil {
		if rep.H2Skipped == "" || len(rep.H2) != 0 {
			t.Fatalf("no h2load: H2Skipped %q, %d rows", rep.H2Skipped, len(rep.H2))
		}
		if os.Getenv("CI") == "true" {
			t.Error("h2load not installed: .ci/run installs nghttp2-client")
		}
	} else if h := findRow(rep.H2, "direct"); h == nil || h.Skipped != "" || len(h.RPS) != 2 || h.Errors != 0 || h.MedianRPS() <= 0 || h.MedianP99() <= 0 {
		t.Fatalf("HTTP/2 direct row %+v (skipped section: %q)", h, rep.H2Skipped)
	}
	dir := t.TempDir()
	if err := rep.Write(dir, "switchyard bench compare --test"); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "proxy-compare.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"`switchyard bench compare --test`", "| direct |", "## Machine", "## HTTP/1.1", "## gRPC unary"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, f := range []string{"proxy-compare-rps.png", "proxy-compare-latency.png", "proxy-compare-cpu.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestConfigsNameListenAndBackends(t *testing.T) {
	dir := t.TempDir()
	backends := []string{"127.0.0.1:1111", "127.0.0.1:2222"}
	for _, c := range []struct{ name, tmpl string }{{"nginx.conf", NginxConf}, {"haproxy.cfg", HAProxyConf}, {"Caddyfile", CaddyConf}} {
		p, err := render(dir, c.name, c.tmpl, confData{Dir: dir, Listen: "127.0.0.1:9999", Backends: backends})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		for _, want := range append([]string{"127.0.0.1:9999"}, backends...) {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %s:\n%s", c.name, want, b)
			}
		}
		if strings.Contains(string(b), "http2") || strings.Contains(string(b), "proto h2") || strings.Contains(string(b), "grpc") {
			t.Errorf("%s without an h2c listener or gRPC backends mentions them:\n%s", c.name, b)
		}
	}
	// With the HTTP/2 and gRPC sections: an h2c listener and the gRPC
	// backends behind it.
	grpc := []string{"127.0.0.1:3333"}
	for _, c := range []struct {
		name, tmpl string
		want       []string
	}{
		{"nginx.conf", NginxConf, []string{"listen 127.0.0.1:8888 http2;", "server 127.0.0.1:3333;", "grpc_pass grpc://grpc_backends;"}},
		{"haproxy.cfg", HAProxyConf, []string{"bind 127.0.0.1:8888 proto h2", "server g0 127.0.0.1:3333 proto h2", "use_backend be_grpc if { path_beg /inference.GRPCInferenceService/ }"}},
	} {
		p, err := render(dir, c.name, c.tmpl, confData{Dir: dir, Listen: "127.0.0.1:9999", ListenH2: "127.0.0.1:8888", Backends: backends, GRPCBackends: grpc})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		for _, want := range c.want {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %q:\n%s", c.name, want, b)
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
	bad := []Config{{Only: []string{"varnish"}}, {Rounds: -1}, {Duration: time.Hour}, {Sections: []string{"http3"}}, {H2Streams: -1}}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

func TestPaired(t *testing.T) {
	rep := &Report{Rows: []*Row{
		{Name: "switchyard", RPS: []float64{100, 90, 50}, CPUPerReq: []float64{10, 11, 20}, UserPerReq: []float64{4, 5, 9}},
		{Name: "switchyard-base", RPS: []float64{100, 100, 40}, CPUPerReq: []float64{11, 11, 25}, UserPerReq: []float64{5, 5, 12}},
	}}
	got := rep.Paired()
	for _, want := range []string{"req/s: median ratio 1.000 (per round 1.000 / 0.900 / 1.250); best round 100 vs 100",
		"CPU µs/req: median ratio 0.909 (per round 0.909 / 1.000 / 0.800); best round 10.00 vs 11.00",
		"user µs/req: median ratio 0.800 (per round 0.800 / 1.000 / 0.750); medians 5.00 vs 5.00"} {
		if !strings.Contains(got, want) {
			t.Errorf("Paired() = %q, want it to contain %q", got, want)
		}
	}
	if (&Report{Rows: rep.Rows[:1]}).Paired() != "" {
		t.Error("no baseline row: want no A/B section")
	}
}

func TestTargets(t *testing.T) {
	rep := &Report{
		Rows: []*Row{
			{Name: "switchyard", RPS: []float64{100}, CPUPerReq: []float64{10}},
			{Name: "nginx", RPS: []float64{90}, CPUPerReq: []float64{12}},
			{Name: "haproxy", RPS: []float64{110}, CPUPerReq: []float64{11}},
		},
		H2: []*Row{
			{Name: "switchyard", RPS: []float64{100, 100, 100}, CPUPerReq: []float64{20, 9, 30}},
			{Name: "nginx", RPS: []float64{90, 90, 90}, CPUPerReq: []float64{10, 10, 10}},
			{Name: "haproxy", Skipped: "not installed"},
		},
		GRPC: []*Row{{Name: "switchyard", RPS: []float64{100}, CPUPerReq: []float64{20}}},
	}
	got := rep.Targets()
	for _, want := range []string{
		"- HTTP/1.1: Switchyard 10.00 CPU µs/req vs 11.00 (haproxy, the lower of nginx and HAProxy): met (-9.1 %); 100 req/s vs 110 (the higher of the two): not met.",
		"- HTTP/2 (h2c clients, HTTP/1.1 upstreams): Switchyard 20.00 CPU µs/req vs 10.00 (nginx, the lower of nginx and HAProxy): not met (+100.0 %); 100 req/s vs 90 (the higher of the two): met.",
		"  - round by round, Switchyard's CPU µs/req ÷ nginx's: median 2.000 (per round 2.000 / 0.900 / 3.000), at or below 1 in 1 of 3 rounds.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Targets() = %q, want it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "round by round, Switchyard's CPU µs/req ÷ haproxy's") {
		t.Errorf("a one-round section has a round-by-round line: %q", got)
	}
	if strings.Contains(got, "- gRPC") {
		t.Errorf("gRPC has neither nginx nor HAProxy, yet a target line: %q", got)
	}
}

func TestNoise(t *testing.T) {
	quiet := &Report{Rows: []*Row{{Name: "direct", OtherLoad: []float64{0.01, 0.05}}}, H2: []*Row{{Name: "direct", OtherLoad: []float64{0.1}}}}
	if got := quiet.Noise(); !strings.Contains(got, "3 measured runs: median 0.05 cores, worst 0.10") || strings.Contains(got, "busy") {
		t.Errorf("quiet: %q", got)
	}
	busy := &Report{Rows: []*Row{{Name: "direct", OtherLoad: []float64{1.5, 0.9, 1.7}}}}
	if got := busy.Noise(); !strings.Contains(got, "median 1.50 cores, worst 1.70") || !strings.Contains(got, "busy with other work") {
		t.Errorf("busy: %q", got)
	}
	if (&Report{}).Noise() != "" {
		t.Error("no runs: want no noise line")
	}
}

func TestRequestBody(t *testing.T) {
	if got := string(RequestBody(0)); got != Request {
		t.Fatalf("RequestBody(0) = %s, want Request", got)
	}
	for _, n := range []int{len(Request) + 1, 1024, 4096} {
		b := RequestBody(n)
		var v struct {
			Model    string `json:"model"`
			Messages []struct {
				Role, Content string
			} `json:"messages"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("RequestBody(%d): %v", n, err)
		}
		if len(b) != n || v.Model != "bench" || len(v.Messages) != 1 || !strings.HasPrefix(v.Messages[0].Content, "hello") || len(v.Messages[0].Content) != len("hello")+n-len(Request) {
			t.Errorf("RequestBody(%d): %d bytes, %+v", n, len(b), v)
		}
	}
	if err := (&Config{BodyBytes: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "body bytes") {
		t.Errorf("Validate(BodyBytes -1) = %v, want a body bytes error", err)
	}
}
