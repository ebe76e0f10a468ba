package resource

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// Peer batch kinds (first payload byte of a FramePeerBatch).
const (
	batchChanges  byte = 0 // changes heard since the last batch
	batchDumpPart byte = 1 // part of a full dump of the sender's own nodes
	batchDumpEnd  byte = 2 // last part of a dump: the sender owns nothing else
)

// maxBatchBytes is where batches are cut into frames.
const maxBatchBytes = 1 << 20

type peerChange struct {
	app    string
	change change
}

// peers is the instance's view of the tier: one outbound link per peer
// address (this instance's changes go out on it) and the inbound links peers
// opened (their changes come in on them; a peer is alive while one is up).
type peers struct {
	s *Server

	mu   sync.Mutex
	out  map[string]*peerOut // guarded by mu, by dial address
	in   map[uint64]int      // guarded by mu: inbound links per peer instance
	lost map[uint64]int64    // guarded by mu: when a peer's last inbound link dropped
	wg   sync.WaitGroup
}

// peerOut is one outbound link. Fields are atomic or immutable.
type peerOut struct {
	addr      string
	ver       atomic.Uint32 // wire version of the current session (0: none yet)
	q         chan [][]byte
	resync    atomic.Bool // frames were dropped: send a full dump
	remote    atomic.Uint64
	connected atomic.Bool
	self      atomic.Bool
	cancel    context.CancelFunc
}

func newPeers(s *Server) *peers {
	return &peers{s: s, out: make(map[string]*peerOut), in: make(map[uint64]int), lost: make(map[uint64]int64)}
}

