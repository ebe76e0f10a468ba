package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/balancer"
)

// httpHeader adapts http.Header to headerPeeker.
type httpHeader http.Header

func (h httpHeader) Peek(key string) []byte {
	v := http.Header(h).Get(key)
	if v == "" {
		return nil
	}
	return []byte(v)
}

// serveH2 serves an HTTP/2 stream: gRPC calls are proxied over h2c to the
// node's gRPC address with trailers intact; other requests take the same
// route and node pools as HTTP/1.1.
func (g *Gateway) serveH2(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	st := g.state.Load()
	grpc := strings.HasPrefix(req.Header.Get("Content-Type"), "application/grpc")
	if req.Header.Get(hdrRequestID) == "" {
		req.Header.Set(hdrRequestID, g.newRequestID())
	}
	if g.inflight.Add(1) > int64(st.cfg.Limits.MaxConcurrent) {
		g.inflight.Add(-1)
		g.failH2(w, req, st, nil, ErrOverloaded, grpc, start)
		return
	}
	defer g.inflight.Add(-1)
	if g.tracer != nil {
		span := g.startSpanH2(req)
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		w = sw
		defer func() { endSpan(span, sw.status) }()
	}
	if grpc {
		g.serveGRPC(w, req, st, start)
		return
	}
	g.serveH2HTTP(w, req, st, start)
}

func (g *Gateway) newRequestID() string {
	var b [len(g.idPrefix) + 1 + 16]byte
	copy(b[:], g.idPrefix[:])
	b[len(g.idPrefix)] = '-'
	n := g.reqSeq.Add(1)
	const digits = "0123456789abcdef"
	for i := len(b) - 1; i > len(g.idPrefix); i-- {
		b[i] = digits[n&15]
		n >>= 4
	}
	return string(b[:])
}

// failH2 answers err: a gRPC status (Trailers-Only) for gRPC calls, the
// OpenAI error shape otherwise.
func (g *Gateway) failH2(w http.ResponseWriter, req *http.Request, st *state, r *route, err error, grpc bool, start time.Time) {
	c := classify(err)
	rid := req.Header.Get(hdrRequestID)
	h := w.Header()
	h.Set(hdrRequestID, rid)
	if c.retry {
		h.Set(hdrRetryAfter, string(st.retryAfter))
	}
	if grpc {
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(int(c.grpc)))
		h.Set("Grpc-Message", url.PathEscape(clientMessage(err)))
		w.WriteHeader(http.StatusOK)
	} else {
		h.Set("Content-Type", ctJSON)
		w.WriteHeader(c.status)
		_, _ = w.Write(errorBody(err, c, []byte(rid)))
	}
	if r != nil {
		r.stats.observe(c.status, time.Since(start))
	} else {
		g.unrouted.observe(c.status, time.Since(start))
	}
}

// grpcModelMethods carry the model name in field 1 of their request.
const grpcModelMethods = "/inference.GRPCInferenceService/Model"

