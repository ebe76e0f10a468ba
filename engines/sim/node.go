package sim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"google.golang.org/grpc"
)

// Mode is a failure mode.
type Mode int32

const (
	// ModeHealthy serves normally.
	ModeHealthy Mode = iota
	// ModeHang accepts requests (HTTP and gRPC, health included) and never
	// answers, until Close, Crash, HangTimeout or another Fail.
	ModeHang
	// ModeError answers inference with 500 (gRPC Internal) while health
	// stays 200: a grey failure.
	ModeError
	// ModeSlowStart restarts the startup delay: not ready (503) until
	// Config.StartupDelay has passed again.
	ModeSlowStart
	// ModeBusy refuses inference with 429 and Retry-After BusyRetryAfter
	// (gRPC ResourceExhausted) while health stays 200: an engine at its
	// limit that says when to come back.
	ModeBusy
	// ModeCut ends every streamed answer half way (after at least one
	// token) by closing the connection: no finish chunk, no terminal
	// chunk, no [DONE], what an engine killed mid-stream leaves on the
	// wire. Answers that are not streamed are served normally.
	ModeCut
)

// BusyRetryAfter is the Retry-After, in seconds, of a busy node's 429
// (ModeBusy): distinct from the one second a full queue asks, so a test
// can tell that a proxy passed the node's own hint on.
const BusyRetryAfter = 7

func (m Mode) String() string {
	switch m {
	case ModeHealthy:
		return "healthy"
	case ModeHang:
		return "hang"
	case ModeError:
		return "error"
	case ModeSlowStart:
		return "slow-start"
	case ModeBusy:
		return "busy"
	case ModeCut:
		return "cut"
	}
	return fmt.Sprintf("Mode(%d)", int32(m))
}

// ParseMode parses "healthy", "hang", "error" (or "5xx"), "slow-start",
// "busy" (or "429") and "cut".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "healthy", "none", "":
		return ModeHealthy, nil
	case "hang":
		return ModeHang, nil
	case "error", "5xx":
		return ModeError, nil
	case "slow-start", "slowstart":
		return ModeSlowStart, nil
	case "busy", "429":
		return ModeBusy, nil
	case "cut":
		return ModeCut, nil
	}
	return 0, fmt.Errorf("sim: unknown mode %q (healthy, hang, error, slow-start, busy, cut)", s)
}

// Stats are a node's counters.
type Stats struct {
	ID string `json:"id"`
	// Served counts completed requests (HTTP and gRPC).
	Served int64 `json:"served"`
	// Rejected counts requests refused for a full queue or ModeBusy
	// (429/503).
	Rejected int64 `json:"rejected"`
	// Errors counts 5xx answers from ModeError.
	Errors int64 `json:"errors"`
	// Cut counts streamed answers cut by ModeCut.
	Cut int64 `json:"cut"`
	// InFlight is running + waiting; Running are in a slot.
	InFlight int64 `json:"in_flight"`
	Running  int64 `json:"running"`
	Waiting  int64 `json:"waiting"`
	// PromptTokens and GeneratedTokens are cumulative.
	PromptTokens    int64   `json:"prompt_tokens"`
	GeneratedTokens int64   `json:"generated_tokens"`
	Slots           int     `json:"slots"`
	Slowdown        float64 `json:"slowdown"`
	Mode            string  `json:"mode"`
	Draining        bool    `json:"draining"`
	// SleepLevel is the vLLM sleep level: 0 awake, 1 or 2 asleep.
	SleepLevel int `json:"sleep_level"`
	// PrefixQueryTokens and PrefixHitTokens are the prompt tokens looked
	// up in the prefix cache and the ones found (cumulative; vLLM's
	// prefix_cache_queries and prefix_cache_hits). PrefixBlocks is the
	// number of blocks cached now.
	PrefixQueryTokens int64 `json:"prefix_query_tokens"`
	PrefixHitTokens   int64 `json:"prefix_hit_tokens"`
	PrefixBlocks      int   `json:"prefix_blocks"`
	// LoRA describes the adapter slots (nil without LoRA).
	LoRA *LoRAStats `json:"lora,omitempty"`
}