// run maintains the outbound links until ctx is done.
func (p *peers) run(ctx context.Context) {
	defer p.wg.Wait()
	p.setAddrs(ctx, p.s.cfg.Peers)
	if p.s.cfg.PeerDNS == "" {
		<-ctx.Done()
		return
	}
	host, port, err := net.SplitHostPort(p.s.cfg.PeerDNS)
	if err != nil {
		p.s.log.Error("bad PeerDNS, not resolving", "err", err)
		<-ctx.Done()
		return
	}
	t := time.NewTicker(p.s.cfg.PeerDNSInterval)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ips, err := net.DefaultResolver.LookupHost(rctx, host)
		cancel()
		if err != nil {
			p.s.log.Warn("resolve peers", "name", host, "err", err)
		} else {
			addrs := slices.Clone(p.s.cfg.Peers)
			for _, ip := range ips {
				addrs = append(addrs, net.JoinHostPort(ip, port))
			}
			p.setAddrs(ctx, addrs)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// setAddrs starts links to new addresses and stops links to vanished ones.
func (p *peers) setAddrs(ctx context.Context, addrs []string) {
	want := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		want[a] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, o := range p.out {
		if !want[addr] {
			o.cancel()
			delete(p.out, addr)
		}
	}
	for addr := range want {
		if _, ok := p.out[addr]; ok {
			continue
		}
		octx, cancel := context.WithCancel(ctx)
		o := &peerOut{addr: addr, q: make(chan [][]byte, 256), cancel: cancel}
		p.out[addr] = o
		p.wg.Go(func() { p.runOut(octx, o) })
	}
}

// broadcast sends this instance's changes to every peer. It never blocks: a
// peer that cannot keep up gets a full dump instead.
func (p *peers) broadcast(batch []peerChange) {
	if len(batch) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var byVersion [discovery.CurrentVersion + 1][][]byte
	for _, o := range p.out {
		if o.self.Load() {
			continue
		}
		ver := discovery.Version(o.ver.Load())
		if ver == 0 || ver > discovery.CurrentVersion {
			ver = discovery.CurrentVersion
		}
		frames := byVersion[ver]
		if frames == nil {
			frames = encodeBatch(batchChanges, batch, false, ver)
			byVersion[ver] = frames
		}
		select {
		case o.q <- frames:
			p.s.stats.peerSent.Add(uint64(len(batch)))
		default:
			p.s.stats.peerDropped.Add(uint64(len(batch)))
			o.resync.Store(true)
		}
	}
}

// encodeBatch encodes changes into frames of at most about maxBatchBytes.
// With dump set, the frames are dump parts and the last one ends the dump.
func encodeBatch(kind byte, batch []peerChange, dump bool, ver discovery.Version) [][]byte {
	var frames [][]byte
	i := 0
	for {
		start := i
		var body []byte
		n := 0
		for i < len(batch) && len(body) < maxBatchBytes {
			body = appendPeerChange(body, &batch[i], ver)
			i++
			n++
		}
		k := kind
		if dump && i == len(batch) {
			k = batchDumpEnd
		}
		frame := discovery.AppendFrame(make([]byte, 0, len(body)+16), discovery.FramePeerBatch, func(b []byte) []byte {
			b = append(b, k)
			b = binary.AppendUvarint(b, uint64(n))
			return append(b, body...)
		})
		frames = append(frames, frame)
		if i == len(batch) || (i == start && !dump) {
			return frames
		}
	}
}

func appendPeerChange(b []byte, pc *peerChange, ver discovery.Version) []byte {
	b = binary.AppendUvarint(b, uint64(len(pc.app)))
	b = append(b, pc.app...)
	b = discovery.AppendNode(b, &pc.change.node, ver)
	b = binary.AppendUvarint(b, pc.change.owner)
	b = binary.AppendUvarint(b, pc.change.inc)
	b = binary.AppendUvarint(b, pc.change.seq)
	if pc.change.removed {
		return append(b, 1)
	}
	return append(b, 0)
}

// decodeBatch decodes a peer batch payload of wire version ver.
func decodeBatch(p []byte, in *discovery.Interner, ver discovery.Version) (kind byte, out []peerChange, err error) {
	if len(p) < 1 {
		return 0, nil, &discovery.InputError{Reason: discovery.ReasonMalformed, Field: "batch", Problem: "empty"}
	}
	kind, p = p[0], p[1:]
	if kind > batchDumpEnd {
		return 0, nil, &discovery.InputError{Reason: discovery.ReasonMalformed, Field: "batch.kind", Problem: fmt.Sprintf("unknown kind %d", kind)}
	}
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)) {
		return 0, nil, &discovery.InputError{Reason: discovery.ReasonMalformed, Field: "batch.count", Problem: "bad count"}
	}
	p = p[k:]
	out = make([]peerChange, 0, n)
	bad := func(f string) error {
		return &discovery.InputError{Reason: discovery.ReasonMalformed, Field: "batch." + f, Problem: "truncated or bad varint"}
	}
	for range n {
		var pc peerChange
		l, k := binary.Uvarint(p)
		if k <= 0 || l > uint64(len(p)-k) || l > discovery.MaxIDLen {
			return 0, nil, bad("app")
		}
		pc.app = in.Intern(p[k : k+int(l)])
		if p, err = discovery.DecodeNode(p[k+int(l):], &pc.change.node, in, ver); err != nil {
			return 0, nil, err
		}
		for _, f := range []*uint64{&pc.change.owner, &pc.change.inc, &pc.change.seq} {
			v, k := binary.Uvarint(p)
			if k <= 0 {
				return 0, nil, bad("owner")
			}
			*f, p = v, p[k:]
		}
		if len(p) < 1 {
			return 0, nil, bad("removed")
		}
		pc.change.removed, p = p[0] == 1, p[1:]
		if pc.app == "" || pc.change.node.ID == "" || pc.change.node.App != pc.app {
			return 0, nil, &discovery.InputError{Reason: discovery.ReasonInvalid, Field: "batch.node", Problem: "empty id or app mismatch"}
		}
		if st := pc.change.node.State; st == discovery.StateUnknown || st > discovery.StateOffline {
			return 0, nil, &discovery.InputError{Reason: discovery.ReasonInvalid, Field: "batch.node.state", Problem: fmt.Sprintf("state %d", st)}
		}
		if err := pc.change.node.Load.Validate(); err != nil {
			return 0, nil, err
		}
		out = append(out, pc)
	}
	if len(p) != 0 {
		return 0, nil, &discovery.InputError{Reason: discovery.ReasonMalformed, Field: "batch", Problem: "trailing bytes"}
	}
	return kind, out, nil
}

