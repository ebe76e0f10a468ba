package resource

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// Server is one Resource instance. Create it with New and run it with Serve.
// It is safe for concurrent use.
type Server struct {
	// Immutable after New.
	cfg Config
	id  uint64
	now func() time.Time
	log *slog.Logger
	// wireMax is the newest wire version served (CurrentVersion; tests
	// lower it to stand in for an older Resource).
	wireMax discovery.Version

	appsMu sync.RWMutex
	apps   map[string]*app // guarded by appsMu; each app has its own lock
	// versionFloor is the newest version of any freed app (guarded by
	// appsMu); new apps start above it.
	versionFloor uint64

	creds    atomic.Pointer[credSet] // the credentials in force
	credMu   sync.Mutex              // serialises reloads
	credGen  atomic.Uint64
	credSeen string // guarded by credMu: size and mtime of the file last read

	rejections discovery.Rejections
	stats      stats
	telemetry  *telemetry
	limiter    logLimiter // refusals a client can cause are logged through it
	peers      *peers

	connsMu sync.Mutex
	conns   map[net.Conn]struct{} // guarded by connsMu: framed conns, closed on shutdown
	closing bool                  // guarded by connsMu
}

// stats are the server's counters (atomic).
type stats struct {
	heartbeats  atomic.Uint64
	httpBeats   atomic.Uint64
	staleBeats  atomic.Uint64
	commits     atomic.Uint64
	changes     atomic.Uint64
	peerSent    atomic.Uint64
	peerRecv    atomic.Uint64
	peerDropped atomic.Uint64
	guardHeld   atomic.Uint64
	expired     atomic.Uint64
	appsFreed   atomic.Uint64
	credReloads atomic.Uint64
	credFailed  atomic.Uint64
	agentConns  atomic.Int64
	watches     atomic.Int64
}

// New returns a Resource instance with a fresh random instance id (its
// epoch). cfg gets its defaults applied, then is validated.
func New(cfg Config) (*Server, error) { return newServer(cfg, time.Now) }

// newServer takes the clock, for tests.
func newServer(cfg Config, now func() time.Time) (*Server, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("resource: instance id: %w", err)
	}
	id := binary.LittleEndian.Uint64(b[:]) | 1
	s := &Server{
		cfg:     cfg,
		id:      id,
		now:     now,
		wireMax: discovery.CurrentVersion,
		log:     cfg.Logger.With("instance", fmt.Sprintf("%016x", id)),
		apps:    make(map[string]*app),
		conns:   make(map[net.Conn]struct{}),
	}
	s.peers = newPeers(s)
	t, err := newTelemetry(s)
	if err != nil {
		return nil, err
	}
	s.telemetry = t
	var f *CredentialsFile
	if cfg.CredentialsFile != "" {
		s.credSeen = fileStamp(cfg.CredentialsFile)
		var err error
		if f, err = LoadCredentials(cfg.CredentialsFile); err != nil {
			return nil, fmt.Errorf("resource: %w", err)
		}
	}
	cs, err := newCredSet(cfg.Token, f, s.credGen.Add(1))
	if err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	s.creds.Store(cs)
	return s, nil
}

// ReloadCredentials reads CredentialsFile again (cmd/switchyard calls it
// on SIGHUP; Serve also polls the file). An invalid file is refused with
// the error and the running credentials stay. Connections re-check their
// credential at their next message: a revoked one is closed.
func (s *Server) ReloadCredentials() error {
	if s.cfg.CredentialsFile == "" {
		return nil
	}
	s.credMu.Lock()
	defer s.credMu.Unlock()
	s.credSeen = fileStamp(s.cfg.CredentialsFile)
	f, err := LoadCredentials(s.cfg.CredentialsFile)
	var cs *credSet
	if err == nil {
		cs, err = newCredSet(s.cfg.Token, f, s.credGen.Add(1))
	}
	if err != nil {
		s.stats.credFailed.Add(1)
		s.log.Error("credentials reload refused, keeping the running credentials", "file", s.cfg.CredentialsFile, "err", err)
		return fmt.Errorf("resource: %w", err)
	}
	s.creds.Store(cs)
	s.stats.credReloads.Add(1)
	s.log.Info("credentials reloaded", "file", s.cfg.CredentialsFile, "agents", len(f.Agents), "peers", len(f.Peers), "readers", len(f.Readers))
	return nil
}