// Node is one running simulated engine. Its methods are safe for
// concurrent use. A Node must not be copied.
type Node struct {
	// immutable after Start
	cfg   Config
	prof  Profile
	id    string
	ln    *trackListener
	gln   net.Listener
	srv   *fasthttp.Server
	gsrv  *grpc.Server
	slots chan struct{}
	now   func() time.Time
	cache *prefixCache // nil without a prefix cache
	lora  *loraSlots   // nil without LoRA

	// atomic
	running, waiting                atomic.Int64
	served, rejected, errs, cut     atomic.Int64
	promptTokens, genTokens, reqSeq atomic.Int64
	prefixQueries, prefixHits       atomic.Int64
	prefilling                      atomic.Int64 // requests in prefill
	mode                            atomic.Int32
	slowdown                        atomic.Uint64 // float64 bits
	errorRate                       atomic.Uint64 // float64 bits
	draining                        atomic.Bool
	sleepLevel                      atomic.Int32                  // vLLM sleep mode: 0 awake, 1 or 2
	readyAt                         atomic.Int64                  // unix nanos
	modeChanged                     atomic.Pointer[chan struct{}] // closed and replaced by Fail

	// answering holds the HTTP connections in fasthttp's StateActive:
	// from a request's first byte to its answer's last. A streamed
	// answer's handler releases its slot before fasthttp writes the final
	// chunk, so WaitIdle waits for these too.
	answerMu  sync.Mutex
	answering map[net.Conn]struct{} // guarded by answerMu

	// testAfterStreamRelease, when set (tests only), runs in a streamed
	// answer's writer after it released its slot.
	testAfterStreamRelease atomic.Pointer[func()]

	// lifecycle
	stopOnce  sync.Once
	closed    chan struct{} // closed on Close/Crash
	wg        activity      // handlers, stream writers, gRPC calls
	serveDone chan struct{} // closed when the HTTP Serve returns
	grpcDone  chan struct{} // closed when the gRPC Serve returns
}

// Start starts a node: it binds the listeners before returning, so
// Addr() is usable at once. ctx only bounds start-up; stop the node with
// Close or Crash.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	return startClock(ctx, cfg, time.Now)
}

// startClock is Start with an injected clock (it stamps vllm:lora_requests_info).
func startClock(ctx context.Context, cfg Config, now func() time.Time) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("sim: listen %s: %w", cfg.Listen, err)
	}
	n := &Node{cfg: cfg, prof: cfg.profile(), now: now, closed: make(chan struct{}), serveDone: make(chan struct{}), grpcDone: make(chan struct{})}
	n.cache = newPrefixCache(cfg.PrefixCache)
	if cfg.LoRA.Enabled() {
		n.lora = newLoRASlots(cfg.LoRA.MaxLoRAs, now)
	}
	n.ln = newTrackListener(l)
	n.id = cfg.ID
	if n.id == "" {
		n.id = l.Addr().String()
	}
	n.slots = make(chan struct{}, n.prof.SlotCount())
	n.slowdown.Store(math.Float64bits(cfg.Slowdown))
	n.errorRate.Store(math.Float64bits(cfg.ErrorRate))
	n.readyAt.Store(time.Now().Add(cfg.StartupDelay).UnixNano())
	ch := make(chan struct{})
	n.modeChanged.Store(&ch)
	if cfg.GRPCListen != "" {
		gl, err := lc.Listen(ctx, "tcp", cfg.GRPCListen)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("sim: grpc listen %s: %w", cfg.GRPCListen, err)
		}
		n.gln = gl
		n.gsrv = n.newGRPCServer()
		go func() {
			defer close(n.grpcDone)
			_ = n.gsrv.Serve(gl)
		}()
	} else {
		close(n.grpcDone)
	}
	n.answering = make(map[net.Conn]struct{})
	n.srv = &fasthttp.Server{
		Handler:               n.handle,
		ConnState:             n.connState,
		Name:                  "switchyard-sim",
		NoDefaultServerHeader: true,
		ReduceMemoryUsage:     true,
		IdleTimeout:           time.Minute,
		MaxRequestBodySize:    16 << 20,
		ReadTimeout:           time.Minute,
		Logger:                quietLogger{},
		// fasthttp's worker-pool cleaner sleeps this long between
		// checks and only then sees Serve's stop: keep it short so a
		// closed node leaves no goroutine behind for long.
		MaxIdleWorkerDuration: 500 * time.Millisecond,
	}
	var serve net.Listener = n.ln
	if cfg.TLS != nil { // TLS above the tracked TCP connections, which Crash resets
		serve = tls.NewListener(n.ln, cfg.TLS)
	}
	go func() {
		defer close(n.serveDone)
		_ = n.srv.Serve(serve)
	}()
	return n, nil
}

