package discovery

import (
	"bufio"
	"encoding/binary"
	"io"
	"math"
	"slices"
	"time"
)

// The framed heartbeat protocol.
//
// A connection starts with a preamble naming the protocol version (see
// [Version]), then carries frames in both directions. A frame is a 4-byte
// big-endian length n (of what follows), a 1-byte type and n-1 bytes of
// payload. Integers in payloads are varints (signed ones zig-zag), floats
// are 8-byte big-endian IEEE 754, strings are a uvarint length and the
// bytes. The client's first frame is a Hello; the server answers Welcome or
// Reject and closes on a bad credential.
//
// One connection may carry heartbeats of many nodes (a load generator or a
// host agent simulates many nodes on one connection). The server answers
// each burst of heartbeats it has read with one Ack (the last Seq it
// processed) and each rejected heartbeat with a Reject naming the field.

// Version is a version of the framed protocol and of the binary node
// encoding (heartbeats, peer batches, binary deltas).
//
// Version1 (issue 3) encodes loads as plain numbers, 0 standing for
// "unknown". Version2 (issue 13) encodes which load quantities are known and
// the engine's readiness, and its Reject frame carries an incarnation hint.
// Version3 (issue 14) adds to the load the engine's prefix-cache counters
// and hit rate (three more known bits) and its LoRA adapters (after the
// sample time). The preamble selects the version: "SYD1", "SYD2\r\n" or
// "SYD3\r\n". A client talking to a Resource that does not know its
// version gets an HTTP 400 back (the old server takes the unknown preamble
// for HTTP; the CRLF ends its request line at once) and redials with the
// next older version ([Version.Older]): [Handshake] reports that as
// [ErrOldServer]. Old clients keep speaking their version to new servers,
// so an old receiver never sees the fields it does not know, and what an
// old sender did not send reads as unknown.
//
// Decoding a Version1 load: utilisation and concurrency are taken as sent
// (they always were the load); running, waiting and KV-cache usage of 0 are
// read as unknown (old agents sent 0 when the engine did not report them),
// and readiness is unknown.
type Version uint8

// Protocol versions.
const (
	Version1       Version = 1
	Version2       Version = 2
	Version3       Version = 3
	CurrentVersion         = Version3
)

// Older returns the version to redial with after v met a server that does
// not speak it (ErrOldServer), and false for Version1, the oldest.
func (v Version) Older() (Version, bool) {
	if v <= Version1 {
		return 0, false
	}
	return v - 1, true
}

// Preambles of the framed protocol versions. Every preamble starts with
// four bytes that tell the version (PreambleProbe bytes are enough to
// recognise one).
const (
	Magic1        = "SYD1"
	Magic2        = "SYD2\r\n"
	Magic3        = "SYD3\r\n"
	PreambleProbe = 4
)

// Preamble returns the bytes that open a connection of version v.
func (v Version) Preamble() string {
	switch v {
	case Version1:
		return Magic1
	case Version2:
		return Magic2
	}
	return Magic3
}

// VersionOfPreamble recognises a preamble from its first PreambleProbe
// bytes; ok is false for anything else (HTTP, say).
func VersionOfPreamble(head []byte) (v Version, ok bool) {
	switch {
	case len(head) < PreambleProbe:
		return 0, false
	case string(head[:PreambleProbe]) == Magic1:
		return Version1, true
	case string(head[:PreambleProbe]) == Magic2[:PreambleProbe]:
		return Version2, true
	case string(head[:PreambleProbe]) == Magic3[:PreambleProbe]:
		return Version3, true
	}
	return 0, false
}

// Frame types.
const (
	FrameHello     byte = 1 // client → server: role, token, instance id (peers)
	FrameWelcome   byte = 2 // server → client: server instance id
	FrameHeartbeat byte = 3 // agent → server: one heartbeat
	FrameAck       byte = 4 // server → agent: last processed seq
	FrameReject    byte = 5 // server → client: reason, node id, seq, field, problem
	FramePeerBatch byte = 6 // peer → peer: a batch of node changes
	FrameKeepalive byte = 7 // either way: liveness, empty payload
)

// Hello roles.
const (
	RoleAgent byte = 1
	RolePeer  byte = 2
)

