package streams

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard/bench/cpuload"
	"github.com/switchyard-dev/switchyard/bench/gwproc"
	"github.com/switchyard-dev/switchyard/engines/sim"
)

// Model is the model name the simulated engines serve.
const Model = "streams"

// Config is one measurement. Zero values take the defaults in each
// field's doc.
type Config struct {
	// Gateway is the command that runs the gateway, without its flags,
	// e.g. {"/usr/local/bin/switchyard", "gateway"}. Run appends
	// --listen, --admin and --route streams=URL,... (the gateway's quick
	// start with its default configuration). Required.
	Gateway []string
	// Env is added to the gateway's environment.
	Env []string
	// Levels are the stream counts measured, increasing. Default 1000,
	// 3000, 5000.
	Levels []int
	// Nodes is the number of simulated engines. Default 8 (the gateway
	// allows 1,024 requests in flight per node by default).
	Nodes int
	// TokenInterval is the time between two tokens of a stream. Default
	// 1 s.
	TokenInterval time.Duration
	// OpenRate is how many streams are opened per second. Default 1000.
	OpenRate float64
	// Settle is the wait, once every stream of a level has its first
	// token, before memory is sampled. Default 5 s.
	Settle time.Duration
	// Hold is the window in which every open stream must receive a token.
	// Default 3 × TokenInterval.
	Hold time.Duration
	// HTTP2 makes the client speak h2c (HTTP/2 with prior knowledge),
	// many streams per connection, instead of HTTP/1.1 with a connection
	// per stream.
	HTTP2 bool
	// ProfileDir, if set, receives the gateway's goroutine dump
	// (goroutines-N.txt) and, after the level's measurements, its heap
	// profile right after a forced collection (heap-N.pb.gz, for go tool
	// pprof) at each level. The collection may lower the next levels'
	// RSS a little: measure without it.
	ProfileDir string
	// Log receives progress lines (default: discarded).
	Log io.Writer
}

func (c Config) withDefaults() Config {
	if len(c.Levels) == 0 {
		c.Levels = []int{1000, 3000, 5000}
	}
	if c.Nodes == 0 {
		c.Nodes = 8
	}
	if c.TokenInterval == 0 {
		c.TokenInterval = time.Second
	}
	if c.OpenRate == 0 {
		c.OpenRate = 1000
	}
	if c.Settle == 0 {
		c.Settle = 5 * time.Second
	}
	if c.Hold == 0 {
		c.Hold = 3 * c.TokenInterval
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return c
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case len(c.Gateway) == 0 || c.Gateway[0] == "":
		return errors.New("streams: config: no gateway command")
	case c.Nodes < 0 || c.Nodes > 64:
		return fmt.Errorf("streams: config: nodes %d: must be 1..64", c.Nodes)
	case c.TokenInterval < 0 || c.TokenInterval > time.Minute:
		return fmt.Errorf("streams: config: token interval %v: must be at most 1m", c.TokenInterval)
	case c.OpenRate < 0 || c.OpenRate > 100_000:
		return fmt.Errorf("streams: config: open rate %v: must be 1..100000 per second", c.OpenRate)
	case c.Settle < 0 || c.Settle > 10*time.Minute:
		return fmt.Errorf("streams: config: settle %v: must be at most 10m", c.Settle)
	case c.Hold < 0 || c.Hold > 10*time.Minute:
		return fmt.Errorf("streams: config: hold %v: must be at most 10m", c.Hold)
	}
	last := 0
	for _, n := range c.Levels {
		if n <= last || n > 50_000 {
			return fmt.Errorf("streams: config: levels %v: must increase, each 1..50000", c.Levels)
		}
		last = n
	}
	return nil
}

