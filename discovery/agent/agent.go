package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// ErrDrainTimeout is returned by Drain when not every watching gateway
// acknowledged in time. The node is still draining; callers usually stop the
// engine anyway.
var ErrDrainTimeout = errors.New("agent: drain timed out")

// ErrNotRunning is returned by Drain when Run is not running.
var ErrNotRunning = errors.New("agent: not running")

// Agent heartbeats one node. Create it with New, run it with Run.
type Agent struct {
	cfg  Config // immutable
	http *http.Client
	now  func() time.Time // the incarnation's clock (tests move it)

	state   atomic.Uint32 // discovery.State the node declares
	running atomic.Bool
	trigger chan struct{} // buffer 1: beat now

	server     atomic.Value  // string: the instance the agent is connected to
	acked      atomic.Uint64 // last seq the instance acknowledged
	ackedAt    atomic.Int64  // unix nanos of the last ack
	rejected   atomic.Uint64 // heartbeats Resource rejected
	lastReject atomic.Value  // string: why Resource last rejected a heartbeat
	// incHint is an incarnation Resource asked for (a Reject's hint after
	// a stale or future incarnation); Run adopts it on its next beat.
	incHint atomic.Uint64
	// drainSeq is the seq of the first draining beat sent after Drain (0
	// until sent).
	drainSeq atomic.Uint64

	mu   sync.Mutex // guards conn
	conn *conn
}

// conn is one framed connection to a Resource instance.
type conn struct {
	net.Conn
	br  *bufio.Reader // holds what the handshake read ahead
	ver discovery.Version
}

func (c *conn) Read(p []byte) (int, error) { return c.br.Read(p) }

// New checks cfg and returns an agent.
func New(cfg Config) (*Agent, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:     cfg,
		now:     time.Now,
		trigger: make(chan struct{}, 1),
		http: &http.Client{Transport: &http.Transport{
			TLSClientConfig: cfg.TLS, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second,
		}},
	}
	a.state.Store(uint32(discovery.StateReady))
	a.server.Store("")
	a.lastReject.Store("")
	return a, nil
}

// State returns the state the node declares (ready or draining).
func (a *Agent) State() discovery.State { return discovery.State(a.state.Load()) }

// Server returns the Resource instance the agent is connected to ("" if none).
func (a *Agent) Server() string { return a.server.Load().(string) }

// Rejected returns how many heartbeats Resource rejected.
func (a *Agent) Rejected() uint64 { return a.rejected.Load() }

// LastReject returns why Resource last rejected a heartbeat ("" if never).
func (a *Agent) LastReject() string { return a.lastReject.Load().(string) }

// Run heartbeats until ctx is done, then sends a final offline heartbeat
// (best effort, within one second) and returns. The first beat waits a
// random delay up to InitialDelay, later ones come every Period with jitter;
// Drain and a reconnect send one at once.
func (a *Agent) Run(ctx context.Context) error {
	if !a.running.CompareAndSwap(false, true) {
		return errors.New("agent: Run called twice")
	}
	defer a.running.Store(false)
	inc := uint64(a.now().UnixNano())
	var seq uint64
	lost := make(chan struct{}, 1)
	idx := rand.IntN(len(a.cfg.Servers))
	var lastLoad discovery.Load
	var frame []byte

	beat := func(ctx context.Context, st discovery.State) {
		hb := a.cfg.heartbeat()
		lctx, cancel := context.WithTimeout(ctx, a.cfg.Period/2)
		l, err := a.cfg.Load.Load(lctx)
		cancel()
		if err != nil {
			a.cfg.Logger.Warn("agent: load source failed, sending the last load", "err", err)
			l = lastLoad
		}
		lastLoad = l
		// Larger after a stale refusal, smaller when this clock runs ahead
		// of Resource's.
		if hint := a.incHint.Swap(0); hint != 0 && hint != inc {
			a.cfg.Logger.Warn("agent: adopting the incarnation Resource asked for", "old", inc, "new", hint)
			inc, seq = hint, 0
		}
		seq++
		hb.State, hb.Load, hb.Incarnation, hb.Seq = st, l, inc, seq
		// Two tries: the current connection, then a fresh one.
		for try := 0; try < 2 && ctx.Err() == nil; try++ {
			c, err := a.connection(ctx, &idx, lost)
			if err != nil {
				a.cfg.Logger.Warn("agent: no Resource instance reachable", "err", err)
				return
			}
			frame = discovery.AppendHeartbeatFrame(frame[:0], &hb, c.ver)
			_ = c.SetWriteDeadline(time.Now().Add(a.cfg.Period))
			if _, err := c.Write(frame); err == nil {
				if st == discovery.StateDraining {
					a.drainSeq.CompareAndSwap(0, seq)
				}
				return
			}
			a.dropConn(c)
			idx = (idx + 1) % len(a.cfg.Servers)
		}
	}

	t := time.NewTimer(a.initialDelay())
	defer t.Stop()
	defer a.closeConn()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), time.Second)
			beat(fctx, discovery.StateOffline)
			cancel()
			return ctx.Err()
		case <-t.C:
			// Dead instance: acknowledgements stopped although we beat.
			if at := a.ackedAt.Load(); at != 0 && seq > a.acked.Load() && time.Since(time.Unix(0, at)) > 3*a.cfg.Period {
				a.closeConn()
				idx = (idx + 1) % len(a.cfg.Servers)
			}
			beat(ctx, a.State())
			t.Reset(a.interval())
		case <-a.trigger:
			beat(ctx, a.State())
		case <-lost:
			// Re-home at once: the nodes must not look dead.
			idx = (idx + 1) % len(a.cfg.Servers)
			beat(ctx, a.State())
		}
	}
}