// ID is the node id sent in X-Sim-Node.
func (n *Node) ID() string { return n.id }

// Addr is the bound HTTP address (host:port).
func (n *Node) Addr() string { return n.ln.Addr().String() }

// URL is "http://" + Addr(), "https://" with Config.TLS.
func (n *Node) URL() string {
	if n.cfg.TLS != nil {
		return "https://" + n.Addr()
	}
	return "http://" + n.Addr()
}

// GRPCAddr is the bound gRPC address, or "" without gRPC.
func (n *Node) GRPCAddr() string {
	if n.gln == nil {
		return ""
	}
	return n.gln.Addr().String()
}

// Model is the served model name.
func (n *Node) Model() string { return n.cfg.Model }

// Profile is the resolved profile.
func (n *Node) Profile() Profile { return n.prof }

// SetSlowdown sets the slowdown factor (> 0; 2 = twice as slow). It
// applies to every later sleep, including those of running requests.
func (n *Node) SetSlowdown(f float64) {
	if !(f > 0) || math.IsInf(f, 0) {
		return
	}
	n.slowdown.Store(math.Float64bits(f))
}

// SetErrorRate sets the probability (clamped to 0..1) that an inference
// request fails with 500 / gRPC Internal.
func (n *Node) SetErrorRate(p float64) {
	if math.IsNaN(p) {
		return
	}
	n.errorRate.Store(math.Float64bits(min(max(p, 0), 1)))
}

// failNow decides whether this inference request fails (ModeError or
// the error rate), counting the failure.
func (n *Node) failNow() bool {
	fail := n.Mode() == ModeError
	if !fail {
		if p := math.Float64frombits(n.errorRate.Load()); p > 0 {
			fail = rand.Float64() < p
		}
	}
	if fail {
		n.errs.Add(1)
	}
	return fail
}

// Slowdown returns the current slowdown factor.
func (n *Node) Slowdown() float64 { return math.Float64frombits(n.slowdown.Load()) }

// Fail switches the failure mode; ModeHealthy recovers. ModeSlowStart
// restarts the startup delay.
func (n *Node) Fail(m Mode) {
	if m == ModeSlowStart {
		n.readyAt.Store(time.Now().Add(n.cfg.StartupDelay).UnixNano())
	}
	n.mode.Store(int32(m))
	// Wake requests hanging in the previous mode.
	ch := make(chan struct{})
	old := n.modeChanged.Swap(&ch)
	close(*old)
}

// Mode returns the current failure mode.
func (n *Node) Mode() Mode { return Mode(n.mode.Load()) }

// Drain refuses new requests with 503 (health answers 503 too) and lets
// in-flight ones finish; see WaitIdle.
func (n *Node) Drain() { n.draining.Store(true) }

// Undrain accepts requests again.
func (n *Node) Undrain() { n.draining.Store(false) }

// WaitIdle waits until no request is running or waiting and every HTTP
// answer was written whole, or ctx ends: Drain, WaitIdle, then Close
// loses nothing.
func (n *Node) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !n.idle() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// idle reports whether no request is running or waiting and no HTTP
// connection is between a request and the end of its answer.
func (n *Node) idle() bool {
	n.answerMu.Lock()
	answering := len(n.answering)
	n.answerMu.Unlock()
	return n.running.Load()+n.waiting.Load() == 0 && answering == 0
}

// connState tracks the HTTP connections that are answering (fasthttp's
// ConnState hook).
func (n *Node) connState(c net.Conn, st fasthttp.ConnState) {
	n.answerMu.Lock()
	defer n.answerMu.Unlock()
	if st == fasthttp.StateActive {
		n.answering[c] = struct{}{}
	} else {
		delete(n.answering, c)
	}
}