func (g *Gateway) serveGRPC(w http.ResponseWriter, req *http.Request, st *state, start time.Time) {
	var prefix, model []byte
	hasModel := false
	if strings.HasPrefix(req.URL.Path, grpcModelMethods) {
		var err error
		prefix, model, hasModel, err = readFirstGRPCMessage(req.Body, st.cfg.Limits.MaxBodyBytes)
		if err != nil {
			g.failH2(w, req, st, nil, err, true, start)
			return
		}
	}
	r, err := st.pick([]byte(req.Host), []byte(req.URL.Path), httpHeader(req.Header), model, hasModel)
	if err != nil {
		g.failH2(w, req, st, nil, err, true, start)
		return
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	defer cancel(nil)
	if r.cfg.Timeouts.Total > 0 {
		var tcancel context.CancelFunc
		ctx, tcancel = context.WithTimeoutCause(ctx, r.cfg.Timeouts.Total, ErrTimeout)
		defer tcancel()
	}
	// First byte: the node's response headers must come within FirstByte.
	var ttfb *time.Timer
	if d := r.cfg.Timeouts.FirstByte; d > 0 {
		ttfb = time.AfterFunc(d, func() { cancel(ErrTimeout) })
	}
	shared := &replayState{rest: req.Body}
	resp, ep, err := g.exchangeH2(ctx, r, req, prefix, shared)
	if ttfb != nil {
		ttfb.Stop()
	}
	if err != nil {
		switch {
		case errors.Is(context.Cause(ctx), ErrTimeout):
			err = errors.Join(ErrTimeout, err)
		case req.Context().Err() != nil:
			err = errors.Join(ErrClientCancelled, err)
		}
		g.failH2(w, req, st, r, err, true, start)
		return
	}
	defer settle(ep, resp.StatusCode)
	defer resp.Body.Close()
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	h.Set(hdrRequestID, req.Header.Get(hdrRequestID))
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	body := io.Reader(resp.Body)
	if d := r.cfg.Timeouts.Idle; d > 0 {
		// Idle: a gap longer than Idle between two pieces of the body
		// cancels the call.
		idle := time.AfterFunc(d, func() { cancel(ErrTimeout) })
		defer idle.Stop()
		body = &idleReader{r: resp.Body, t: idle, d: d}
	}
	if err := copyFlush(w, rc, body); err != nil {
		ep.Value().(*upstream).report(false)
		r.stats.observe(http.StatusBadGateway, time.Since(start))
		// Reset the stream so the client sees the failure.
		panic(http.ErrAbortHandler)
	}
	for k, vv := range resp.Trailer {
		h[http.TrailerPrefix+k] = vv
	}
	r.stats.observe(resp.StatusCode, time.Since(start))
}

// exchangeH2 is exchange for gRPC over h2c: retries on another node only
// while no byte of the client's body beyond the first message was read.
func (g *Gateway) exchangeH2(ctx context.Context, r *route, req *http.Request, prefix []byte, shared *replayState) (*http.Response, *balancer.Endpoint, error) {
	r.depositRetry()
	tbl := r.table.Load()
	var key uint64
	if r.hashed {
		key = xxhash.Sum64String(req.Header.Get(r.cfg.HashHeader))
	}
	// avoid is allocated only when a request skips a node: the common
	// path stays allocation-free.
	var avoid []*balancer.Endpoint
	retries := 0
	saturated := false
	var lastErr error
	for {
		ep, err := tbl.PickAvoiding(key, avoid)
		if err != nil {
			switch {
			case lastErr != nil:
				return nil, nil, lastErr
			case saturated:
				return nil, nil, ErrRouteSaturated
			}
			return nil, nil, err
		}
		if ep.InFlight() >= int64(r.lim.MaxPerNode) {
			saturated = true
			if len(avoid) == maxAvoid {
				return nil, nil, ErrRouteSaturated
			}
			avoid = append(avoid, ep)
			continue
		}
		up := ep.Value().(*upstream)
		body := &replayBody{pre: prefix, s: shared}
		out, err := http.NewRequestWithContext(ctx, req.Method, "http://"+up.grpcAddr+req.URL.RequestURI(), body)
		if err != nil {
			return nil, nil, errors.Join(ErrBadRequest, err)
		}
		out.Header = make(http.Header, len(req.Header))
		for k, vv := range req.Header {
			out.Header[k] = vv
		}
		out.Host = req.Host
		out.ContentLength = -1
		ep.Acquire()
		resp, err := up.h2t().RoundTrip(out)
		if err == nil {
			up.report(resp.StatusCode < 500)
			return resp, ep, nil
		}
		ep.Release()
		touched := body.abandon()
		up.report(false)
		ue := &UpstreamError{Node: up.id, Err: err, Retryable: !touched}
		if touched || isTimeout(err) || ctx.Err() != nil || len(avoid) == maxAvoid || retries >= r.attempts || !r.takeRetry() {
			return nil, nil, ue
		}
		lastErr = ue
		retries++
		r.stats.retries.Add(1)
		avoid = append(avoid, ep)
	}
}

// idleReader re-arms an idle timer after every read.
type idleReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	ir.t.Reset(ir.d)
	return n, err
}

