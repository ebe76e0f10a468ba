package streams

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/bench/gwproc"
	"github.com/switchyard-dev/switchyard/engines/sim"
	"github.com/switchyard-dev/switchyard/gateway"
)

// asGateway makes the test binary, run as a child process, a gateway
// with the quick start's flags: a real gateway process without building
// the switchyard binary.
const asGateway = "SWITCHYARD_STREAMS_TEST_GATEWAY"

func TestMain(m *testing.M) {
	if os.Getenv(asGateway) == "1" {
		if err := runGateway(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runGateway is `switchyard gateway --listen A --admin B --route M=URLS`,
// logging the bound addresses as it does.
func runGateway(args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	admin := fs.String("admin", "", "")
	pprofOn := fs.Bool("pprof", false, "")
	tokenFile := fs.String("admin-token-file", "", "")
	var routes []string
	fs.Func("route", "", func(s string) error { routes = append(routes, s); return nil })
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := gateway.QuickStart(*listen, *admin, routes)
	if err != nil {
		return err
	}
	cfg.Admin.PProf, cfg.Admin.TokenFile = *pprofOn, *tokenFile
	g, err := gateway.New(cfg)
	if err != nil {
		return err
	}
	cl, err := net.Listen("tcp", cfg.Listen.Client)
	if err != nil {
		return err
	}
	al, err := net.Listen("tcp", cfg.Listen.Admin)
	if err != nil {
		return err
	}
	// The startup lines that tell the harness the bound ports, as
	// switchyard gateway logs them.
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	log.Info(gwproc.AdminMsg, "addr", al.Addr().String())
	log.Info(gwproc.ClientMsg, "addr", cl.Addr().String(), "routes", len(cfg.Routes))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := g.Serve(ctx, cl, al); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// TestRunThroughGatewayProcess holds 10, then 30 streams through a
// gateway process and checks the report: memory read, every stream
// receiving tokens, the report written.
func TestRunThroughGatewayProcess(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		name := "http1"
		if h2 {
			name = "http2"
		}
		t.Run(name, func(t *testing.T) { testRunThroughGatewayProcess(t, h2) })
	}
}

func testRunThroughGatewayProcess(t *testing.T, h2 bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	profiles := t.TempDir()
	rep, err := Run(ctx, Config{Gateway: []string{os.Args[0]}, Env: []string{asGateway + "=1", "GORACE=atexit_sleep_ms=0"}, Levels: []int{10, 30}, Nodes: 2, HTTP2: h2,
		TokenInterval: 50 * time.Millisecond, Settle: 100 * time.Millisecond, Hold: 400 * time.Millisecond, ProfileDir: profiles})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || len(rep.Levels) != 2 {
		t.Fatalf("report not OK: %+v", rep.Levels)
	}
	if rep.Idle.RSS == 0 || rep.Idle.HeapInuse == 0 || rep.Idle.Goroutines == 0 {
		t.Fatalf("idle %+v", rep.Idle)
	}
	for _, l := range rep.Levels {
		// Tokens come every 50 ms: each stream gets several in 400 ms.
		if l.RSS == 0 || l.Receiving != l.Streams || l.Lost != 0 || l.Tokens < int64(2*l.Streams) || l.Goroutines < l.Streams || len(l.RSSSamples) != 5 {
			t.Fatalf("level %+v", l)
		}
	}
	if rep.NoFile < 2*30+1024 {
		t.Errorf("RLIMIT_NOFILE %d, want at least %d", rep.NoFile, 2*30+1024)
	}
	for _, f := range []string{"heap-10.pb.gz", "heap-30.pb.gz", "goroutines-30.txt"} {
		if st, err := os.Stat(filepath.Join(profiles, f)); err != nil || st.Size() == 0 {
			t.Errorf("profile %s: %v", f, err)
		}
	}
	dir := t.TempDir()
	if err := rep.Write(dir, "switchyard bench streams --test"); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "streams.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"`switchyard bench streams --test`", "| idle |", "| 30 |", "Target (issue 11)", "Every stream kept receiving tokens", "## Machine", "--route streams=http://"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestLostStreamsAreReported: streams whose engine crashes are lost, with
// a reason, and not counted as receiving.
func TestLostStreamsAreReported(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := sim.Start(ctx, sim.Config{Model: Model, Override: sim.Profile{Slots: 8, Prefill: time.Millisecond, PerToken: 20 * time.Millisecond, MaxTokens: maxTokens}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	sctx, closeStreams := context.WithCancel(ctx)
	defer closeStreams()
	c := &http.Client{Transport: &http.Transport{}}
	body := []byte(fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":%d}`, Model, maxTokens))
	var all []*stream
	var wg sync.WaitGroup
	for range 4 {
		s := &stream{}
		all = append(all, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(sctx, c, n.URL()+"/v1/chat/completions", body)
		}()
	}
	if err := waitFirstTokens(ctx, all, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	n.Crash()
	wg.Wait() // every stream ends on its own once the engine is gone
	for i, s := range all {
		if s.lostReason() == "" {
			t.Errorf("stream %d: not lost after the engine crashed", i)
		}
	}
	g := &gatewayProc{}
	l := Level{Streams: len(all)}
	if err := g.hold(ctx, Config{Hold: 10 * time.Millisecond}, all, &l); err != nil {
		t.Fatal(err)
	}
	if l.Lost != len(all) || l.Receiving != 0 || len(l.LostReasons) == 0 {
		t.Fatalf("level after the crash: %+v", l)
	}
	rep := &Report{Levels: []Level{l}}
	if rep.OK() || !strings.Contains(rep.Verdict(), "NOT every stream") {
		t.Fatalf("a report with lost streams reads as OK: %s", rep.Verdict())
	}
}

func TestParsers(t *testing.T) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	if v, err := parseVmRSS(status); err != nil || v == 0 || v%1024 != 0 {
		t.Fatalf("VmRSS of this process: %d, %v", v, err)
	}
	for _, bad := range []string{"Name: x\n", "VmRSS: 12 MB\n", "VmRSS: lots kB\n", "VmRSS:\n"} {
		if _, err := parseVmRSS([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if v, _ := parseVmRSS([]byte("VmPeak: 1 kB\nVmRSS:\t   2048 kB\n")); v != 2048<<10 {
		t.Errorf("VmRSS 2048 kB read as %d bytes", v)
	}
	// This process's own profiles, in the format the gateway's admin port
	// serves (net/http/pprof writes them with runtime/pprof).
	var heap, gor bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&heap, 1); err != nil {
		t.Fatal(err)
	}
	if err := pprof.Lookup("goroutine").WriteTo(&gor, 1); err != nil {
		t.Fatal(err)
	}
	if h, s := parseMemStats(heap.Bytes()); h == 0 || s == 0 {
		t.Fatalf("heap in use %d, stacks %d from:\n%.2000s", h, s, heap.String())
	}
	if n := parseGoroutines(gor.Bytes()); n < 1 {
		t.Fatalf("%d goroutines from %.200q", n, gor.String())
	}
	if h, s := parseMemStats([]byte("nothing\n")); h != 0 || s != 0 {
		t.Errorf("no MemStats: %d, %d", h, s)
	}
	if parseGoroutines([]byte("threadcreate profile: total 3\n")) != 0 {
		t.Error("another profile read as goroutines")
	}
}

func TestValidate(t *testing.T) {
	good := Config{Gateway: []string{"/bin/true"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]Config{
		"no gateway":        {},
		"levels not rising": {Gateway: []string{"x"}, Levels: []int{3000, 1000}},
		"zero level":        {Gateway: []string{"x"}, Levels: []int{0}},
		"huge level":        {Gateway: []string{"x"}, Levels: []int{1_000_000}},
		"negative nodes":    {Gateway: []string{"x"}, Nodes: -1},
		"negative rate":     {Gateway: []string{"x"}, OpenRate: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