// Stats returns the counters.
func (n *Node) Stats() Stats {
	r, w := n.running.Load(), n.waiting.Load()
	st := Stats{ID: n.id, Served: n.served.Load(), Rejected: n.rejected.Load(), Errors: n.errs.Load(), Cut: n.cut.Load(),
		InFlight: r + w, Running: r, Waiting: w, PromptTokens: n.promptTokens.Load(), GeneratedTokens: n.genTokens.Load(),
		Slots: cap(n.slots), Slowdown: n.Slowdown(), Mode: n.Mode().String(), Draining: n.draining.Load(), SleepLevel: n.SleepLevel(),
		PrefixQueryTokens: n.prefixQueries.Load(), PrefixHitTokens: n.prefixHits.Load()}
	if n.cache != nil {
		st.PrefixBlocks = n.cache.len()
	}
	if n.lora != nil {
		ls := n.lora.stats()
		st.LoRA = &ls
	}
	return st
}

// Crash stops the node abruptly: listeners closed, every connection reset
// (SO_LINGER 0), in-flight requests cut. Like Close, it waits (up to 5 s)
// for the node's goroutines.
func (n *Node) Crash() { n.stop(true) }

// Close stops the node: listeners and connections closed, in-flight
// requests cut. For a graceful stop, Drain then WaitIdle then Close.
func (n *Node) Close() error {
	n.stop(false)
	return nil
}

// Done is closed once the node has stopped (Close or Crash).
func (n *Node) Done() <-chan struct{} { return n.closed }

func (n *Node) stop(reset bool) {
	n.stopOnce.Do(func() {
		// Connections first, so in-flight streams are cut rather than
		// finished by their writers noticing the stop.
		_ = n.ln.Close()
		n.ln.closeAll(reset)
		if n.gsrv != nil {
			n.gsrv.Stop()
		}
		close(n.closed)
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		done := make(chan struct{})
		go func() {
			n.wg.Wait()
			<-n.serveDone
			<-n.grpcDone
			close(done)
		}()
		select {
		case <-done:
		case <-t.C:
		}
	})
}

// ready reports whether the slow start is over.
func (n *Node) ready() bool { return time.Now().UnixNano() >= n.readyAt.Load() }

// errRefused carries the status (and Retry-After, in seconds; 0: the
// default) for a refused request.
type errRefused struct {
	status     int
	msg        string
	retryAfter int
}

func (e *errRefused) Error() string { return e.msg }

var errStopped = errors.New("sim: node stopped")

// accepting refuses requests while draining, asleep, starting up or busy.
func (n *Node) accepting() error {
	switch {
	case n.draining.Load():
		return &errRefused{status: 503, msg: "draining"}
	case n.sleepLevel.Load() > 0:
		return &errRefused{status: 503, msg: "the engine is sleeping"}
	case !n.ready():
		return &errRefused{status: 503, msg: "starting up"}
	case n.Mode() == ModeBusy:
		n.rejected.Add(1)
		return &errRefused{status: 429, msg: "busy", retryAfter: BusyRetryAfter}
	}
	return nil
}

// admit takes a slot, waiting in the bounded queue if needed.
func (n *Node) admit() error {
	if err := n.accepting(); err != nil {
		return err
	}
	select {
	case n.slots <- struct{}{}:
		n.running.Add(1)
		return nil
	default:
	}
	if n.waiting.Add(1) > int64(n.prof.QueueDepth) {
		n.waiting.Add(-1)
		n.rejected.Add(1)
		return &errRefused{status: 429, msg: "queue full"}
	}
	select {
	case n.slots <- struct{}{}:
		n.waiting.Add(-1)
		n.running.Add(1)
		return nil
	case <-n.closed:
		n.waiting.Add(-1)
		return errStopped
	}
}

func (n *Node) release() {
	n.running.Add(-1)
	<-n.slots
}

// sleep waits d × slowdown on t; false when the node stopped.
func (n *Node) sleep(t *time.Timer, d time.Duration) bool {
	t.Reset(time.Duration(float64(d) * n.Slowdown()))
	select {
	case <-t.C:
		return true
	case <-n.closed:
		return false
	}
}