// readFirstGRPCMessage reads the first length-prefixed message of a gRPC
// request body (when the client sends one) and reads its field 1.
func readFirstGRPCMessage(body io.Reader, limit int) (prefix, model []byte, found bool, err error) {
	buf := make([]byte, 0, 512)
	need := 5
	for {
		if need > limit {
			return nil, nil, false, ErrTooLarge
		}
		if cap(buf) < need {
			nb := make([]byte, len(buf), need)
			copy(nb, buf)
			buf = nb
		}
		k, rerr := io.ReadAtLeast(body, buf[len(buf):need], need-len(buf))
		buf = buf[:len(buf)+k]
		if rerr != nil {
			if len(buf) == 0 && (rerr == io.EOF) {
				return nil, nil, false, nil // no message at all
			}
			return nil, nil, false, errors.Join(ErrMalformedGRPC, rerr)
		}
		model, found, need, err = grpcModel(buf)
		if err != nil {
			return nil, nil, false, err
		}
		if need == 0 {
			return buf, model, found, nil
		}
	}
}

// replayState is shared by the attempts of one gRPC call: the client body
// after the first message, and whether any attempt read from it.
type replayState struct {
	mu      sync.Mutex
	rest    io.Reader
	touched bool
}

// replayBody is one attempt's request body: the buffered first message,
// then the rest of the client's stream. Once abandoned it reads nothing
// more, so a retry can never race a failed attempt for client bytes.
type replayBody struct {
	pre       []byte
	s         *replayState
	abandoned bool // guarded by s.mu
}

func (b *replayBody) Read(p []byte) (int, error) {
	if len(b.pre) > 0 {
		n := copy(p, b.pre)
		b.pre = b.pre[n:]
		return n, nil
	}
	b.s.mu.Lock()
	if b.abandoned {
		b.s.mu.Unlock()
		return 0, errAbandoned
	}
	b.s.touched = true
	b.s.mu.Unlock()
	return b.s.rest.Read(p)
}

func (b *replayBody) Close() error { return nil }

// abandon stops the attempt's body and reports whether it read client
// bytes beyond the first message.
func (b *replayBody) abandon() bool {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	b.abandoned = true
	return b.s.touched
}

var errAbandoned = errors.New("gateway: request attempt abandoned")