// Frame size limits.
const (
	// MaxAgentFrame bounds frames on agent connections.
	MaxAgentFrame = MaxHeartbeatBytes
	// MaxPeerFrame bounds frames on peer connections (batches are chunked).
	MaxPeerFrame = 4 << 20
)

// AppendFrame appends a frame of type typ whose payload is produced by
// body (which appends to its argument) to dst.
func AppendFrame(dst []byte, typ byte, body func([]byte) []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, typ)
	if body != nil {
		dst = body(dst)
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// AppendHeartbeatFrame appends hb as a heartbeat frame of version v to
// dst. It does not allocate when dst has room.
func AppendHeartbeatFrame(dst []byte, hb *Heartbeat, v Version) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, FrameHeartbeat)
	dst = AppendHeartbeat(dst, hb, v)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// Hello is the first frame on a connection.
type Hello struct {
	Role       byte
	Token      string
	InstanceID uint64 // the dialling Resource instance (RolePeer only)
}

// AppendHelloFrame appends h as a Hello frame.
func AppendHelloFrame(dst []byte, h Hello) []byte {
	return AppendFrame(dst, FrameHello, func(b []byte) []byte {
		b = append(b, h.Role)
		b = appendStr(b, h.Token)
		return binary.AppendUvarint(b, h.InstanceID)
	})
}

// DecodeHello decodes a Hello payload.
func DecodeHello(p []byte) (Hello, error) {
	d := decoder{b: p}
	var h Hello
	h.Role = d.byte("role")
	h.Token = d.str("token", 1024)
	h.InstanceID = d.uvarint("instance_id")
	return h, d.finish()
}

// Reject is the payload of a Reject frame.
type Reject struct {
	Reason  Reason
	NodeID  string
	Seq     uint64
	Field   string
	Problem string
	// Incarnation (Version2 only; 0 = none) is the smallest incarnation the
	// server would accept for NodeID, on a heartbeat refused for its
	// incarnation (older than the one applied, or too far in the future):
	// an agent adopts it and recovers at once (issue 12, item 10).
	Incarnation uint64
}

// AppendRejectFrame appends r as a Reject frame of version v.
func AppendRejectFrame(dst []byte, r Reject, v Version) []byte {
	return AppendFrame(dst, FrameReject, func(b []byte) []byte {
		b = append(b, byte(r.Reason))
		b = appendStr(b, r.NodeID)
		b = binary.AppendUvarint(b, r.Seq)
		b = appendStr(b, r.Field)
		b = appendStr(b, r.Problem)
		if v >= Version2 {
			b = binary.AppendUvarint(b, r.Incarnation)
		}
		return b
	})
}

// DecodeReject decodes a Reject payload of version v.
func DecodeReject(p []byte, v Version) (Reject, error) {
	d := decoder{b: p}
	var r Reject
	r.Reason = Reason(d.byte("reason"))
	r.NodeID = d.str("node_id", MaxIDLen)
	r.Seq = d.uvarint("seq")
	r.Field = d.str("field", 256)
	r.Problem = d.str("problem", 4096)
	if v >= Version2 {
		r.Incarnation = d.uvarint("incarnation")
	}
	return r, d.finish()
}

// AppendUvarintFrame appends a frame whose payload is one uvarint (Welcome, Ack).
func AppendUvarintFrame(dst []byte, typ byte, v uint64) []byte {
	return AppendFrame(dst, typ, func(b []byte) []byte { return binary.AppendUvarint(b, v) })
}

// DecodeUvarint decodes a payload holding one uvarint.
func DecodeUvarint(p []byte, field string) (uint64, error) {
	d := decoder{b: p}
	v := d.uvarint(field)
	return v, d.finish()
}

// ReadFrame reads one frame from r into buf (grown as needed) and returns its
// type and payload, which aliases buf. A frame longer than max is an
// *InputError with ReasonOversized; the stream cannot be resynchronised after
// it and the caller should close the connection.
func ReadFrame(r *bufio.Reader, limit int, buf []byte) (typ byte, payload, newBuf []byte, err error) {
	var hdr [5]byte
	if _, err = io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, buf, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:4]))
	if n < 1 {
		return 0, nil, buf, inputErr(ReasonMalformed, "", "frame length %d", n)
	}
	if n > limit {
		return 0, nil, buf, inputErr(ReasonOversized, "", "frame of %d bytes, at most %d", n, limit)
	}
	if cap(buf) < n-1 {
		buf = make([]byte, n-1, max(n-1, 512))
	}
	buf = buf[:n-1]
	if _, err = io.ReadFull(r, buf); err != nil {
		return 0, nil, buf, err
	}
	return hdr[4], buf, buf, nil
}