// watchCredentials reloads CredentialsFile when its size or modification
// time changes, until ctx is done.
func (s *Server) watchCredentials(ctx context.Context) {
	if s.cfg.CredentialsFile == "" {
		return
	}
	t := time.NewTicker(s.cfg.CredentialsPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := fileStamp(s.cfg.CredentialsFile)
		s.credMu.Lock()
		changed := st != "" && st != s.credSeen
		s.credMu.Unlock()
		if changed {
			_ = s.ReloadCredentials()
		}
	}
}

// fileStamp is a file's size and modification time ("" if unreadable).
func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
}

// connAuth is a framed connection's credential: resolved at its Hello and
// again after every reload (from the token's hash and the certificate's
// names; the token itself is not kept).
type connAuth struct {
	tok  tokenHash
	sans []string
	cred *credential
	gen  uint64
}

// current returns the connection's credential under the credentials in
// force, or why it has none any more.
func (ca *connAuth) current(s *Server) (*credential, *refusal) {
	cs := s.creds.Load()
	if ca.cred != nil && cs.gen == ca.gen {
		return ca.cred, nil
	}
	c, r := cs.resolve(ca.tok, ca.sans)
	if r != nil {
		return nil, r
	}
	ca.cred, ca.gen = c, cs.gen
	return c, nil
}

// ID returns the instance id, which is also the epoch of its list versions.
func (s *Server) ID() uint64 { return s.id }

// Rejections returns the rejection counters.
func (s *Server) Rejections() *discovery.Rejections { return &s.rejections }

// Serve serves heartbeats (framed and HTTP), peer links and list reads on ln
// until ctx is cancelled, then closes every connection abruptly (as a crash
// would look to agents and peers) and returns once its goroutines are done.
// It takes ownership of ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.cfg.TLS != nil {
		ln = tls.NewListener(ln, s.cfg.TLS)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hl := newChanListener(ln.Addr())
	hs := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       withTLSState,
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = hs.Serve(hl) })
	wg.Go(func() { s.flushLoop(ctx) })
	wg.Go(func() { s.sweepLoop(ctx) })
	wg.Go(func() { s.peers.run(ctx) })
	wg.Go(func() { s.watchCredentials(ctx) })

	acceptErr := make(chan error, 1)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			wg.Go(func() { s.sniff(ctx, c, hl) })
		}
	})
	var err error
	select {
	case <-ctx.Done():
	case err = <-acceptErr:
		err = fmt.Errorf("resource: accept: %w", err)
	}
	cancel()
	_ = ln.Close()
	_ = hs.Close()
	hl.Close()
	s.connsMu.Lock()
	s.closing = true
	for c := range s.conns {
		_ = c.Close()
	}
	s.connsMu.Unlock()
	wg.Wait()
	return err
}

// track registers a framed connection for shutdown; false if shutting down.
func (s *Server) track(c net.Conn, add bool) bool {
	s.connsMu.Lock()
	defer s.connsMu.Unlock()
	if add {
		if s.closing {
			return false
		}
		s.conns[c] = struct{}{}
	} else {
		delete(s.conns, c)
	}
	return true
}

// sniff routes a connection: the framed protocol starts with a version
// preamble (discovery.Version), anything else is HTTP.
func (s *Server) sniff(ctx context.Context, c net.Conn, hl *chanListener) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReaderSize(c, 64<<10)
	head, err := br.Peek(discovery.PreambleProbe)
	if err != nil {
		_ = c.Close()
		return
	}
	ver, framed := discovery.VersionOfPreamble(head)
	if framed && ver > s.wireMax {
		framed = false // as an older Resource would: HTTP, which answers 400
	}
	if framed {
		pre := ver.Preamble()
		head, err = br.Peek(len(pre))
		framed = err == nil && string(head) == pre
	}
	_ = c.SetReadDeadline(time.Time{})
	if !framed {
		if !hl.push(&bufConn{Conn: c, r: br}) {
			_ = c.Close()
		}
		return
	}
	_, _ = br.Discard(len(ver.Preamble()))
	if !s.track(c, true) {
		_ = c.Close()
		return
	}
	defer func() {
		s.track(c, false)
		_ = c.Close()
	}()
	s.serveFramed(ctx, c, br, ver)
}

