package compare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/bench/hist"
	"github.com/switchyard-dev/switchyard/bench/loadgen"
)

// Config is one comparison run. Zero values take the defaults in each
// field's doc.
type Config struct {
	// Self is the switchyard binary (for the gateway and minproxy).
	Self string
	// BaselineBin, if set, is a second switchyard binary (say, built from
	// an older commit) run as the extra contender "switchyard-base", right
	// after "switchyard" in every round, so that old and new are measured
	// side by side under the same conditions.
	BaselineBin string
	// Only limits the run to these contenders (default: all).
	Only []string
	// Duration is each measured run. Default 6 s.
	Duration time.Duration
	// Warmup precedes each measured run. Default 2 s.
	Warmup time.Duration
	// Rounds is how many times each contender is measured, interleaved.
	// Default 5.
	Rounds int
	// Concurrency is the closed-loop connection count. Default 64.
	Concurrency int
	// Backends is the number of backend servers. Default 2.
	Backends int
	// ProxyCPU is the core the proxies are pinned to. Default 1.
	ProxyCPU int
	// Install lets the harness apt-get missing proxies.
	Install bool
	// QuietWait, if positive, makes each contender's turn wait (at most
	// this long) until the CPU used by other work on the machine, sampled
	// over one second, is below QuietBelow. The machine may be shared.
	QuietWait time.Duration
	// QuietBelow is that threshold in cores. Default 0.2.
	QuietBelow float64
	// Log receives progress lines (default: discarded).
	Log io.Writer
}

func (c Config) withDefaults() Config {
	if c.Duration == 0 {
		c.Duration = 6 * time.Second
	}
	if c.Warmup == 0 {
		c.Warmup = 2 * time.Second
	}
	if c.Rounds == 0 {
		c.Rounds = 5
	}
	if c.Concurrency == 0 {
		c.Concurrency = 64
	}
	if c.Backends == 0 {
		c.Backends = 2
	}
	if c.ProxyCPU == 0 {
		c.ProxyCPU = 1
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.QuietBelow == 0 {
		c.QuietBelow = 0.2
	}
	return c
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.Duration < 0 || c.Duration > 10*time.Minute:
		return fmt.Errorf("compare: config: duration %v: must be at most 10m", c.Duration)
	case c.Warmup < 0 || c.Warmup > time.Minute:
		return fmt.Errorf("compare: config: warmup %v: must be at most 1m", c.Warmup)
	case c.Rounds < 0 || c.Rounds > 20:
		return fmt.Errorf("compare: config: rounds %d: must be 1..20", c.Rounds)
	case c.Concurrency < 0 || c.Concurrency > 10000:
		return fmt.Errorf("compare: config: concurrency %d: must be 1..10000", c.Concurrency)
	case c.Backends < 0 || c.Backends > 16:
		return fmt.Errorf("compare: config: backends %d: must be 1..16", c.Backends)
	case c.QuietWait < 0 || c.QuietWait > 30*time.Minute:
		return fmt.Errorf("compare: config: quiet wait %v: must be 0..30m", c.QuietWait)
	case c.QuietBelow < 0 || c.QuietBelow > 2:
		return fmt.Errorf("compare: config: quiet threshold %v cores: must be 0..2", c.QuietBelow)
	}
	names := append(Names(), baseName)
	for _, o := range c.Only {
		if !slices.Contains(names, o) {
			return fmt.Errorf("compare: config: unknown contender %q (want one of %v)", o, names)
		}
		if o == baseName && c.BaselineBin == "" {
			return fmt.Errorf("compare: config: contender %q needs a baseline binary (-baseline-bin)", o)
		}
	}
	if c.BaselineBin != "" {
		if st, err := os.Stat(c.BaselineBin); err != nil || st.IsDir() {
			return fmt.Errorf("compare: config: baseline binary %q: not a file", c.BaselineBin)
		}
	}
	return nil
}

// Row is one contender's outcome.
type Row struct {
	Name string
	// Skipped says why the contender did not run ("" if it ran).
	Skipped string
	// RPS per round.
	RPS []float64
	// P50 and P99 per round, in nanoseconds.
	P50, P99 []int64
	// Latency merged over the rounds, in nanoseconds.
	Latency hist.Histogram
	Errors  int64
	// CPUPerReq is, per round, the CPU time (user + system, every process
	// of the contender's process group, from /proc) spent during the
	// measured run divided by the requests answered, in microseconds. Empty
	// for "direct" and where /proc is unreadable.
	CPUPerReq []float64
	// OtherLoad is, per round, the CPU other work on the machine used
	// during the measured run, in cores (see otherLoad); empty where /proc
	// is unreadable. A round with other load was disturbed.
	OtherLoad []float64
	// ErrorKinds merged over the rounds.
	ErrorKinds map[string]int64
	Version    string
}