// AppendHeartbeat appends the binary encoding of hb in version v (a
// heartbeat frame's payload).
func AppendHeartbeat(b []byte, hb *Heartbeat, v Version) []byte {
	b = appendDesc(b, hb.ID, hb.App, hb.Addresses, hb.Engine, hb.Accelerator, hb.Capacity, hb.State, &hb.Load, v)
	b = binary.AppendUvarint(b, hb.Incarnation)
	return binary.AppendUvarint(b, hb.Seq)
}

// DecodeHeartbeat decodes a heartbeat payload of version v into hb, then
// validates it. It returns an *InputError naming the field on any problem;
// it never panics. in, if not nil, interns low-cardinality strings (app,
// engine, model, protocol names) to save allocations; it must not be shared
// between goroutines.
func DecodeHeartbeat(p []byte, hb *Heartbeat, in *Interner, v Version) error {
	d := decoder{b: p, in: in, v: v}
	d.desc(&hb.ID, &hb.App, &hb.Addresses, &hb.Engine, &hb.Accelerator, &hb.Capacity, &hb.State, &hb.Load)
	hb.Incarnation = d.uvarint("incarnation")
	hb.Seq = d.uvarint("seq")
	if err := d.finish(); err != nil {
		return err
	}
	return hb.Validate()
}

// AppendNode appends the binary encoding of n in version v.
func AppendNode(b []byte, n *Node, v Version) []byte {
	b = appendDesc(b, n.ID, n.App, n.Addresses, n.Engine, n.Accelerator, n.Capacity, n.State, &n.Load, v)
	b = binary.AppendVarint(b, unixNano(n.LastHeard))
	return binary.AppendUvarint(b, n.Version)
}

func (d *decoder) node(n *Node) {
	d.desc(&n.ID, &n.App, &n.Addresses, &n.Engine, &n.Accelerator, &n.Capacity, &n.State, &n.Load)
	n.LastHeard = fromUnixNano(d.varint("last_heard"))
	n.Version = d.uvarint("version")
}

// DecodeNode decodes one node encoded by AppendNode in version v from the
// start of p and returns the bytes after it.
func DecodeNode(p []byte, n *Node, in *Interner, v Version) (rest []byte, err error) {
	d := decoder{b: p, in: in, v: v}
	d.node(n)
	return d.b, d.err
}

// AppendDelta appends the binary encoding of a delta in version v (the body
// of a "format=bin" list read; the newest version the read asks with
// "wire=N" and the server knows, else version 1). The encoding starts with
// 'D' and the version byte.
func AppendDelta(b []byte, dl *Delta, v Version) []byte {
	b = append(b, 'D', byte(v))
	b = appendStr(b, dl.App)
	b = binary.AppendUvarint(b, dl.Epoch)
	b = binary.AppendUvarint(b, dl.From)
	b = binary.AppendUvarint(b, dl.To)
	if dl.Reset {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(dl.Upserts)))
	for i := range dl.Upserts {
		b = AppendNode(b, &dl.Upserts[i], v)
	}
	b = binary.AppendUvarint(b, uint64(len(dl.Removes)))
	for _, id := range dl.Removes {
		b = appendStr(b, id)
	}
	return b
}

// DecodeDelta decodes a delta encoded by AppendDelta in any version.
func DecodeDelta(p []byte, dl *Delta, in *Interner) error {
	d := decoder{b: p, in: in}
	magic, ver := d.byte("magic"), Version(d.byte("format_version"))
	if d.err != nil {
		return d.err
	}
	if magic != 'D' || ver < Version1 || ver > CurrentVersion {
		d.fail(ReasonMalformed, "", "not a binary delta of version 1 to %d", CurrentVersion)
		return d.err
	}
	d.v = ver
	dl.App = d.str("app", MaxIDLen)
	dl.Epoch = d.uvarint("epoch")
	dl.From = d.uvarint("from")
	dl.To = d.uvarint("to")
	dl.Reset = d.byte("reset") == 1
	n := d.count("upserts", len(d.b)/8)
	dl.Upserts = make([]Node, n)
	for i := 0; i < n && d.err == nil; i++ {
		d.node(&dl.Upserts[i])
	}
	m := d.count("removes", len(d.b))
	dl.Removes = make([]string, 0, m)
	for i := 0; i < m && d.err == nil; i++ {
		dl.Removes = append(dl.Removes, d.str("removes", MaxIDLen))
	}
	return d.finish()
}