// serveFramed runs one framed connection: a Hello, then heartbeats (agents)
// or change batches (peers).
func (s *Server) serveFramed(ctx context.Context, c net.Conn, br *bufio.Reader, ver discovery.Version) {
	bw := bufio.NewWriterSize(c, 4<<10)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, p, buf, err := discovery.ReadFrame(br, 1024, nil)
	if err != nil || typ != discovery.FrameHello {
		s.rejections.Add(discovery.ReasonMalformed)
		return
	}
	h, err := discovery.DecodeHello(p)
	if err != nil {
		s.rejections.Add(discovery.ReasonOf(err))
		return
	}
	ca := &connAuth{tok: hashToken(h.Token)}
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		ca.sans = peerSANs(&st)
	}
	cred, rf := ca.current(s)
	if rf == nil {
		switch h.Role {
		case discovery.RoleAgent:
			rf = cred.allow(roleAgent, "sending heartbeats")
		case discovery.RolePeer:
			rf = cred.allow(rolePeer, "linking as a peer")
		default:
			rf = refuse(discovery.ReasonInvalid, "role", "role %d is neither agent (1) nor peer (2)", h.Role)
		}
	}
	if rf != nil {
		s.refuseConn(c, bw, rf, ver)
		return
	}
	_, _ = bw.Write(discovery.AppendUvarintFrame(nil, discovery.FrameWelcome, s.id))
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := bw.Flush(); err != nil {
		return
	}
	switch h.Role {
	case discovery.RoleAgent:
		s.stats.agentConns.Add(1)
		defer s.stats.agentConns.Add(-1)
		s.serveAgent(c, br, bw, buf, ver, ca)
	case discovery.RolePeer:
		s.peers.serveInbound(ctx, h.InstanceID, c, br, buf, ver, ca)
	}
}

// refuseConn answers a refused Hello (or a connection whose credential was
// revoked) with a Reject, counts and logs it; the caller closes.
func (s *Server) refuseConn(c net.Conn, bw *bufio.Writer, rf *refusal, ver discovery.Version) {
	s.rejections.Add(rf.reason)
	s.limiter.log(s.log, s.now().UnixNano(), slog.LevelWarn, "connection refused",
		"reason", rf.reason.String(), "problem", rf.problem, "remote", c.RemoteAddr().String())
	_, _ = bw.Write(discovery.AppendRejectFrame(nil, discovery.Reject{Reason: rf.reason, Field: rf.field, Problem: rf.problem}, ver))
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_ = bw.Flush()
}

// serveAgent reads heartbeats until the connection fails. It answers each
// burst it read with one Ack of the last processed seq.
func (s *Server) serveAgent(c net.Conn, br *bufio.Reader, bw *bufio.Writer, buf []byte, ver discovery.Version, ca *connAuth) {
	var (
		hb      discovery.Heartbeat
		view    discovery.HeartbeatView
		in      discovery.Interner
		lastSeq uint64
		unacked bool
		out     []byte
	)
	idle := time.Duration(s.cfg.MissedBeats+1) * s.cfg.Period
	var deadlineAt time.Time
	for {
		if br.Buffered() == 0 || time.Since(deadlineAt) > idle/4 {
			if unacked {
				out = discovery.AppendUvarintFrame(out[:0], discovery.FrameAck, lastSeq)
				_, _ = bw.Write(out)
				unacked = false
			}
			if bw.Buffered() > 0 {
				_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if bw.Flush() != nil {
					return
				}
			}
			deadlineAt = time.Now()
			_ = c.SetReadDeadline(deadlineAt.Add(idle))
		}
		typ, p, nb, err := discovery.ReadFrame(br, discovery.MaxAgentFrame, buf)
		buf = nb
		if err != nil {
			var ie *discovery.InputError
			if errors.As(err, &ie) {
				s.rejections.Add(ie.Reason)
				_, _ = bw.Write(discovery.AppendRejectFrame(nil, discovery.Reject{Reason: ie.Reason, Field: ie.Field, Problem: ie.Problem}, ver))
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				_ = bw.Flush()
			}
			return
		}
		cred, rf := ca.current(s)
		if rf != nil { // revoked by a reload
			s.refuseConn(c, bw, rf, ver)
			return
		}
		switch typ {
		case discovery.FrameHeartbeat:
			if discovery.DecodeHeartbeatView(p, &view, ver) == nil && s.fastBeat(&view, s.now().UnixNano(), cred) {
				s.stats.heartbeats.Add(1)
				lastSeq, unacked = view.Seq, true
				continue
			}
			hb = discovery.Heartbeat{}
			if err := discovery.DecodeHeartbeat(p, &hb, &in, ver); err != nil {
				s.reject(bw, &hb, err, ver)
				continue
			}
			if r := s.ingest(&hb, s.now().UnixNano(), cred); r != nil {
				s.refuseBeat(bw, &hb, r, ver, c.RemoteAddr())
				continue
			}
			s.stats.heartbeats.Add(1)
			lastSeq, unacked = hb.Seq, true
		case discovery.FrameKeepalive:
		default:
			s.reject(bw, nil, &discovery.InputError{Reason: discovery.ReasonMalformed, Problem: fmt.Sprintf("unexpected frame type %d on an agent connection", typ)}, ver)
		}
	}
}