// Level is what was measured with a number of streams open.
type Level struct {
	// Streams is how many streams were opened (0: idle).
	Streams int
	// RSS is the gateway's VmRSS in bytes, the median of the samples.
	RSS uint64
	// RSSSamples are the samples.
	RSSSamples []uint64
	// HeapInuse and StackInuse are the Go runtime's (runtime.MemStats),
	// in bytes; Goroutines the gateway's goroutine count. 0 when the
	// admin port did not answer.
	HeapInuse, StackInuse uint64
	Goroutines            int
	// Receiving counts the streams that received at least one token
	// during the hold window; Lost those that ended or failed (by
	// reason). Receiving + Lost < Streams means some stalled.
	Receiving, Lost int
	LostReasons     map[string]int
	// Tokens is the number of tokens the streams received in the hold
	// window, Hold its length.
	Tokens int64
	Hold   time.Duration
	// GatewayCPU is the gateway's CPU use during the hold window, in
	// cores; OtherLoad the CPU other work on the machine used (see
	// cpuload.Other), in cores; -1 where /proc is unreadable.
	GatewayCPU, OtherLoad float64
	// Open is the time it took to open this level's new streams and see
	// a first token on each.
	Open time.Duration
}

// BytesPerStream is (RSS − idle RSS) / Streams.
func (l *Level) BytesPerStream(idle *Level) float64 {
	if l.Streams == 0 {
		return 0
	}
	return (float64(l.RSS) - float64(idle.RSS)) / float64(l.Streams)
}

// Stalled counts the streams that neither received a token in the hold
// window nor ended.
func (l *Level) Stalled() int { return l.Streams - l.Receiving - l.Lost }

// Report is a whole measurement.
type Report struct {
	Config  Config
	Idle    Level
	Levels  []Level
	Started time.Time
	Elapsed time.Duration
	// Command is the gateway's command line.
	Command string
	// NoFile is the harness's RLIMIT_NOFILE after raising it.
	NoFile uint64
}

// OK reports whether every stream of every level kept receiving tokens.
func (r *Report) OK() bool {
	for i := range r.Levels {
		l := &r.Levels[i]
		if l.Receiving != l.Streams {
			return false
		}
	}
	return len(r.Levels) > 0
}

// Run runs the measurement.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	logf := func(f string, a ...any) { fmt.Fprintf(cfg.Log, "streams: "+f+"\n", a...) }
	rep := &Report{Config: cfg, Started: time.Now()}
	top := cfg.Levels[len(cfg.Levels)-1]
	// Two sockets per stream in this process (client, engine) and two in
	// the gateway (client, upstream): each process needs 2 × top.
	nofile, err := raiseNoFile(uint64(2*top + 1024))
	if err != nil {
		return nil, err
	}
	rep.NoFile = nofile

	// The simulated engines: any node can hold every stream, one token
	// per TokenInterval, an output longer than the run.
	var urls []string
	var nodes []*sim.Node
	defer func() {
		for _, n := range nodes {
			_ = n.Close()
		}
	}()
	for i := range cfg.Nodes {
		n, err := sim.Start(ctx, sim.Config{ID: fmt.Sprintf("sim-%d", i), Model: Model, Profile: "a10",
			Override: sim.Profile{Slots: top, QueueDepth: -1, Prefill: 10 * time.Millisecond, PerToken: cfg.TokenInterval, MaxTokens: maxTokens}})
		if err != nil {
			return nil, fmt.Errorf("streams: %w", err)
		}
		nodes = append(nodes, n)
		urls = append(urls, n.URL())
	}

	gw, err := startGateway(ctx, cfg, urls)
	if err != nil {
		return nil, err
	}
	defer gw.stop()
	rep.Command = gw.command
	logf("gateway pid %d on %s (admin %s): %s", gw.pid, gw.listen, gw.admin, gw.command)

	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   16,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableCompression:    true,
	}
	if cfg.HTTP2 {
		// h2c only; Go's client opens another connection when one has
		// as many streams as the gateway allows.
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	client := &http.Client{Transport: tr}
	major := 1
	if cfg.HTTP2 {
		major = 2
	}
	defer client.CloseIdleConnections()
	target := "http://" + gw.listen + "/v1/chat/completions"

	// Idle: after one short stream through every layer, so that what is
	// set up on first use counts as idle.
	if err := oneShortStream(ctx, client, target, cfg.TokenInterval, major); err != nil {
		return nil, fmt.Errorf("streams: warm-up stream: %w", err)
	}
	if err := sleep(ctx, min(cfg.Settle, 2*time.Second)); err != nil {
		return nil, err
	}
	if rep.Idle, err = gw.sample(ctx, cfg, 0); err != nil {
		return nil, err
	}
	logf("idle: RSS %.1f MiB, heap in use %.1f MiB, stacks %.1f MiB, %d goroutines",
		mib(rep.Idle.RSS), mib(rep.Idle.HeapInuse), mib(rep.Idle.StackInuse), rep.Idle.Goroutines)

	sctx, closeStreams := context.WithCancel(ctx)
	var all []*stream
	var wg sync.WaitGroup
	defer func() {
		closeStreams()
		wg.Wait()
	}()
	body := []byte(fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hello"}],"stream":true,"max_tokens":%d}`, Model, maxTokens))
	for _, n := range cfg.Levels {
		t0 := time.Now()
		tick := time.NewTicker(time.Duration(float64(time.Second) / cfg.OpenRate))
		for len(all) < n {
			s := &stream{major: major}
			all = append(all, s)
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.run(sctx, client, target, body)
			}()
			select {
			case <-ctx.Done():
				tick.Stop()
				return nil, fmt.Errorf("streams: %w", ctx.Err())
			case <-tick.C:
			}
		}
		tick.Stop()
		if err := waitFirstTokens(ctx, all, 60*time.Second+time.Duration(float64(n)/cfg.OpenRate*float64(time.Second))); err != nil {
			return nil, err
		}
		open := time.Since(t0)
		logf("%d streams open, each with a token, in %v", n, open.Round(time.Millisecond))
		if err := sleep(ctx, cfg.Settle); err != nil {
			return nil, err
		}
		l, err := gw.sample(ctx, cfg, n)
		if err != nil {
			return nil, err
		}
		l.Open = open
		if err := gw.hold(ctx, cfg, all, &l); err != nil {
			return nil, err
		}
		if cfg.ProfileDir != "" {
			if err := gw.saveHeapProfile(ctx, cfg.ProfileDir, n); err != nil {
				return nil, err
			}
		}
		rep.Levels = append(rep.Levels, l)
		logf("%d streams: RSS %.1f MiB (%+.1f KiB per stream), heap in use %.1f MiB, stacks %.1f MiB, %d goroutines; in %v: %d receiving, %d lost, %d stalled, %d tokens; gateway CPU %.2f cores, other load %.2f cores",
			n, mib(l.RSS), l.BytesPerStream(&rep.Idle)/1024, mib(l.HeapInuse), mib(l.StackInuse), l.Goroutines,
			l.Hold.Round(time.Millisecond), l.Receiving, l.Lost, l.Stalled(), l.Tokens, l.GatewayCPU, l.OtherLoad)
	}
	rep.Elapsed = time.Since(rep.Started)
	return rep, nil
}