// Version2 load encoding: a byte of known-quantity bits, a readiness byte,
// the known quantities as floats in the order of the bits, the sample time.
// Version3 uses the three bits Version2 left free (prefix-cache hits,
// queries, hit rate) and follows the sample time with the LoRA adapters: a
// uvarint length (0: unknown) and the Adapters encoding.
const (
	knownUtilisation = 1 << iota
	knownConcurrency
	knownRunning
	knownWaiting
	knownKVCache
	knownPrefixHits
	knownPrefixQueries
	knownPrefixHitRate
	knownAll2 = knownUtilisation | knownConcurrency | knownRunning | knownWaiting | knownKVCache
	knownAll3 = knownAll2 | knownPrefixHits | knownPrefixQueries | knownPrefixHitRate
)

// loadValues are a load's quantities in the order of their known bits.
func loadValues(l *Load) [8]*Value {
	return [...]*Value{&l.Utilisation, &l.Concurrency, &l.Running, &l.Waiting, &l.KVCacheUsage,
		&l.PrefixCacheHits, &l.PrefixCacheQueries, &l.PrefixCacheHitRate}
}

var loadFields = [8]string{"load.utilisation", "load.concurrency", "load.running", "load.waiting", "load.kv_cache_usage",
	"load.prefix_cache_hits", "load.prefix_cache_queries", "load.prefix_cache_hit_rate"}

// loadQuantities is how many of loadValues version v encodes.
func loadQuantities(v Version) int {
	if v >= Version3 {
		return 8
	}
	return 5
}

func appendLoad(b []byte, l *Load, v Version) []byte {
	if v == Version1 {
		b = appendF64(b, l.Utilisation.Or(0))
		b = appendF64(b, l.Concurrency.Or(0))
		b = binary.AppendVarint(b, int64(math.Round(l.Running.Or(0))))
		b = binary.AppendVarint(b, int64(math.Round(l.Waiting.Or(0))))
		b = appendF64(b, l.KVCacheUsage.Or(0))
		return binary.AppendVarint(b, unixNano(l.SampledAt))
	}
	all := loadValues(l)
	vals := all[:loadQuantities(v)]
	var mask byte
	for i, x := range vals {
		if x.ok {
			mask |= 1 << i
		}
	}
	b = append(b, mask, byte(l.Readiness))
	for _, x := range vals {
		if x.ok {
			b = appendF64(b, x.v)
		}
	}
	b = binary.AppendVarint(b, unixNano(l.SampledAt))
	if v >= Version3 {
		b = appendStr(b, l.LoRA.enc)
	}
	return b
}

func (d *decoder) load(l *Load) {
	if d.v == Version1 {
		l.Utilisation = d.known("load.utilisation")
		l.Concurrency = d.known("load.concurrency")
		l.Running = zeroUnknown(float64(d.int("load.running")))
		l.Waiting = zeroUnknown(float64(d.int("load.waiting")))
		l.KVCacheUsage = zeroUnknown(d.f64("load.kv_cache_usage"))
		l.Readiness = ReadinessUnknown
		l.SampledAt = fromUnixNano(d.varint("load.sampled_at"))
		l.PrefixCacheHits, l.PrefixCacheQueries, l.PrefixCacheHitRate, l.LoRA = Unknown, Unknown, Unknown, Adapters{}
		return
	}
	d.loadFrom23(l)
	l.LoRA = Adapters{}
	if d.v >= Version3 {
		raw := d.raw("load.lora", maxAdaptersBytes)
		if d.err == nil {
			a, err := decodeAdapters(raw)
			if err != nil && d.err == nil {
				d.err = err
			}
			l.LoRA = a
		}
	}
}

// maxAdaptersBytes bounds an encoded Adapters: two counts and MaxAdapters
// names with their lengths.
const maxAdaptersBytes = 2*2 + MaxAdapters*(2+MaxAdapterNameLen)