func (s *Server) reject(bw *bufio.Writer, hb *discovery.Heartbeat, err error, ver discovery.Version) {
	var ie *discovery.InputError
	if !errors.As(err, &ie) {
		ie = &discovery.InputError{Reason: discovery.ReasonMalformed, Problem: err.Error()}
	}
	s.rejections.Add(ie.Reason)
	r := discovery.Reject{Reason: ie.Reason, Field: ie.Field, Problem: ie.Problem}
	if hb != nil && len(hb.ID) <= discovery.MaxIDLen {
		r.NodeID, r.Seq = hb.ID, hb.Seq
	}
	_, _ = bw.Write(discovery.AppendRejectFrame(nil, r, ver))
	s.log.Debug("rejected heartbeat", "err", ie)
}

// refuseBeat answers a refused heartbeat with a Reject (naming the reason,
// the field and the problem, and the incarnation to adopt when that is
// the problem), counts and logs it.
func (s *Server) refuseBeat(bw *bufio.Writer, hb *discovery.Heartbeat, r *refusal, ver discovery.Version, remote net.Addr) {
	s.rejections.Add(r.reason)
	_, _ = bw.Write(discovery.AppendRejectFrame(nil, discovery.Reject{
		Reason: r.reason, NodeID: hb.ID, Seq: hb.Seq, Field: r.field, Problem: r.problem, Incarnation: r.hint,
	}, ver))
	s.logRefusal(r, hb, remote.String())
}

// logRefusal logs a refused heartbeat at warning level (rate limited; never
// the credential's secret).
func (s *Server) logRefusal(r *refusal, hb *discovery.Heartbeat, remote string) {
	s.limiter.log(s.log, s.now().UnixNano(), slog.LevelWarn, "heartbeat refused",
		"reason", r.reason.String(), "field", r.field, "problem", r.problem,
		"app", hb.App, "node", hb.ID, "remote", remote)
}

// fastBeat applies a heartbeat that only refreshes the liveness of a node
// this instance owns, without allocating: same identity, state and
// addresses, valid load within epsilon of the propagated one. It reports
// false when the beat needs the full path (decode, validate, ingest).
func (s *Server) fastBeat(v *discovery.HeartbeatView, now int64, cred *credential) bool {
	s.appsMu.RLock()
	a := s.apps[string(v.App)]
	s.appsMu.RUnlock()
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.freed {
		return false
	}
	rec := a.nodes[string(v.ID)]
	// rec.auth == cred: this very credential (of the credentials in force)
	// passed the full checks for this record, whose identity the beat
	// must repeat below, so they need not run again.
	if rec == nil || rec.removed || rec.owner != s.id || rec.auth != cred {
		return false
	}
	if len(a.pending) > 0 && a.pending[string(v.ID)] != nil {
		return false
	}
	if seqLess(v.Incarnation, v.Seq, rec.inc, rec.seq) || v.Incarnation > uint64(now)+uint64(s.cfg.MaxClockSkew) {
		return false // the full path refuses it, telling the agent why
	}
	n := &rec.node
	if len(rec.addrRaw) == 0 {
		rec.addrRaw = discovery.AppendAddresses(rec.addrRaw, n.Addresses)
	}
	if v.State != n.State || v.Count != n.Accelerator.Count || v.Capacity != n.Capacity ||
		string(v.Engine) != n.Engine || string(v.Model) != n.Accelerator.Model || !bytes.Equal(v.Addresses, rec.addrRaw) {
		return false
	}
	if v.Load.Validate() != nil || significant(&n.Load, &v.Load, s.cfg.LoadEpsilon) || !n.Load.LoRA.Is(v.Adapters) || refreshDue(rec, now, s.cfg.LoadRefresh) {
		return false
	}
	rec.inc, rec.seq, rec.heard = v.Incarnation, v.Seq, now
	return true
}