func (a *Agent) initialDelay() time.Duration {
	if a.cfg.InitialDelay <= 0 {
		return 0
	}
	return rand.N(a.cfg.InitialDelay)
}

func (a *Agent) interval() time.Duration {
	j := a.cfg.Jitter * (2*rand.Float64() - 1)
	return time.Duration(float64(a.cfg.Period) * (1 + j))
}

// connection returns the current connection or dials the instances in
// order starting at *idx.
func (a *Agent) connection(ctx context.Context, idx *int, lost chan<- struct{}) (*conn, error) {
	a.mu.Lock()
	c := a.conn
	a.mu.Unlock()
	if c != nil {
		return c, nil
	}
	var errs []error
	for i := 0; i < len(a.cfg.Servers); i++ {
		addr := a.cfg.Servers[*idx]
		c, err := a.dial(ctx, addr, discovery.CurrentVersion)
		for v := discovery.CurrentVersion; errors.Is(err, discovery.ErrOldServer); {
			var ok bool
			if v, ok = v.Older(); !ok {
				break
			}
			c, err = a.dial(ctx, addr, v)
		}
		if err == nil {
			a.mu.Lock()
			a.conn = c
			a.mu.Unlock()
			a.server.Store(addr)
			a.ackedAt.Store(time.Now().UnixNano())
			go a.readLoop(c, lost)
			return c, nil
		}
		if errors.Is(err, discovery.ErrBadToken) || errors.Is(err, discovery.ErrForbidden) {
			a.lastReject.Store(err.Error())
		}
		errs = append(errs, err)
		*idx = (*idx + 1) % len(a.cfg.Servers)
	}
	return nil, errors.Join(errs...)
}

// dial connects to addr and hand-shakes in wire version ver.
func (a *Agent) dial(ctx context.Context, addr string, ver discovery.Version) (*conn, error) {
	d := net.Dialer{Timeout: a.cfg.Period}
	var c net.Conn
	var err error
	if a.cfg.TLS != nil {
		c, err = (&tls.Dialer{NetDialer: &d, Config: a.cfg.TLS}).DialContext(ctx, "tcp", addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("agent: dial %s: %w", addr, err)
	}
	_ = c.SetDeadline(time.Now().Add(a.cfg.Period))
	br := bufio.NewReaderSize(c, 4096)
	if _, err := discovery.Handshake(c, br, ver, discovery.Hello{Role: discovery.RoleAgent, Token: a.cfg.Token}); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("agent: %s: %w", addr, err)
	}
	_ = c.SetDeadline(time.Time{})
	return &conn{Conn: c, br: br, ver: ver}, nil
}