// hang blocks until the node stops, the mode changes or HangTimeout.
func (n *Node) hang() {
	ch := *n.modeChanged.Load()
	var tc <-chan time.Time
	if n.cfg.HangTimeout > 0 {
		t := time.NewTimer(n.cfg.HangTimeout)
		defer t.Stop()
		tc = t.C
	}
	select {
	case <-n.closed:
	case <-ch:
	case <-tc:
	}
}

// acquireLoRA holds a LoRA adapter slot for one request (see LoRAConfig),
// counting the request as waiting meanwhile. release with n.lora.release.
func (n *Node) acquireLoRA(name string) error {
	if err := n.accepting(); err != nil {
		return err
	}
	n.waiting.Add(1)
	defer n.waiting.Add(-1)
	load := func() bool {
		t := time.NewTimer(time.Hour)
		defer t.Stop()
		return n.sleep(t, n.cfg.LoRA.LoadTime)
	}
	if err := n.lora.acquire(name, load, n.closed); err != nil {
		return errStopped
	}
	return nil
}

// prefill is one admitted request's prompt: its text (cached after the
// prefill), its token count, the tokens found in the prefix cache and the
// modelled prefill time before the slowdown factor.
type prefill struct {
	text   string
	tokens int
	cached int
	time   time.Duration
}

// plan looks the prompt up in the prefix cache (at admission, when the
// request is scheduled) and counts the query.
func (n *Node) plan(text string) prefill {
	p := prefill{text: text, tokens: max(tokenCount(text), 1)}
	if n.cache != nil {
		p.cached = n.cache.lookup(text)
	}
	n.promptTokens.Add(int64(p.tokens))
	n.prefixQueries.Add(int64(p.tokens))
	n.prefixHits.Add(int64(p.cached))
	p.time = n.prof.Prefill + time.Duration(p.tokens-p.cached)*n.prof.PrefillPerToken
	return p
}

// generate runs one admitted request: the prefill (after which the
// prompt's blocks are cached), then tokens calls of emit (i =
// 0..tokens-1) spaced PerToken apart. emit returning false (client gone)
// or the node stopping ends it early; the result says whether all tokens
// were produced.
func (n *Node) generate(p prefill, tokens int, emit func(i int) bool) bool {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	n.prefilling.Add(1)
	ok := n.sleep(t, p.time)
	n.prefilling.Add(-1)
	if !ok {
		return false
	}
	if n.cache != nil {
		n.cache.insert(p.text)
	}
	for i := 0; i < tokens; i++ {
		if !n.sleep(t, n.prof.PerToken) {
			return false
		}
		n.genTokens.Add(1)
		if emit != nil && !emit(i) {
			return false
		}
	}
	return true
}

// trackListener remembers accepted connections so Crash can reset them.
type trackListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{} // guarded by mu
	done  bool                  // guarded by mu
}

func newTrackListener(l net.Listener) *trackListener {
	return &trackListener{Listener: l, conns: map[net.Conn]struct{}{}}
}

func (l *trackListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done {
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackConn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

func (l *trackListener) closeAll(reset bool) {
	l.mu.Lock()
	l.done = true
	conns := l.conns
	l.conns = map[net.Conn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		if tc, ok := c.(*trackConn).Conn.(*net.TCPConn); ok && reset {
			_ = tc.SetLinger(0)
		}
		_ = c.(*trackConn).Conn.Close()
	}
}

type trackConn struct {
	net.Conn
	l    *trackListener
	once sync.Once
}

func (c *trackConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// quietLogger drops fasthttp's per-connection error logs (a crash makes
// many of them by design).
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}

// activity counts running handlers. Unlike sync.WaitGroup it allows Add
// while another goroutine is in Wait: a request may arrive just as the node
// stops, and WaitGroup's contract forbids that race.
type activity struct {
	mu      sync.Mutex
	n       int
	waiters []chan struct{}
}

// Add adds d to the count; Wait returns once it is back at zero.
func (a *activity) Add(d int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n += d
	if a.n == 0 {
		for _, w := range a.waiters {
			close(w)
		}
		a.waiters = nil
	}
}

// Done is Add(-1).
func (a *activity) Done() { a.Add(-1) }

// Wait blocks until the count is zero.
func (a *activity) Wait() {
	a.mu.Lock()
	if a.n == 0 {
		a.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	a.waiters = append(a.waiters, ch)
	a.mu.Unlock()
	<-ch
}