// lockApp returns the app called name, locked, creating it when create is
// set (nil, nil when it does not exist and create is not set). An app the
// sweep freed is never returned. A new app beyond MaxApps is refused
// unless trusted (peers' changes are always applied, so the tier agrees).
func (s *Server) lockApp(name string, create, trusted bool) (*app, *refusal) {
	for {
		s.appsMu.RLock()
		a := s.apps[name]
		s.appsMu.RUnlock()
		if a == nil {
			if !create {
				return nil, nil
			}
			s.appsMu.Lock()
			if a = s.apps[name]; a == nil {
				if n := len(s.apps); !trusted && n >= s.cfg.MaxApps {
					s.appsMu.Unlock()
					return nil, refuse(discovery.ReasonLimit, "app", "this Resource instance holds %d apps, its limit (MaxApps)", n)
				}
				a = newApp(name, s.id, s.versionFloor)
				s.apps[name] = a
			}
			s.appsMu.Unlock()
		}
		a.mu.Lock()
		if !a.freed {
			return a, nil
		}
		a.mu.Unlock()
	}
}

// freeEmpty removes apps that hold nothing (see app.emptyLocked), so names
// that were used once do not stay in memory (issue 12, item 11).
func (s *Server) freeEmpty(cands []*app) {
	if len(cands) == 0 {
		return
	}
	s.appsMu.Lock()
	defer s.appsMu.Unlock()
	for _, a := range cands {
		a.mu.Lock()
		if !a.freed && a.emptyLocked() && s.apps[a.name] == a {
			delete(s.apps, a.name)
			a.freed = true
			s.versionFloor = max(s.versionFloor, a.version)
			s.stats.appsFreed.Add(1)
		}
		a.mu.Unlock()
	}
}

// appList returns the apps.
func (s *Server) appList() []*app {
	s.appsMu.RLock()
	defer s.appsMu.RUnlock()
	out := make([]*app, 0, len(s.apps))
	for _, a := range s.apps {
		out = append(out, a)
	}
	return out
}

// ingest applies one validated heartbeat this instance heard at now (unix
// nanoseconds), or returns why it refuses it. Draining and offline changes
// are committed and sent to peers at once; other changes wait for the
// window; a beat that changes nothing only refreshes liveness.
func (s *Server) ingest(hb *discovery.Heartbeat, now int64, cred *credential) *refusal {
	if r := cred.checkBeat(hb); r != nil {
		return r
	}
	lim := s.creds.Load().limits(hb.App)
	if lim.MaxCapacity > 0 && hb.Capacity > lim.MaxCapacity {
		return refuse(discovery.ReasonForbidden, "capacity", "capacity %g is above app %q's cap %g (max_capacity)", hb.Capacity, hb.App, lim.MaxCapacity)
	}
	if r := s.checkIncarnation(hb.Incarnation, now); r != nil {
		return r
	}
	a, rl := s.lockApp(hb.App, true, false)
	if rl != nil {
		return rl
	}
	rec := a.orderLocked(hb.ID, now, s.cfg.TombstoneTTL)
	pend := a.pending[hb.ID]
	live := rec != nil && !rec.removed
	if rec != nil && rec.removed && hb.Incarnation == rec.inc && hb.Seq == rec.seq {
		a.mu.Unlock() // the offline beat again
		s.stats.staleBeats.Add(1)
		return nil
	}
	var stale *refusal
	switch {
	case pend != nil && seqLess(hb.Incarnation, hb.Seq, pend.inc, pend.seq):
		stale = s.staleRefusal(hb, pend.inc, pend.seq, now)
	case rec != nil && seqLess(hb.Incarnation, hb.Seq, rec.inc, rec.seq):
		stale = s.staleRefusal(hb, rec.inc, rec.seq, now)
	}
	if stale != nil {
		a.mu.Unlock()
		s.stats.staleBeats.Add(1)
		return stale
	}
	ch := change{
		node: discovery.Node{
			ID: hb.ID, App: a.name, Addresses: hb.Addresses, Engine: hb.Engine,
			Accelerator: hb.Accelerator, Capacity: hb.Capacity, State: hb.State,
			Load: hb.Load, LastHeard: time.Unix(0, now),
		},
		owner: s.id, inc: hb.Incarnation, seq: hb.Seq, heard: now, auth: cred,
		removed: hb.State == discovery.StateOffline,
	}
	if !live && pend == nil && !ch.removed {
		// A new node: within the app's limit? (Pending changes count as
		// nodes, new or not: the bound errs on the safe side for one
		// window.)
		limit := s.cfg.MaxNodesPerApp
		if lim.MaxNodes > 0 {
			limit = lim.MaxNodes
		}
		if a.live+len(a.pending) >= limit {
			a.mu.Unlock()
			return refuse(discovery.ReasonLimit, "id", "app %q lists %d nodes, its limit", a.name, limit)
		}
	}
	var base *discovery.Node
	switch {
	case pend != nil && !pend.removed:
		base = &pend.node
	case pend == nil && live:
		base = &rec.node
	}
	immediate := false
	switch {
	case ch.removed:
		if base == nil && !live {
			delete(a.pending, hb.ID)
			a.mu.Unlock()
			return nil
		}
		immediate = true
	case base == nil:
		// New (or returning) node: next window.
	case hb.State == discovery.StateDraining && base.State != discovery.StateDraining:
		immediate = true
	case base.State != hb.State, pend == nil && rec.owner != s.id, !sameIdentity(base, &ch.node),
		significant(&base.Load, &ch.node.Load, s.cfg.LoadEpsilon), base.Load.LoRA != ch.node.Load.LoRA,
		pend == nil && refreshDue(rec, now, s.cfg.LoadRefresh):
		// A change worth propagating: next window.
	default:
		// Liveness only.
		if pend != nil {
			pend.inc, pend.seq, pend.heard = hb.Incarnation, hb.Seq, now
		}
		if live {
			rec.inc, rec.seq, rec.heard = hb.Incarnation, hb.Seq, now
		}
		a.mu.Unlock()
		return nil
	}
	if immediate {
		delete(a.pending, hb.ID)
		a.commitLocked([]change{ch}, now)
		a.mu.Unlock()
		s.stats.commits.Add(1)
		s.stats.changes.Add(1)
		s.peers.broadcast([]peerChange{{app: a.name, change: ch}})
		return nil
	}
	if pend != nil {
		*pend = ch
	} else {
		c := ch
		a.pending[hb.ID] = &c
	}
	if live {
		rec.heard = now
	}
	a.dirty = true
	a.mu.Unlock()
	return nil
}

