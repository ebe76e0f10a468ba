package live

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/bench/gwproc"
	"github.com/switchyard-dev/switchyard/gateway"
	"github.com/switchyard-dev/switchyard/gateway/config"
)

// asGateway makes the test binary, run as a child process, a gateway
// reading a config file (`switchyard gateway --config FILE`): a real
// gateway process without building the switchyard binary.
const asGateway = "SWITCHYARD_LIVE_TEST_GATEWAY"

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

// runGateway is `switchyard gateway --config FILE`, logging the bound
// addresses as it does.
func runGateway(args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	path := fs.String("config", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.LoadConfig(*path)
	if err != nil {
		return err
	}
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

// TestLiveShort is a short live run (one repetition of each policy, 15 s
// measured): with affinity on, the engines' prefix-cache hit rate is
// higher than with it off, and no request is lost. It does not judge
// latency (tests never time; make bench-affinity-live does).
//
// Enough requests that the difference is no accident: about 200 measured
// per run, each repeating a conversation's history; the hit rates differ
// by 0.07 to 0.10 in the runs so far, and the check asks for a margin of
// 0.02.
func TestLiveShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway process and six engines for a minute")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Gateway, cfg.Env = []string{self}, []string{asGateway + "=1", "GORACE=atexit_sleep_ms=0"} // no 1 s wait at the stand-in's exit under -race
	cfg.Warmup, cfg.Measure, cfg.Drain, cfg.Reps = 6*time.Second, 15*time.Second, 30*time.Second, 1
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.Table())
	on, off := rep.Runs[0], rep.Runs[1]
	if on.Policy != PolicyDefault || off.Policy != PolicyLoadOnly {
		t.Fatalf("runs %s, %s", on.Policy, off.Policy)
	}
	for _, r := range rep.Runs {
		if r.Lost != 0 {
			t.Errorf("%s: %d requests lost: %v", r.Policy, r.Lost, r.Failures)
		}
		if r.Measured < 150 {
			t.Errorf("%s: only %d requests measured", r.Policy, r.Measured)
		}
	}
	if !(on.HitRate > off.HitRate+0.02) {
		t.Errorf("prefix hit rate %.3f with affinity, %.3f without: want higher with affinity", on.HitRate, off.HitRate)
	}
	dir := t.TempDir()
	if err := rep.Write(dir, "go test"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"affinity-live.md", "affinity-live.json", "affinity-live-ttft-cdf.png", "affinity-live-hit-rate.png"} {
		if _, err := os.Stat(dir + "/" + f); err != nil {
			t.Error(err)
		}
	}
}