// MedianRPS returns the median over rounds: the figure the report uses,
// since a shared machine can spoil a single round.
func (r *Row) MedianRPS() float64 { return median(r.RPS) }

// MedianP50 and MedianP99 return the median over rounds of each round's
// quantile, in milliseconds.
func (r *Row) MedianP50() float64 { return median(ms(r.P50)) }

// MedianP99 is MedianP50 for p99.
func (r *Row) MedianP99() float64 { return median(ms(r.P99)) }

func ms(v []int64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x) / 1e6
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// MedianCPUPerReq is the median over rounds of CPUPerReq (0 if unknown).
func (r *Row) MedianCPUPerReq() float64 { return median(r.CPUPerReq) }

// MeanRPS returns the mean over rounds.
func (r *Row) MeanRPS() float64 {
	if len(r.RPS) == 0 {
		return 0
	}
	var s float64
	for _, v := range r.RPS {
		s += v
	}
	return s / float64(len(r.RPS))
}

// Report is a whole comparison.
type Report struct {
	Config  Config
	Rows    []*Row
	Started time.Time
	Elapsed time.Duration
}

// Row returns the row of a contender, or nil.
func (r *Report) Row(name string) *Row {
	for _, x := range r.Rows {
		if x.Name == name {
			return x
		}
	}
	return nil
}

type running struct {
	c      contender
	row    *Row
	target string
	cmd    *exec.Cmd
	dir    string
}

// Run runs the comparison.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	logf := func(f string, a ...any) { fmt.Fprintf(cfg.Log, "compare: "+f+"\n", a...) }
	rep := &Report{Config: cfg, Started: time.Now()}

	var cs []contender
	all := contenders()
	if cfg.BaselineBin != "" {
		// The baseline runs right after switchyard in every round.
		i := slices.IndexFunc(all, func(c contender) bool { return c.name == "switchyard" })
		all = slices.Insert(all, i+1, contender{name: baseName, command: switchyardBaseCmd})
	}
	for _, c := range all {
		if len(cfg.Only) == 0 || slices.Contains(cfg.Only, c.name) {
			cs = append(cs, c)
		}
	}
	skip := ensureInstalled(ctx, cs, cfg.Install, logf)

	bctx, stopBackends := context.WithCancel(ctx)
	defer stopBackends()
	var backends []string
	for range cfg.Backends {
		a, err := StartBackend(bctx)
		if err != nil {
			return nil, err
		}
		backends = append(backends, a)
	}
	env := &runEnv{self: cfg.Self, base: cfg.BaselineBin, proxyCPU: cfg.ProxyCPU}
	if p, err := exec.LookPath("taskset"); err == nil {
		env.taskset = p
	} else {
		logf("taskset not found: proxies are not pinned")
	}
	root, err := os.MkdirTemp("", "switchyard-compare-")
	if err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}
	defer os.RemoveAll(root)

	var live []*running
	defer func() {
		for _, r := range live {
			stop(r.cmd)
		}
	}()
	for _, c := range cs {
		row := &Row{Name: c.name, ErrorKinds: map[string]int64{}}
		rep.Rows = append(rep.Rows, row)
		if why, ok := skip[c.name]; ok {
			row.Skipped = why
			logf("%s: skipped: %s", c.name, why)
			continue
		}
		r := &running{c: c, row: row, dir: filepath.Join(root, c.name)}
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
		if c.command == nil {
			r.target = "http://" + backends[0] + "/v1/chat/completions"
			live = append(live, r)
			continue
		}
		if c.name == "switchyard" || c.name == "minproxy" || c.name == baseName {
			if cfg.Self == "" {
				row.Skipped = "no switchyard binary given"
				continue
			}
		}
		listen, err := freePort()
		if err != nil {
			return nil, err
		}
		cmd, err := c.command(env, r.dir, listen, backends)
		if err != nil {
			row.Skipped = err.Error()
			logf("%s: skipped: %v", c.name, err)
			continue
		}
		logPath := filepath.Join(r.dir, "output.log")
		out, err := os.Create(logPath)
		if err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			out.Close()
			row.Skipped = "start: " + err.Error()
			continue
		}
		out.Close()
		r.cmd = cmd
		r.target = "http://" + listen + "/v1/chat/completions"
		if err := waitReady(ctx, cmd, r.target, 15*time.Second); err != nil {
			stop(cmd)
			b, _ := os.ReadFile(logPath)
			row.Skipped = fmt.Sprintf("did not start: %v: %s", err, tail(b))
			logf("%s: skipped: %s", c.name, row.Skipped)
			continue
		}
		row.Version = version(c)
		logf("%s: ready on %s", c.name, listen)
		live = append(live, r)
	}

	var groups []int
	for _, r := range live {
		if r.cmd != nil && r.cmd.Process != nil {
			groups = append(groups, r.cmd.Process.Pid)
		}
	}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, r := range live {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("compare: %w", err)
			}
			if cfg.QuietWait > 0 {
				if err := waitQuiet(ctx, cfg, groups, logf); err != nil {
					return nil, err
				}
			}
			lc := loadgen.Config{Target: r.target, Body: []byte(Request), Concurrency: cfg.Concurrency, Timeout: 5 * time.Second}
			lc.Duration = cfg.Warmup
			if _, err := loadgen.Run(ctx, lc); err != nil {
				return nil, fmt.Errorf("compare: %s warm-up: %w", r.c.name, err)
			}
			lc.Duration = cfg.Duration
			var pgid int
			if r.cmd != nil && r.cmd.Process != nil {
				pgid = r.cmd.Process.Pid
			}
			cpu0, cpuErr := groupCPU(pgid)
			snap0 := takeSnapshot(groups)
			res, err := loadgen.Run(ctx, lc)
			if err != nil {
				return nil, fmt.Errorf("compare: %s: %w", r.c.name, err)
			}
			snap1 := takeSnapshot(groups)
			other, otherOK := otherLoad(snap0, snap1)
			if otherOK {
				r.row.OtherLoad = append(r.row.OtherLoad, other)
			}
			if cpu1, err := groupCPU(pgid); pgid > 0 && cpuErr == nil && err == nil && res.OK > 0 {
				r.row.CPUPerReq = append(r.row.CPUPerReq, (cpu1-cpu0).Seconds()*1e6/float64(res.OK))
			}
			r.row.RPS = append(r.row.RPS, res.RPS())
			r.row.P50 = append(r.row.P50, res.Latency.Quantile(0.5))
			r.row.P99 = append(r.row.P99, res.Latency.Quantile(0.99))
			r.row.Latency.Merge(&res.Latency)
			r.row.Errors += res.ErrorCount()
			for k, v := range res.Errors {
				r.row.ErrorKinds[k] += v
			}
			cpu := ""
			if n := len(r.row.CPUPerReq); n > 0 && len(r.row.RPS) == n {
				cpu = fmt.Sprintf("; CPU %.2f µs/req", r.row.CPUPerReq[n-1])
			}
			if otherOK {
				w := snap1.at.Sub(snap0.at).Seconds()
				cpu += fmt.Sprintf("; other load %.2f cores (machine %.2f, ours %.2f)", other,
					(snap1.busy-snap0.busy).Seconds()/w, (snap1.ours-snap0.ours).Seconds()/w)
			}
			logf("round %d %-15s %s%s", round, r.c.name, res.Summary(), cpu)
		}
	}
	rep.Elapsed = time.Since(rep.Started)
	return rep, nil
}