// readLoop reads acks and rejects until the connection fails, then signals
// lost (so Run re-homes at once). A Reject with an incarnation hint (the
// node's incarnation is older than the one Resource applied, or too far in
// the future for Resource's clock) is adopted on the next beat, sent at
// once: an agent whose clock stepped back recovers by itself.
func (a *Agent) readLoop(c *conn, lost chan<- struct{}) {
	var buf []byte
	for {
		typ, p, nb, err := discovery.ReadFrame(c.br, discovery.MaxAgentFrame, buf)
		buf = nb
		if err != nil {
			if a.dropConn(c) {
				select {
				case lost <- struct{}{}:
				default:
				}
			}
			return
		}
		switch typ {
		case discovery.FrameAck:
			if seq, err := discovery.DecodeUvarint(p, "seq"); err == nil {
				a.acked.Store(seq)
				a.ackedAt.Store(time.Now().UnixNano())
			}
		case discovery.FrameReject:
			a.rejected.Add(1)
			r, err := discovery.DecodeReject(p, c.ver)
			if err != nil {
				a.cfg.Logger.Error("agent: Resource rejected a heartbeat (undecodable reject)", "err", err)
				continue
			}
			a.lastReject.Store((&discovery.RejectError{Reject: r}).Error())
			if r.Incarnation != 0 && r.NodeID == a.cfg.NodeID {
				a.cfg.Logger.Warn("agent: Resource refused the heartbeat's incarnation", "problem", r.Problem, "use", r.Incarnation)
				a.incHint.Store(r.Incarnation)
				a.beatNow()
				continue
			}
			a.cfg.Logger.Error("agent: Resource rejected a heartbeat", "reason", r.Reason.String(), "field", r.Field, "problem", r.Problem)
		}
	}
}

// dropConn closes c if it is the current connection; it reports whether it was.
func (a *Agent) dropConn(c *conn) bool {
	a.mu.Lock()
	cur := a.conn == c
	if cur {
		a.conn = nil
		a.server.Store("")
	}
	a.mu.Unlock()
	_ = c.Close()
	return cur
}

func (a *Agent) closeConn() {
	a.mu.Lock()
	c := a.conn
	a.conn = nil
	a.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
	a.server.Store("")
}

// beatNow asks Run to send a heartbeat at once.
func (a *Agent) beatNow() {
	select {
	case a.trigger <- struct{}{}:
	default:
	}
}

// Undrain returns a draining node to ready and beats at once.
func (a *Agent) Undrain() {
	a.state.Store(uint32(discovery.StateReady))
	a.beatNow()
}

// Drain flips the node to draining, beats at once, then waits until every
// gateway watching the app has acknowledged a list version in which the node
// is not a target (Resource tracks acknowledgements across the tier), or
// until DrainTimeout or ctx ends. It returns the last status seen, and
// ErrDrainTimeout when it gave up. Run must be running.
func (a *Agent) Drain(ctx context.Context) (discovery.DrainStatus, error) {
	if !a.running.Load() {
		return discovery.DrainStatus{}, ErrNotRunning
	}
	a.drainSeq.Store(0)
	a.state.Store(uint32(discovery.StateDraining))
	a.beatNow()
	ctx, cancel := context.WithTimeout(ctx, a.cfg.DrainTimeout)
	defer cancel()
	// Ask Resource only once it acknowledged the draining beat (or after
	// one DrainPoll, whichever comes first).
	wait := time.NewTicker(time.Millisecond)
	for start := time.Now(); time.Since(start) < a.cfg.DrainPoll; {
		if ds := a.drainSeq.Load(); ds != 0 && a.acked.Load() >= ds {
			break
		}
		select {
		case <-ctx.Done():
		case <-wait.C:
			continue
		}
		break
	}
	wait.Stop()
	t := time.NewTicker(a.cfg.DrainPoll)
	defer t.Stop()
	var last discovery.DrainStatus
	var lastErr error
	idx := 0
	for {
		server := a.Server()
		if server == "" {
			server = a.cfg.Servers[idx%len(a.cfg.Servers)]
			idx++
		}
		st, err := a.drainStatus(ctx, server)
		if err == nil {
			last, lastErr = st, nil
			if st.Done {
				return st, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("%w: %w", ErrDrainTimeout, lastErr)
			}
			return last, ErrDrainTimeout
		case <-t.C:
		}
	}
}

func (a *Agent) drainStatus(ctx context.Context, server string) (discovery.DrainStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	scheme := "http"
	if a.cfg.TLS != nil {
		scheme = "https"
	}
	u := fmt.Sprintf("%s://%s/v1/apps/%s/drain?node=%s", scheme, server, url.PathEscape(a.cfg.App), url.QueryEscape(a.cfg.NodeID))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return discovery.DrainStatus{}, fmt.Errorf("agent: drain status: %w", err)
	}
	if a.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return discovery.DrainStatus{}, fmt.Errorf("agent: drain status: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return discovery.DrainStatus{}, fmt.Errorf("agent: drain status: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return discovery.DrainStatus{}, fmt.Errorf("agent: drain status: %s: %.200s", resp.Status, body)
	}
	var st discovery.DrainStatus
	if err := json.Unmarshal(body, &st); err != nil {
		return discovery.DrainStatus{}, fmt.Errorf("agent: drain status: %w", err)
	}
	return st, nil
}