// loadFrom23 decodes the part of a version 2 or 3 load up to its sample
// time: known bits, readiness, the known quantities.
func (d *decoder) loadFrom23(l *Load) {
	mask := d.byte("load.known")
	known := byte(knownAll2)
	if d.v >= Version3 {
		known = knownAll3
	}
	if mask&^known != 0 {
		d.fail(ReasonInvalid, "load.known", "unknown bits 0x%02x", mask&^known)
	}
	l.Readiness = Readiness(d.byte("load.readiness"))
	for i, x := range loadValues(l) {
		if mask&(1<<i) != 0 {
			*x = d.known(loadFields[i])
		} else {
			*x = Unknown
		}
	}
	l.SampledAt = fromUnixNano(d.varint("load.sampled_at"))
}

// known reads a float as a known value; a NaN or infinity stays known, so
// validation rejects it naming the field.
func (d *decoder) known(field string) Value {
	return Value{v: d.f64(field), ok: true}
}

// zeroUnknown maps a Version1 quantity where 0 stood for "not reported" to
// a Value.
func zeroUnknown(f float64) Value {
	if f == 0 {
		return Unknown
	}
	return Value{v: f, ok: true}
}

func appendDesc(b []byte, id, app string, addrs map[string]string, engine string, acc Accelerator, capacity float64, st State, l *Load, v Version) []byte {
	b = appendStr(b, id)
	b = appendStr(b, app)
	b = AppendAddresses(b, addrs)
	b = appendStr(b, engine)
	b = appendStr(b, acc.Model)
	b = binary.AppendVarint(b, int64(acc.Count))
	b = appendF64(b, capacity)
	b = append(b, byte(st))
	return appendLoad(b, l, v)
}

func (d *decoder) desc(id, app *string, addrs *map[string]string, engine *string, acc *Accelerator, capacity *float64, st *State, l *Load) {
	*id = d.str("id", MaxIDLen)
	*app = d.istr("app", MaxIDLen)
	n := d.count("addresses", MaxAddresses)
	if d.err == nil {
		m := make(map[string]string, n)
		for i := 0; i < n && d.err == nil; i++ {
			k := d.istr("addresses", MaxNameLen)
			if _, dup := m[k]; dup && d.err == nil {
				d.fail(ReasonInvalid, "addresses."+k, "duplicate protocol")
			}
			m[k] = d.str("addresses."+k, MaxIDLen+6)
		}
		*addrs = m
	}
	*engine = d.istr("engine", MaxNameLen)
	acc.Model = d.istr("accelerator.model", MaxNameLen)
	acc.Count = d.int("accelerator.count")
	*capacity = d.f64("capacity")
	*st = State(d.byte("state"))
	d.load(l)
}

// AppendAddresses appends the canonical encoding of an address map: the
// count, then the (protocol, host:port) pairs sorted by protocol, so equal
// maps always encode to equal bytes (Resource compares them to recognise a
// heartbeat that changes nothing).
func AppendAddresses(b []byte, addrs map[string]string) []byte {
	b = binary.AppendUvarint(b, uint64(len(addrs)))
	if len(addrs) == 1 {
		for k, v := range addrs {
			b = appendStr(b, k)
			b = appendStr(b, v)
		}
		return b
	}
	var arr [MaxAddresses]string
	keys := arr[:0]
	for k := range addrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = appendStr(b, k)
		b = appendStr(b, addrs[k])
	}
	return b
}

// HeartbeatView is a heartbeat decoded without allocating, for Resource's
// fast path: its byte-slice fields alias the frame and are valid only until
// the next read. Strings are not validated; numbers are decoded as they are.
type HeartbeatView struct {
	ID, App, Engine, Model []byte
	// Addresses is the canonical encoding of the address map (see
	// AppendAddresses).
	Addresses []byte
	Count     int
	Capacity  float64
	State     State
	// Load is the heartbeat's load but for its LoRA adapters, which stay
	// unknown in the view: Adapters holds their encoding (empty when
	// unknown), compared with Load.LoRA by [Adapters.Is].
	Load        Load
	Adapters    []byte
	Incarnation uint64
	Seq         uint64
}