// maxTokens is the output length asked for: the most the sim accepts,
// 12 days at one token per second.
const maxTokens = 1 << 20

// stream is one client stream.
type stream struct {
	major  int // the HTTP major version the answer must come in
	tokens atomic.Int64
	mu     sync.Mutex
	lost   string // why it ended ("" while open)
}

func (s *stream) fail(why string) {
	s.mu.Lock()
	if s.lost == "" {
		s.lost = why
	}
	s.mu.Unlock()
}

func (s *stream) lostReason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lost
}

// run sends the request and counts the SSE data events of the answer
// until ctx is done; a stream that ends or fails before is lost.
func (s *stream) run(ctx context.Context, c *http.Client, url string, body []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		s.fail("request: " + err.Error())
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			s.fail("request failed: " + errKind(err))
		}
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.fail("status " + strconv.Itoa(resp.StatusCode))
		return
	}
	if resp.ProtoMajor != s.major {
		s.fail("answered over " + resp.Proto)
		return
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		if bytes.Equal(bytes.TrimSpace(line[5:]), []byte("[DONE]")) {
			s.fail("ended ([DONE])")
			return
		}
		s.tokens.Add(1)
	}
	if ctx.Err() != nil {
		return // closed by us
	}
	if err := sc.Err(); err != nil {
		s.fail("read: " + errKind(err))
		return
	}
	s.fail("ended without [DONE]")
}

func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no local port"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected EOF"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other"
}