// runOut keeps one outbound link up until ctx is done.
func (p *peers) runOut(ctx context.Context, o *peerOut) {
	backoff := 50 * time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		started := time.Now()
		err := p.session(ctx, o)
		o.connected.Store(false)
		if o.self.Load() || ctx.Err() != nil {
			return
		}
		if time.Since(started) > 2*time.Second {
			backoff = 50 * time.Millisecond
		}
		p.s.log.Debug("peer link down", "peer", o.addr, "err", err)
		t.Reset(backoff)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// session runs one connection of an outbound link: handshake (the current
// wire version, or the newest older one the peer speaks), full dump
// of own nodes, then changes and keepalives.
func (p *peers) session(ctx context.Context, o *peerOut) error {
	c, ver, rid, err := p.dialPeer(ctx, o.addr, p.s.wireMax)
	for v := p.s.wireMax; errors.Is(err, discovery.ErrOldServer); {
		var ok bool
		if v, ok = v.Older(); !ok {
			break
		}
		c, ver, rid, err = p.dialPeer(ctx, o.addr, v)
	}
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = c.Close() })
	defer func() {
		stop()
		_ = c.Close()
	}()
	if rid == p.s.id {
		o.self.Store(true)
		return nil
	}
	o.ver.Store(uint32(ver))
	o.remote.Store(rid)
	// Queued frames are older than the dump that follows.
	for drained := false; !drained; {
		select {
		case <-o.q:
		default:
			drained = true
		}
	}
	o.resync.Store(false)
	write := func(frames [][]byte) error {
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		for _, f := range frames {
			if _, err := c.Write(f); err != nil {
				return err
			}
		}
		return nil
	}
	if err := write(p.dump(ver)); err != nil {
		return err
	}
	o.connected.Store(true)
	ka := time.NewTicker(max(p.s.cfg.Period/4, 10*time.Millisecond))
	defer ka.Stop()
	keepalive := discovery.AppendFrame(nil, discovery.FrameKeepalive, nil)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case frames := <-o.q:
			if err := write(frames); err != nil {
				return err
			}
		case <-ka.C:
			if o.resync.Swap(false) {
				if err := write(p.dump(ver)); err != nil {
					return err
				}
			}
			if err := write([][]byte{keepalive}); err != nil {
				return err
			}
		}
	}
}

// dialPeer dials addr and hand-shakes as a peer in version ver. It returns
// the connection (its handshake deadline cleared) and the peer's instance id.
func (p *peers) dialPeer(ctx context.Context, addr string, ver discovery.Version) (net.Conn, discovery.Version, uint64, error) {
	d := net.Dialer{Timeout: time.Second}
	var c net.Conn
	var err error
	if p.s.cfg.PeerTLS != nil {
		c, err = (&tls.Dialer{NetDialer: &d, Config: p.s.cfg.PeerTLS}).DialContext(ctx, "tcp", addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, 0, 0, err
	}
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	rid, err := discovery.Handshake(c, bufio.NewReaderSize(c, 512), ver, discovery.Hello{Role: discovery.RolePeer, Token: p.s.cfg.peerToken(), InstanceID: p.s.id})
	if err != nil {
		_ = c.Close()
		return nil, 0, 0, fmt.Errorf("resource: peer %s: %w", addr, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, ver, rid, nil
}

// dump encodes every live node this instance owns in wire version ver.
func (p *peers) dump(ver discovery.Version) [][]byte {
	var batch []peerChange
	for _, a := range p.s.appList() {
		a.mu.Lock()
		for _, rec := range a.recs {
			if !rec.removed && rec.owner == p.s.id {
				batch = append(batch, peerChange{app: a.name, change: changeOf(rec)})
			}
		}
		a.mu.Unlock()
	}
	return encodeBatch(batchDumpPart, batch, true, ver)
}

// serveInbound reads a peer's changes until the link fails.
func (p *peers) serveInbound(ctx context.Context, from uint64, c net.Conn, br *bufio.Reader, buf []byte, ver discovery.Version, ca *connAuth) {
	if from == 0 || from == p.s.id {
		return
	}
	p.mu.Lock()
	p.in[from]++
	delete(p.lost, from)
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		if p.in[from]--; p.in[from] <= 0 {
			delete(p.in, from)
			p.lost[from] = p.s.now().UnixNano()
		}
		p.mu.Unlock()
	}()
	var in discovery.Interner
	seen := make(map[string]map[string]struct{})
	deadline := max(p.s.cfg.Period, 250*time.Millisecond)
	for ctx.Err() == nil {
		_ = c.SetReadDeadline(time.Now().Add(deadline))
		typ, pl, nb, err := discovery.ReadFrame(br, discovery.MaxPeerFrame, buf)
		buf = nb
		if err != nil {
			var ie *discovery.InputError
			if errors.As(err, &ie) {
				p.s.rejections.Add(ie.Reason)
			}
			return
		}
		if _, rf := ca.current(p.s); rf != nil { // revoked by a reload
			p.s.refuseConn(c, bufio.NewWriter(c), rf, ver)
			return
		}
		switch typ {
		case discovery.FramePeerBatch:
			kind, batch, err := decodeBatch(pl, &in, ver)
			if err != nil {
				p.s.rejections.Add(discovery.ReasonOf(err))
				p.s.log.Warn("bad peer batch", "peer", fmt.Sprintf("%016x", from), "err", err)
				return
			}
			p.s.stats.peerRecv.Add(uint64(len(batch)))
			p.s.applyPeer(from, kind, batch, seen)
		case discovery.FrameKeepalive:
		default:
			p.s.rejections.Add(discovery.ReasonMalformed)
			return
		}
	}
}

// lostSnapshot returns the peers whose links are down and since when.
func (p *peers) lostSnapshot() map[uint64]int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.lost)
}