// waitQuiet waits, at most cfg.QuietWait, until other work on the machine
// used less than cfg.QuietBelow cores over one second.
func waitQuiet(ctx context.Context, cfg Config, groups []int, logf func(string, ...any)) error {
	deadline := time.Now().Add(cfg.QuietWait)
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		a := takeSnapshot(groups)
		t.Reset(time.Second)
		select {
		case <-ctx.Done():
			return fmt.Errorf("compare: %w", ctx.Err())
		case <-t.C:
		}
		load, ok := otherLoad(a, takeSnapshot(groups))
		switch {
		case !ok:
			return nil // cannot tell: do not wait
		case load < cfg.QuietBelow:
			return nil
		case time.Now().After(deadline):
			logf("machine not quiet after %v (other load %.2f cores): measuring anyway", cfg.QuietWait, load)
			return nil
		}
		logf("waiting for a quiet machine: other load %.2f cores", load)
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("compare: %w", err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a, nil
}

// waitReady polls target with the bench request until it answers 200, the
// process exits, or timeout passes.
func waitReady(ctx context.Context, cmd *exec.Cmd, target string, timeout time.Duration) error {
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for time.Now().Before(deadline) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI(target)
		req.Header.SetMethod("POST")
		req.Header.SetContentType("application/json")
		req.SetBodyString(Request)
		err := fasthttp.DoTimeout(req, resp, time.Second)
		code := resp.StatusCode()
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
		if err == nil && code == 200 {
			// Keep reaping the process in the background.
			go func() { <-exited }()
			return nil
		}
		if err == nil {
			last = fmt.Errorf("status %d", code)
		} else {
			last = err
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return errors.Join(errors.New("not ready in time"), last)
}

// stop ends a contender's process group: SIGTERM, then SIGKILL after 3 s.
func stop(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	pgid := cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// version returns a contender's version line, best effort.
func version(c contender) string {
	var args []string
	switch c.bin {
	case "nginx":
		args = []string{"-v"}
	case "haproxy":
		args = []string{"-v"}
	case "caddy":
		args = []string{"version"}
	default:
		return ""
	}
	bin, err := lookBin(c.bin)
	if err != nil {
		return ""
	}
	out, _ := exec.Command(bin, args...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