// oneShortStream sends one streamed request of two tokens and reads it to
// its end.
func oneShortStream(ctx context.Context, c *http.Client, url string, interval time.Duration, major int) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+4*interval)
	defer cancel()
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hello"}],"stream":true,"max_tokens":2}`, Model)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("data: [DONE]")) {
		return fmt.Errorf("status %d, body %.200q", resp.StatusCode, b)
	}
	if resp.ProtoMajor != major {
		return fmt.Errorf("answered over %s, want HTTP/%d", resp.Proto, major)
	}
	return nil
}

// waitFirstTokens waits until every stream has a token or is lost.
func waitFirstTokens(ctx context.Context, all []*stream, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		waiting := 0
		for _, s := range all {
			if s.tokens.Load() == 0 && s.lostReason() == "" {
				waiting++
			}
		}
		if waiting == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("streams: %d of %d streams without a first token after %v", waiting, len(all), timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("streams: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("streams: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// raiseNoFile raises RLIMIT_NOFILE to at least need (the hard limit too,
// as root), and returns the new soft limit. Children inherit it: Go
// restores the original limit in children only while a program has not
// set it itself.
func raiseNoFile(need uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("streams: RLIMIT_NOFILE: %w", err)
	}
	if lim.Max < need {
		raised := lim
		raised.Max, raised.Cur = need, need
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			return 0, fmt.Errorf("streams: RLIMIT_NOFILE hard limit %d, need %d (2 sockets per stream in this process and in the gateway): %w", lim.Max, need, err)
		}
		return need, nil
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("streams: RLIMIT_NOFILE: %w", err)
	}
	return lim.Cur, nil
}

// gatewayProc is the running gateway process.
type gatewayProc struct {
	proc          *gwproc.Proc
	pid           int
	listen, admin string
	token         string // the admin token: pprof needs it
	command       string
}

// startGateway runs the gateway command with the quick start's flags on
// ports of its choosing, and waits until it serves.
func startGateway(ctx context.Context, cfg Config, urls []string) (*gatewayProc, error) {
	// The memory figures come from pprof, which needs admin.pprof and the
	// admin token.
	g := &gatewayProc{token: rand.Text()}
	const tokenFile = "admin-token" // in the gateway's working directory
	args := append(slices.Clone(cfg.Gateway[1:]), "--listen", gwproc.AnyPort, "--admin", gwproc.AnyPort,
		"--pprof", "--admin-token-file", tokenFile, "--route", Model+"="+strings.Join(urls, ","))
	g.command = strings.Join(append([]string{filepath.Base(cfg.Gateway[0])}, args...), " ")
	p, err := gwproc.Start(ctx, gwproc.Config{
		Command: append([]string{cfg.Gateway[0]}, args...),
		Env:     cfg.Env,
		Files:   map[string]string{tokenFile: g.token + "\n"},
	})
	if err != nil {
		return nil, fmt.Errorf("streams: %w", err)
	}
	g.proc, g.pid, g.listen, g.admin = p, p.Pid, p.Client, p.Admin
	return g, nil
}

// stop ends the gateway: SIGTERM, then SIGKILL after 5 s.
func (g *gatewayProc) stop() { g.proc.Stop() }

// sample reads the gateway's memory: five RSS samples 200 ms apart (the
// median counts), then the Go runtime's figures.
func (g *gatewayProc) sample(ctx context.Context, cfg Config, n int) (Level, error) {
	l := Level{Streams: n, GatewayCPU: -1, OtherLoad: -1}
	for i := range 5 {
		if i > 0 {
			if err := sleep(ctx, 200*time.Millisecond); err != nil {
				return l, err
			}
		}
		rss, err := readRSS(g.pid)
		if err != nil {
			return l, err
		}
		l.RSSSamples = append(l.RSSSamples, rss)
	}
	s := slices.Clone(l.RSSSamples)
	slices.Sort(s)
	l.RSS = s[len(s)/2]
	c := &http.Client{Timeout: 20 * time.Second}
	b, err := get(ctx, c, "http://"+g.admin+"/debug/pprof/heap?debug=1", g.token)
	if err != nil {
		return l, fmt.Errorf("streams: heap figures: %w", err)
	}
	l.HeapInuse, l.StackInuse = parseMemStats(b)
	if b, err = get(ctx, c, "http://"+g.admin+"/debug/pprof/goroutine?debug=1", g.token); err != nil {
		return l, fmt.Errorf("streams: goroutine count: %w", err)
	}
	l.Goroutines = parseGoroutines(b)
	if cfg.ProfileDir != "" && n > 0 {
		if err := os.WriteFile(filepath.Join(cfg.ProfileDir, fmt.Sprintf("goroutines-%d.txt", n)), b, 0o644); err != nil {
			return l, fmt.Errorf("streams: %w", err)
		}
	}
	return l, nil
}

// saveHeapProfile saves the gateway's heap profile taken right after a
// garbage collection (gc=1), so that it shows what n streams keep live,
// not the heap of an older collection. It runs after the level's
// samples and hold window.
func (g *gatewayProc) saveHeapProfile(ctx context.Context, dir string, n int) error {
	c := &http.Client{Timeout: 30 * time.Second}
	b, err := get(ctx, c, "http://"+g.admin+"/debug/pprof/heap?gc=1", g.token)
	if err != nil {
		return fmt.Errorf("streams: heap profile: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("heap-%d.pb.gz", n)), b, 0o644); err != nil {
		return fmt.Errorf("streams: %w", err)
	}
	return nil
}

// hold watches the streams for cfg.Hold and fills in which kept
// receiving tokens, and the gateway's CPU use meanwhile.
func (g *gatewayProc) hold(ctx context.Context, cfg Config, all []*stream, l *Level) error {
	before := make([]int64, len(all))
	for i, s := range all {
		before[i] = s.tokens.Load()
	}
	cpu0, cpuErr := cpuload.GroupCPU(g.pid)
	snap0 := cpuload.Take([]int{g.pid})
	t0 := time.Now()
	if err := sleep(ctx, cfg.Hold); err != nil {
		return err
	}
	l.Hold = time.Since(t0)
	snap1 := cpuload.Take([]int{g.pid})
	if cpu1, err := cpuload.GroupCPU(g.pid); cpuErr == nil && err == nil {
		l.GatewayCPU = (cpu1 - cpu0).Seconds() / l.Hold.Seconds()
	}
	if other, ok := cpuload.Other(snap0, snap1); ok {
		l.OtherLoad = other
	}
	l.LostReasons = map[string]int{}
	for i, s := range all {
		if why := s.lostReason(); why != "" {
			l.Lost++
			l.LostReasons[why]++
			continue
		}
		if d := s.tokens.Load() - before[i]; d > 0 {
			l.Receiving++
			l.Tokens += d
		}
	}
	return nil
}

// get fetches url, with the admin token as a bearer token when set.
func get(ctx context.Context, c *http.Client, url, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return b, err
}

// readRSS returns VmRSS from /proc/PID/status, in bytes.
func readRSS(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("streams: gateway memory: %w", err)
	}
	v, err := parseVmRSS(b)
	if err != nil {
		return 0, fmt.Errorf("streams: gateway memory: %w", err)
	}
	return v, nil
}

// parseVmRSS reads the "VmRSS:   1234 kB" line of /proc/PID/status.
func parseVmRSS(b []byte) (uint64, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want a number and kB", bytes.TrimSpace(line))
		}
		kb, err := strconv.ParseUint(string(f[0]), 10, 64)
		if err != nil || kb > 1<<40 {
			return 0, fmt.Errorf("VmRSS line %q: want a number of kB", bytes.TrimSpace(line))
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmRSS line")
}

// parseMemStats reads HeapInuse and StackInuse from the runtime.MemStats
// comment block of a debug=1 heap profile ("# HeapInuse = N",
// "# Stack = INUSE / SYS"); 0 for what is missing.
func parseMemStats(b []byte) (heapInuse, stackInuse uint64) {
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("# HeapInuse = ")); ok {
			heapInuse, _ = strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
		}
		if v, ok := bytes.CutPrefix(line, []byte("# Stack = ")); ok {
			in, _, _ := bytes.Cut(v, []byte(" /"))
			stackInuse, _ = strconv.ParseUint(string(bytes.TrimSpace(in)), 10, 64)
		}
	}
	return heapInuse, stackInuse
}

// parseGoroutines reads "goroutine profile: total N"; 0 if absent.
func parseGoroutines(b []byte) int {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	v, ok := bytes.CutPrefix(line, []byte("goroutine profile: total "))
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(string(bytes.TrimSpace(v)))
	return n
}