// connected returns the addresses of peers with a live outbound link.
func (p *peers) connected() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for addr, o := range p.out {
		if o.connected.Load() && !o.self.Load() {
			out = append(out, addr)
		}
	}
	return out
}

// applyPeer applies a peer's batch. Reports of a node are ordered by
// (incarnation, seq); a newer report from another owner moves ownership.
// A dump end removes the sender's nodes that were not in the dump.
func (s *Server) applyPeer(from uint64, kind byte, batch []peerChange, seen map[string]map[string]struct{}) {
	now := s.now().UnixNano()
	byApp := make(map[string][]change)
	order := []string{}
	for i := range batch {
		pc := &batch[i]
		if _, ok := byApp[pc.app]; !ok {
			order = append(order, pc.app)
		}
		byApp[pc.app] = append(byApp[pc.app], pc.change)
		if kind != batchChanges {
			m := seen[pc.app]
			if m == nil {
				m = make(map[string]struct{})
				seen[pc.app] = m
			}
			m[pc.change.node.ID] = struct{}{}
		}
	}
	for _, name := range order {
		a, _ := s.lockApp(name, true, true)
		chs := byApp[name][:0]
		for _, ch := range byApp[name] {
			id := ch.node.ID
			if pend := a.pending[id]; pend != nil {
				if !seqLess(pend.inc, pend.seq, ch.inc, ch.seq) {
					continue
				}
				delete(a.pending, id)
			}
			rec := a.orderLocked(id, now, s.cfg.TombstoneTTL)
			switch {
			case ch.inc > uint64(now)+uint64(s.cfg.MaxClockSkew):
				// Agents' incarnations are bounded where they beat; this
				// one is not (a peer whose clock runs far ahead?).
				s.rejections.Add(discovery.ReasonInvalid)
				s.limiter.log(s.log, now, slog.LevelWarn, "peer change with an incarnation far ahead of this clock dropped",
					"peer", fmt.Sprintf("%016x", from), "app", name, "node", id, "incarnation", ch.inc)
				continue
			case rec == nil && ch.removed:
				continue
			case rec != nil && seqLess(ch.inc, ch.seq, rec.inc, rec.seq):
				continue
			case rec != nil && rec.owner == s.id && !rec.removed && ch.owner != s.id && ch.inc == rec.inc && ch.seq == rec.seq:
				continue
			}
			ch.heard = now
			chs = append(chs, ch)
		}
		a.commitLocked(chs, now)
		a.mu.Unlock()
	}
	if kind == batchDumpEnd {
		for _, a := range s.appList() {
			m := seen[a.name]
			var chs []change
			a.mu.Lock()
			for id, rec := range a.nodes {
				if _, ok := m[id]; !ok && !rec.removed && rec.owner == from {
					ch := changeOf(rec)
					ch.removed = true
					ch.node.State = discovery.StateOffline
					chs = append(chs, ch)
				}
			}
			a.commitLocked(chs, now)
			a.mu.Unlock()
		}
		clear(seen)
	}
}