var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyFlush copies src to w, flushing after every read so streamed
// messages reach the client as they are produced.
func copyFlush(w io.Writer, rc *http.ResponseController, src io.Reader) error {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil // the client went away; nothing to report upstream
			}
			_ = rc.Flush()
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// serveH2HTTP serves a non-gRPC HTTP/2 request through the route's
// HTTP/1.1 node pools.
func (g *Gateway) serveH2HTTP(w http.ResponseWriter, req *http.Request, st *state, start time.Time) {
	limit := st.cfg.Limits.MaxBodyBytes
	body, err := io.ReadAll(io.LimitReader(req.Body, int64(limit)+1))
	if err != nil {
		g.failH2(w, req, st, nil, errors.Join(ErrBadRequest, err), false, start)
		return
	}
	if len(body) > limit {
		g.failH2(w, req, st, nil, ErrTooLarge, false, start)
		return
	}
	path := []byte(req.URL.Path)
	if len(path) > maxPathBytes {
		g.failH2(w, req, st, nil, ErrURITooLong, false, start)
		return
	}
	if req.URL.Path == pathModels && req.Method == http.MethodGet {
		w.Header().Set("Content-Type", ctJSON)
		_, _ = w.Write(st.modelsJSON)
		return
	}
	var f jsonFields
	model, hasModel := kserveModel(path)
	if hasModel && !utf8Valid(model) {
		g.failH2(w, req, st, nil, ErrModelNotUTF8, false, start)
		return
	}
	if !hasModel && st.needBody && req.Method == http.MethodPost && isJSONRequest([]byte(req.Header.Get("Content-Type")), body) {
		if f, _, err = scanJSON(body, nil); err != nil {
			g.failH2(w, req, st, nil, err, false, start)
			return
		}
		model, hasModel = f.model, f.hasModel
	}
	r, err := st.pick([]byte(req.Host), path, httpHeader(req.Header), model, hasModel)
	if err != nil {
		g.failH2(w, req, st, nil, err, false, start)
		return
	}
	stream := r.wantsStream(f.stream, []byte(req.Header.Get("Accept")), path)
	freq := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(freq)
	freq.Header.SetMethod(req.Method)
	freq.SetRequestURI(req.URL.RequestURI())
	freq.Header.SetHost(req.Host)
	for k, vv := range req.Header {
		if isHop(k) {
			continue
		}
		for _, v := range vv {
			freq.Header.Add(k, v)
		}
	}
	freq.SetBodyRaw(body)
	var x extras
	if r.splitter != nil || r.mirror != nil {
		// Split and shadow read a fasthttp request context: give them
		// one over a copy of this request.
		rc := &fasthttp.RequestCtx{}
		rc.Init(freq, remoteTCPAddr(req.RemoteAddr), nil)
		r, x = g.resolveVariant(r, rc)
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	var deadline time.Time
	if r.cfg.Timeouts.Total > 0 {
		deadline = start.Add(r.cfg.Timeouts.Total)
	}
	var key uint64
	if r.hashed {
		key = xxhash.Sum64String(req.Header.Get(r.cfg.HashHeader))
	}
	ep, err := g.exchange(r, r.table.Load(), key, freq, resp, stream, deadline, true)
	if err != nil {
		g.failH2(w, req, st, r, err, false, start)
		x.finish(classify(err).status, nil, nil, time.Since(start), true)
		return
	}
	defer settle(ep, resp.StatusCode())
	h := w.Header()
	for k, v := range resp.Header.All() {
		ks := string(k)
		if isHop(ks) || strings.EqualFold(ks, "Content-Length") && stream {
			continue
		}
		h.Add(ks, string(v))
	}
	h.Set(hdrRequestID, req.Header.Get(hdrRequestID))
	if x.split != nil {
		h.Set(string(x.split.VariantHeader()), string(x.split.Variant(x.variant).NameBytes()))
	}
	w.WriteHeader(resp.StatusCode())
	if !stream {
		_, _ = w.Write(resp.Body())
		d := time.Since(start)
		r.stats.observe(resp.StatusCode(), d)
		x.finish(resp.StatusCode(), resp, nil, d, false)
		return
	}
	defer resp.CloseBodyStream()
	var src io.Reader = resp.BodyStream()
	if x.shadow != nil {
		src = io.TeeReader(src, x.shadow) // the mirror compares the streamed body
	}
	if err := copyFlush(w, http.NewResponseController(w), src); err != nil {
		ep.Value().(*upstream).report(false)
		r.stats.observe(http.StatusBadGateway, time.Since(start))
		x.finish(http.StatusBadGateway, nil, resp.Header.ContentType(), time.Since(start), true)
		panic(http.ErrAbortHandler)
	}
	d := time.Since(start)
	x.finish(resp.StatusCode(), nil, resp.Header.ContentType(), d, false)
	r.stats.observe(resp.StatusCode(), d)
}

// statusWriter remembers the status for the trace span.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// remoteTCPAddr parses an http.Request RemoteAddr for split keys.
func remoteTCPAddr(s string) net.Addr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return &net.TCPAddr{}
	}
	return net.TCPAddrFromAddrPort(ap)
}

func isHop(k string) bool {
	switch strings.ToLower(k) {
	case "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade":
		return true
	}
	return false
}

var _ = bytes.MinRead
