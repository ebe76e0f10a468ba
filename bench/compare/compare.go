package compare

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/bench/cpuload"
	"github.com/switchyard-dev/switchyard/bench/freeport"
	"github.com/switchyard-dev/switchyard/bench/hist"
	"github.com/switchyard-dev/switchyard/bench/loadgen"
)

// Config is one comparison run. Zero values take the defaults in each
// field's doc.
type Config struct {
	// Self is the switchyard binary (for the gateway, minproxy and epollproxy).
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
	// Sections are the protocols measured, each round in this order:
	// SectionHTTP1, SectionH2, SectionGRPC. Default all three.
	Sections []string
	// Concurrency is the closed-loop connection count of the HTTP/1.1
	// section, and the closed-loop callers of the gRPC section (sharing
	// one connection, as grpc-go does). Default 64.
	Concurrency int
	// BodyBytes is the size of the request body of the HTTP/1.1 and
	// HTTP/2 sections (RequestBody); 0: Request, 79 bytes.
	BodyBytes int
	// H2Conns and H2Streams shape the HTTP/2 section's load: h2load opens
	// H2Conns connections, each keeping H2Streams requests in flight.
	// Default 8 × 8: 64 in flight, as in the HTTP/1.1 section.
	H2Conns, H2Streams int
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
	// ProfileDir, if set, gets CPU profiles of Switchyard's gateway (and
	// of switchyard-base) under each section's load: after the rounds,
	// one extra run per section, not counted in the results, while the
	// admin port's /debug/pprof/profile samples it
	// (NAME-SECTION.cpu.pb.gz, for go tool pprof with the binary).
	ProfileDir string
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
	if len(c.Sections) == 0 {
		c.Sections = Sections()
	}
	if c.H2Conns == 0 {
		c.H2Conns = 8
	}
	if c.H2Streams == 0 {
		c.H2Streams = 8
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
	case c.BodyBytes < 0 || c.BodyBytes > 1<<20:
		return fmt.Errorf("compare: config: body bytes %d: must be 0..1048576", c.BodyBytes)
	case c.H2Conns < 0 || c.H2Conns > 1000:
		return fmt.Errorf("compare: config: h2 connections %d: must be 1..1000", c.H2Conns)
	case c.H2Streams < 0 || c.H2Streams > 1000:
		return fmt.Errorf("compare: config: h2 streams per connection %d: must be 1..1000", c.H2Streams)
	case c.Backends < 0 || c.Backends > 16:
		return fmt.Errorf("compare: config: backends %d: must be 1..16", c.Backends)
	case c.QuietWait < 0 || c.QuietWait > 30*time.Minute:
		return fmt.Errorf("compare: config: quiet wait %v: must be 0..30m", c.QuietWait)
	case c.QuietBelow < 0 || c.QuietBelow > 2:
		return fmt.Errorf("compare: config: quiet threshold %v cores: must be 0..2", c.QuietBelow)
	}
	for _, sec := range c.Sections {
		if !slices.Contains(Sections(), sec) {
			return fmt.Errorf("compare: config: unknown section %q (want some of %v)", sec, Sections())
		}
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
	// UserPerReq is, per round, the user-time part of CPUPerReq: the
	// proxy's own code and runtime, without the kernel's work in its
	// system calls (the loopback TCP stack, the same for every proxy that
	// makes the same calls).
	UserPerReq []float64
	// OtherLoad is, per round, the CPU other work on the machine used
	// during the measured run, in cores (see cpuload.Other); empty where /proc
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

// MedianUserPerReq is the median over rounds of UserPerReq (0 if unknown).
func (r *Row) MedianUserPerReq() float64 { return median(r.UserPerReq) }

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

// The sections of a comparison, one protocol each.
const (
	// SectionHTTP1: HTTP/1.1 clients (bench/loadgen), HTTP/1.1 upstreams.
	SectionHTTP1 = "http1"
	// SectionH2: h2c clients (h2load), HTTP/1.1 upstreams.
	SectionH2 = "h2"
	// SectionGRPC: gRPC unary ModelInfer clients (bench/loadgen, grpc-go)
	// to gRPC backends.
	SectionGRPC = "grpc"
)

// Sections returns the section names in run order.
func Sections() []string { return []string{SectionHTTP1, SectionH2, SectionGRPC} }

// Report is a whole comparison.
type Report struct {
	Config Config
	// Rows is the HTTP/1.1 section, H2 the HTTP/2 one and GRPC the gRPC
	// one; a section that did not run has no rows.
	Rows, H2, GRPC []*Row
	// H2Skipped says why the HTTP/2 section did not run ("" if it ran or
	// was not asked for).
	H2Skipped string
	// H2Load is h2load's version line.
	H2Load  string
	Started time.Time
	Elapsed time.Duration
}

// Row returns the HTTP/1.1 row of a contender, or nil.
func (r *Report) Row(name string) *Row { return findRow(r.Rows, name) }

// SectionRows returns the rows of a section (nil for an unknown one).
func (r *Report) SectionRows(section string) []*Row {
	switch section {
	case SectionHTTP1:
		return r.Rows
	case SectionH2:
		return r.H2
	case SectionGRPC:
		return r.GRPC
	}
	return nil
}

func findRow(rows []*Row, name string) *Row {
	for _, x := range rows {
		if x.Name == name {
			return x
		}
	}
	return nil
}

// running is a live contender and its targets.
type running struct {
	c    contender
	rows map[string]*Row // by section
	cmd  *exec.Cmd
	dir  string
	// h1 and h2 are URLs of /v1/chat/completions; grpc is host:port.
	h1, h2, grpc string
	// admin is the gateway's admin address when profiling ("" if not),
	// token its admin token.
	admin, token string
}

// Run runs the comparison.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	logf := func(f string, a ...any) { fmt.Fprintf(cfg.Log, "compare: "+f+"\n", a...) }
	rep := &Report{Config: cfg, Started: time.Now()}
	on := func(sec string) bool { return slices.Contains(cfg.Sections, sec) }

	var cs []contender
	all := contenders()
	if cfg.BaselineBin != "" {
		// The baseline runs right after switchyard in every round.
		i := slices.IndexFunc(all, func(c contender) bool { return c.name == "switchyard" })
		base := all[i]
		base.name, base.command = baseName, switchyardBaseCmd
		all = slices.Insert(all, i+1, base)
	}
	for _, c := range all {
		if len(cfg.Only) == 0 || slices.Contains(cfg.Only, c.name) {
			cs = append(cs, c)
		}
	}
	in := &installer{allowed: cfg.Install, log: logf}
	skip := ensureInstalled(ctx, cs, in)
	h2loadBin := ""
	if on(SectionH2) {
		if err := in.ensure(ctx, "h2load", []string{"nghttp2-client"}); err != nil {
			rep.H2Skipped = err.Error()
			logf("HTTP/2 section skipped: %v", err)
		} else {
			h2loadBin, _ = lookBin("h2load")
			out, _ := exec.CommandContext(ctx, h2loadBin, "--version").CombinedOutput()
			rep.H2Load = strings.TrimSpace(string(out))
		}
	}
	runH2 := h2loadBin != ""

	bctx, stopBackends := context.WithCancel(ctx)
	defer stopBackends()
	var backends, grpcBackends []string
	for range cfg.Backends {
		a, err := StartBackend(bctx)
		if err != nil {
			return nil, err
		}
		backends = append(backends, a)
	}
	var h2cBackend string
	if runH2 {
		a, err := StartH2CBackend(bctx)
		if err != nil {
			return nil, err
		}
		h2cBackend = a
	}
	if on(SectionGRPC) {
		for range cfg.Backends {
			a, err := StartGRPCBackend(bctx)
			if err != nil {
				return nil, err
			}
			grpcBackends = append(grpcBackends, a)
		}
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
	body := RequestBody(cfg.BodyBytes)
	bodyFile := filepath.Join(root, "request.json")
	if err := os.WriteFile(bodyFile, body, 0o644); err != nil {
		return nil, fmt.Errorf("compare: %w", err)
	}

	var live []*running
	defer func() {
		for _, r := range live {
			stop(r.cmd)
		}
	}()
	for _, c := range cs {
		r := &running{c: c, rows: map[string]*Row{}, dir: filepath.Join(root, c.name)}
		add := func(sec string, rows *[]*Row) {
			row := &Row{Name: c.name, ErrorKinds: map[string]int64{}}
			*rows = append(*rows, row)
			r.rows[sec] = row
		}
		if on(SectionHTTP1) {
			add(SectionHTTP1, &rep.Rows)
		}
		if runH2 && c.h2 {
			add(SectionH2, &rep.H2)
		}
		if on(SectionGRPC) && c.grpc {
			add(SectionGRPC, &rep.GRPC)
		}
		if len(r.rows) == 0 {
			continue
		}
		skipAll := func(why string) {
			for _, row := range r.rows {
				row.Skipped = why
			}
			logf("%s: skipped: %s", c.name, why)
		}
		if why, ok := skip[c.name]; ok {
			skipAll(why)
			continue
		}
		if err := os.MkdirAll(r.dir, 0o755); err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
		if c.command == nil {
			r.h1 = "http://" + backends[0] + "/v1/chat/completions"
			if h2cBackend != "" {
				r.h2 = "http://" + h2cBackend + "/v1/chat/completions"
			}
			if len(grpcBackends) > 0 {
				r.grpc = grpcBackends[0]
			}
			live = append(live, r)
			continue
		}
		if c.name == "switchyard" || c.name == "minproxy" || c.name == "epollproxy" || c.name == baseName {
			if cfg.Self == "" {
				skipAll("no switchyard binary given")
				continue
			}
		}
		cd := confData{Dir: r.dir, Backends: backends}
		if cd.Listen, err = freePort(); err != nil {
			return nil, err
		}
		if cfg.ProfileDir != "" && (c.name == "switchyard" || c.name == baseName) {
			if cd.Admin, err = freePort(); err != nil {
				return nil, err
			}
			r.admin, r.token = cd.Admin, rand.Text()
			cd.AdminTokenFile = filepath.Join(r.dir, "admin-token")
			if err := os.WriteFile(cd.AdminTokenFile, []byte(r.token+"\n"), 0o600); err != nil {
				return nil, fmt.Errorf("compare: %w", err)
			}
		}
		if r.rows[SectionGRPC] != nil {
			cd.GRPCBackends = grpcBackends
		}
		if r.rows[SectionH2] != nil || r.rows[SectionGRPC] != nil {
			cd.ListenH2 = cd.Listen
			if !c.onePort {
				if cd.ListenH2, err = freePort(); err != nil {
					return nil, err
				}
			}
		}
		cmd, err := c.command(env, cd)
		if err != nil {
			skipAll(err.Error())
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
			skipAll("start: " + err.Error())
			continue
		}
		out.Close()
		r.cmd = cmd
		r.h1 = "http://" + cd.Listen + "/v1/chat/completions"
		r.h2 = "http://" + cd.ListenH2 + "/v1/chat/completions"
		r.grpc = cd.ListenH2
		if err := waitReady(ctx, cmd, r.h1, 15*time.Second); err != nil {
			stop(cmd)
			b, _ := os.ReadFile(logPath)
			skipAll(fmt.Sprintf("did not start: %v: %s", err, tail(b)))
			continue
		}
		v := version(c)
		for _, row := range r.rows {
			row.Version = v
		}
		logf("%s: ready on %s (h2c/gRPC: %s)", c.name, cd.Listen, cd.ListenH2)
		live = append(live, r)
	}

	var groups []int
	for _, r := range live {
		if r.cmd != nil && r.cmd.Process != nil {
			groups = append(groups, r.cmd.Process.Pid)
		}
	}
	// loads are the load functions, by contender and section.
	loads := map[*running]map[string]func(time.Duration) (*loadgen.Result, error){}
	for _, r := range live {
		loads[r] = map[string]func(time.Duration) (*loadgen.Result, error){}
	}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, sec := range cfg.Sections {
			for _, r := range live {
				row := r.rows[sec]
				if row == nil {
					continue
				}
				if err := ctx.Err(); err != nil {
					return nil, fmt.Errorf("compare: %w", err)
				}
				if cfg.QuietWait > 0 {
					if err := waitQuiet(ctx, cfg, groups, logf); err != nil {
						return nil, err
					}
				}
				load := loads[r][sec]
				if load == nil {
					load = func(d time.Duration) (*loadgen.Result, error) {
						switch sec {
						case SectionH2:
							return h2loadRun{bin: h2loadBin, target: r.h2, bodyFile: bodyFile, logFile: filepath.Join(root, "h2load.log"),
								conns: cfg.H2Conns, streams: cfg.H2Streams, duration: d}.run(ctx)
						case SectionGRPC:
							return loadgen.Run(ctx, loadgen.Config{Target: r.grpc, Protocol: loadgen.GRPC, Model: GRPCModel,
								Concurrency: cfg.Concurrency, Timeout: 5 * time.Second, Duration: d})
						}
						return loadgen.Run(ctx, loadgen.Config{Target: r.h1, Body: body, Concurrency: cfg.Concurrency,
							Timeout: 5 * time.Second, Duration: d})
					}
					loads[r][sec] = load
				}
				if err := measure(r, row, sec, round, groups, load, cfg, logf); err != nil {
					return nil, err
				}
			}
		}
	}
	if cfg.ProfileDir != "" {
		for _, sec := range cfg.Sections {
			for _, r := range live {
				if r.admin == "" || r.rows[sec] == nil || r.rows[sec].Skipped != "" {
					continue
				}
				if err := profile(ctx, r, sec, loads[r][sec], cfg, logf); err != nil {
					return nil, err
				}
			}
		}
	}
	rep.Elapsed = time.Since(rep.Started)
	return rep, nil
}

// profile runs a contender's load for cfg.Duration while its admin port's
// CPU profiler samples it, and saves the profile in cfg.ProfileDir.
func profile(ctx context.Context, r *running, sec string, load func(time.Duration) (*loadgen.Result, error), cfg Config, logf func(string, ...any)) error {
	secs := max(1, int((cfg.Duration-time.Second)/time.Second))
	type got struct {
		b   []byte
		err error
	}
	done := make(chan got, 1)
	go func() {
		c := &http.Client{Timeout: time.Duration(secs)*time.Second + 30*time.Second}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", r.admin, secs), nil)
		if err != nil {
			done <- got{err: err}
			return
		}
		req.Header.Set("Authorization", "Bearer "+r.token)
		resp, err := c.Do(req)
		if err != nil {
			done <- got{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		done <- got{b, err}
	}()
	res, err := load(time.Duration(secs)*time.Second + time.Second)
	if err != nil {
		return fmt.Errorf("compare: %s %s profile run: %w", sec, r.c.name, err)
	}
	g := <-done
	if g.err != nil {
		return fmt.Errorf("compare: %s %s CPU profile: %w", sec, r.c.name, g.err)
	}
	p := filepath.Join(cfg.ProfileDir, r.c.name+"-"+sec+".cpu.pb.gz")
	if err := os.WriteFile(p, g.b, 0o644); err != nil {
		return fmt.Errorf("compare: %w", err)
	}
	logf("profile %-5s %-15s %s (under load: %s)", sec, r.c.name, p, res.Summary())
	return nil
}

// measure runs one warm-up and one measured run of a contender in a
// section and adds the measured one to its row.
func measure(r *running, row *Row, sec string, round int, groups []int, load func(time.Duration) (*loadgen.Result, error),
	cfg Config, logf func(string, ...any)) error {
	if _, err := load(cfg.Warmup); err != nil {
		return fmt.Errorf("compare: %s %s warm-up: %w", sec, r.c.name, err)
	}
	var pgid int
	if r.cmd != nil && r.cmd.Process != nil {
		pgid = r.cmd.Process.Pid
	}
	cpu0, cpuErr := cpuload.GroupTimes(pgid)
	snap0 := cpuload.Take(groups)
	res, err := load(cfg.Duration)
	if err != nil {
		return fmt.Errorf("compare: %s %s: %w", sec, r.c.name, err)
	}
	snap1 := cpuload.Take(groups)
	other, otherOK := cpuload.Other(snap0, snap1)
	if otherOK {
		row.OtherLoad = append(row.OtherLoad, other)
	}
	if cpu1, err := cpuload.GroupTimes(pgid); pgid > 0 && cpuErr == nil && err == nil && res.OK > 0 {
		perReq := func(d time.Duration) float64 { return d.Seconds() * 1e6 / float64(res.OK) }
		row.CPUPerReq = append(row.CPUPerReq, perReq(cpu1.Total()-cpu0.Total()))
		row.UserPerReq = append(row.UserPerReq, perReq(cpu1.User-cpu0.User))
	}
	row.RPS = append(row.RPS, res.RPS())
	row.P50 = append(row.P50, res.Latency.Quantile(0.5))
	row.P99 = append(row.P99, res.Latency.Quantile(0.99))
	row.Latency.Merge(&res.Latency)
	row.Errors += res.ErrorCount()
	for k, v := range res.Errors {
		row.ErrorKinds[k] += v
	}
	cpu := ""
	if n := len(row.CPUPerReq); n > 0 && len(row.RPS) == n {
		cpu = fmt.Sprintf("; CPU %.2f µs/req (user %.2f)", row.CPUPerReq[n-1], row.UserPerReq[n-1])
	}
	if otherOK {
		w := snap1.At.Sub(snap0.At).Seconds()
		cpu += fmt.Sprintf("; other load %.2f cores (machine %.2f, ours %.2f)", other,
			(snap1.Busy-snap0.Busy).Seconds()/w, (snap1.Ours-snap0.Ours).Seconds()/w)
	}
	logf("round %d %-5s %-15s %s%s", round, sec, r.c.name, res.Summary(), cpu)
	return nil
}

// waitQuiet waits, at most cfg.QuietWait, until other work on the machine
// used less than cfg.QuietBelow cores over one second.
func waitQuiet(ctx context.Context, cfg Config, groups []int, logf func(string, ...any)) error {
	deadline := time.Now().Add(cfg.QuietWait)
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		a := cpuload.Take(groups)
		t.Reset(time.Second)
		select {
		case <-ctx.Done():
			return fmt.Errorf("compare: %w", ctx.Err())
		case <-t.C:
		}
		load, ok := cpuload.Other(a, cpuload.Take(groups))
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

// freePort is a loopback address for a contender to listen on.
func freePort() (string, error) {
	a, err := freeport.Loopback(1)
	if err != nil {
		return "", fmt.Errorf("compare: %w", err)
	}
	return a[0], nil
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