// checkIncarnation refuses an incarnation too far ahead of this
// instance's clock (MaxClockSkew), hinting at the current time.
func (s *Server) checkIncarnation(inc uint64, now int64) *refusal {
	bound := uint64(now) + uint64(s.cfg.MaxClockSkew)
	if inc <= bound {
		return nil
	}
	r := refuse(discovery.ReasonInvalid, "incarnation",
		"incarnation %d is %s ahead of this Resource instance's clock (at most %v): use %d",
		inc, aheadBy(inc, uint64(now)), s.cfg.MaxClockSkew, now)
	r.hint = uint64(now)
	return r
}

func aheadBy(inc, now uint64) string {
	d := inc - now
	if d > uint64(1<<63-1) {
		return "centuries"
	}
	return time.Duration(d).Round(time.Second).String()
}

// staleRefusal refuses a heartbeat older than the applied (inc, seq) of
// its node, hinting at the next incarnation: an honest agent that
// restarted with its clock behind adopts it and recovers at once.
func (s *Server) staleRefusal(hb *discovery.Heartbeat, inc, seq uint64, now int64) *refusal {
	r := refuse(discovery.ReasonStale, "incarnation",
		"(incarnation %d, seq %d) is older than the applied (%d, %d) of node %q; use incarnation %d",
		hb.Incarnation, hb.Seq, inc, seq, hb.ID, max(inc+1, uint64(now)))
	r.hint = max(inc+1, uint64(now))
	return r
}

// flushLoop commits the window's pending changes and sends them to peers.
func (s *Server) flushLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.Window)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.flush()
		}
	}
}

func (s *Server) flush() {
	now := s.now().UnixNano()
	var batch []peerChange
	for _, a := range s.appList() {
		a.mu.Lock()
		if !a.dirty {
			a.mu.Unlock()
			continue
		}
		a.dirty = false
		chs := make([]change, 0, len(a.pending))
		for id, p := range a.pending {
			chs = append(chs, *p)
			delete(a.pending, id)
		}
		a.commitLocked(chs, now)
		a.mu.Unlock()
		s.stats.commits.Add(1)
		s.stats.changes.Add(uint64(len(chs)))
		for _, ch := range chs {
			batch = append(batch, peerChange{app: a.name, change: ch})
		}
	}
	s.peers.broadcast(batch)
}