// DecodeHeartbeatView decodes a heartbeat payload of version ver into v
// without allocating. It only checks the structure; use DecodeHeartbeat
// (which validates) whenever the view is not simply compared with known
// values.
func DecodeHeartbeatView(p []byte, v *HeartbeatView, ver Version) error {
	d := decoder{b: p, v: ver}
	v.ID = d.raw("id", MaxIDLen)
	v.App = d.raw("app", MaxIDLen)
	start := d.b
	n := d.count("addresses", MaxAddresses)
	for i := 0; i < n && d.err == nil; i++ {
		d.raw("addresses", MaxNameLen)
		d.raw("addresses", MaxIDLen+6)
	}
	if d.err == nil {
		v.Addresses = start[:len(start)-len(d.b)]
	}
	v.Engine = d.raw("engine", MaxNameLen)
	v.Model = d.raw("accelerator.model", MaxNameLen)
	v.Count = d.int("accelerator.count")
	v.Capacity = d.f64("capacity")
	v.State = State(d.byte("state"))
	if ver == Version1 {
		d.load(&v.Load)
	} else {
		d.loadFrom23(&v.Load)
	}
	v.Load.LoRA = Adapters{}
	v.Adapters = nil
	if ver >= Version3 {
		v.Adapters = d.raw("load.lora", maxAdaptersBytes)
	}
	v.Incarnation = d.uvarint("incarnation")
	v.Seq = d.uvarint("seq")
	return d.finish()
}

// Validate checks a load's numbers (the part of Heartbeat.Validate a heartbeat
// whose identity is already known still needs).
func (l *Load) Validate() error { return l.validate() }

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendF64(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(b, math.Float64bits(f))
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// decoder reads binary fields with bounds checks. After the first error every
// read returns a zero value and the error sticks.
type decoder struct {
	b   []byte
	err error
	in  *Interner
	v   Version // of node and load encodings
}

func (d *decoder) fail(r Reason, field, format string, args ...any) {
	if d.err == nil {
		d.err = inputErr(r, field, format, args...)
	}
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(ReasonMalformed, "", "%d trailing bytes", len(d.b))
	}
	return d.err
}

func (d *decoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail(ReasonMalformed, field, "truncated")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(ReasonMalformed, field, "bad or truncated varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(ReasonMalformed, field, "bad or truncated varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int decodes a signed varint that must fit in 32 bits; bigger values are
// reported as invalid so validation names the field.
func (d *decoder) int(field string) int {
	v := d.varint(field)
	if v > math.MaxInt32 || v < math.MinInt32 {
		d.fail(ReasonInvalid, field, "%d out of range", v)
		return 0
	}
	return int(v)
}

func (d *decoder) count(field string, max int) int {
	v := d.uvarint(field)
	if v > uint64(max) {
		d.fail(ReasonOversized, field, "%d entries, at most %d", v, max)
		return 0
	}
	return int(v)
}

func (d *decoder) f64(field string) float64 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 8 {
		d.fail(ReasonMalformed, field, "truncated")
		return 0
	}
	v := math.Float64frombits(binary.BigEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *decoder) raw(field string, max int) []byte {
	n := d.uvarint(field)
	if d.err != nil {
		return nil
	}
	if n > uint64(max) {
		d.fail(ReasonOversized, field, "%d bytes, at most %d", n, max)
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(ReasonMalformed, field, "truncated string")
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) str(field string, max int) string {
	b := d.raw(field, max)
	if len(b) == 0 {
		return ""
	}
	return string(b)
}

// istr is str through the interner, for low-cardinality fields.
func (d *decoder) istr(field string, max int) string {
	b := d.raw(field, max)
	if len(b) == 0 {
		return ""
	}
	if d.in == nil {
		return string(b)
	}
	return d.in.Intern(b)
}

// Interner deduplicates low-cardinality strings (app names, engines, card
// models, protocol names) decoded from the wire, so a Resource instance
// holding a million nodes keeps one copy of each. Not safe for concurrent
// use; give each decoding goroutine its own. It holds at most MaxInterned
// strings and then stops adding.
type Interner struct{ m map[string]string }

// MaxInterned bounds an Interner, so hostile input cannot grow it forever.
const MaxInterned = 4096

// Intern returns a string equal to b, shared with earlier calls.
func (in *Interner) Intern(b []byte) string {
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if in.m == nil {
		in.m = make(map[string]string)
	}
	if len(in.m) < MaxInterned {
		in.m[s] = s
	}
	return s
}
