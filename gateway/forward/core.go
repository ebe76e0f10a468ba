package forward

import (
	"context"

	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/gateway/flow"
	"github.com/switchyard-dev/switchyard/gateway/openai"
	"github.com/switchyard-dev/switchyard/gateway/prefix"

	"github.com/switchyard-dev/switchyard/gateway/route"
	"github.com/switchyard-dev/switchyard/gateway/telemetry"
	"github.com/switchyard-dev/switchyard/gateway/tenant"
)

// maxPathBytes bounds the request path; longer paths get 414.
const maxPathBytes = 8 << 10

// Core is the forwarding core: every frontend hands it requests (Forward)
// and writes back the answer it finds in the Exchange. It owns the request
// pipeline, once for every protocol:
//
//	admission → match → split/shadow → pick → exchange with retries → relay → settle → telemetry
//
// Safe for concurrent use.
type Core struct {
	// Immutable after New.
	idPrefix [12]byte // random hex prefix of generated request ids
	via      []byte   // "1.1 switchyard-<idPrefix>": this gateway in Via
	tracing  *telemetry.Tracing
	unrouted *telemetry.RouteStats // answers given before a route was chosen
	log      *slog.Logger
	pool     sync.Pool // *Exchange
	reg      registry  // every Exchange made, for the watchdog

	// Atomic.
	watching   atomic.Bool // the watchdog runs (Run)
	set        atomic.Pointer[route.Set]
	tenants    atomic.Pointer[tenant.Store] // API keys; nil: keys off
	inflight   atomic.Int64
	buffered   atomic.Int64 // request body bytes held in memory (Limits.MaxBufferedBytes)
	reqSeq     atomic.Uint64
	draining   atomic.Bool
	keepAlives atomic.Uint64 // SSE keep-alive comments sent
}

// New returns a core answering from no routes until SetRoutes. tracing
// may be nil (tracing off).
func New(metrics *telemetry.Metrics, tracing *telemetry.Tracing, log *slog.Logger) *Core {
	c := &Core{tracing: tracing, unrouted: metrics.Route(""), log: log}
	var rb [6]byte
	_, _ = rand.Read(rb[:])
	hex.Encode(c.idPrefix[:], rb[:])
	c.via = append([]byte("1.1 switchyard-"), c.idPrefix[:]...)
	c.pool.New = func() any {
		x := &Exchange{core: c}
		c.reg.add(x)
		return x
	}
	return c
}

// SetRoutes makes st the routing state of new requests; requests under
// way keep the one they started with.
func (c *Core) SetRoutes(st *route.Set) { c.set.Store(st) }

// SetTenants turns API keys on with ks (nil turns them off).
func (c *Core) SetTenants(ks *tenant.Store) { c.tenants.Store(ks) }

// Tenants is the API-key store in force, nil when keys are off.
func (c *Core) Tenants() *tenant.Store { return c.tenants.Load() }

// Routes is the routing state in force.
func (c *Core) Routes() *route.Set { return c.set.Load() }

// InFlight is the requests between Forward and Finish.
func (c *Core) InFlight() int64 { return c.inflight.Load() }

// Buffered is the request body bytes the gateway holds now.
func (c *Core) Buffered() int64 { return c.buffered.Load() }

// KeepAlivesSent is the SSE keep-alive comments sent to clients.
func (c *Core) KeepAlivesSent() uint64 { return c.keepAlives.Load() }

// Drain marks the gateway as shutting down (readiness fails; answers ask
// HTTP/1.1 clients to close their connection).
func (c *Core) Drain() { c.draining.Store(true) }

// Draining reports whether Drain was called.
func (c *Core) Draining() bool { return c.draining.Load() }

// Acquire returns an Exchange to fill (Exchange.Req) and pass to Forward.
// Its Finish gives it back.
func (c *Core) Acquire() *Exchange {
	x := c.pool.Get().(*Exchange)
	x.set = c.set.Load()
	return x
}

// Forward runs the pipeline for x.Req up to the answer's head: afterwards
// x holds either a local answer (an error, or the gateway's own list of
// models) or the node's response, buffered or to be streamed with Read.
// The frontend writes it back and then calls x.Finish exactly once.
func (c *Core) Forward(x *Exchange) {
	r := &x.Req
	x.start = r.startTime()
	x.ensureID()
	st := x.set
	if c.inflight.Add(1) > int64(st.Config().Limits.MaxConcurrent) {
		x.fail(ErrOverloaded)
		return
	}
	x.counted = true
	if c.tracing != nil {
		x.span = c.tracing.Start(traceCarrier{r}, string(r.Method), string(r.Path))
	}
	switch {
	case r.Err != nil:
		x.fail(r.Err)
		return
	case len(r.Path) > maxPathBytes:
		x.fail(ErrURITooLong)
		return
	case bytes.Contains(r.Header(keyVia), c.via[4:]):
		// This gateway already forwarded the request: a node address
		// that is the gateway itself, or a loop through several.
		x.fail(ErrLoop)
		return
	}
	// 1. Normalise: routing, the allowlist and the node see one path.
	norm, err := route.NormalizePath(r.Path, x.pathBuf[:0])
	if err != nil {
		x.fail(err)
		return
	}
	if &norm[0] != &r.Path[0] || len(norm) != len(r.Path) {
		x.pathBuf, r.Path, x.pathChanged = norm, norm, true
	}
	switch {
	case r.Proto != GRPC && string(r.Path) == "/v1/models" && string(r.Method) == "GET":
		x.answer(200, ctJSON, x.modelsJSON())
		return
	}
	// 2. Identify: the API key names the tenant; the key itself never
	// goes further than here.
	if ks := c.tenants.Load(); ks != nil {
		t, ok := ks.LookupHeaders(r.Header(keyAuthorization), r.Header(keyAPIKey))
		if !ok {
			x.fail(ErrInvalidAPIKey)
			return
		}
		x.tenant = t
	}
	// 3. Match.
	rt, stream, err := x.match()
	if err != nil {
		x.fail(x.tenantView(err))
		return
	}
	// Only the route's inference APIs reach its nodes.
	if !rt.Allows(r.Path) {
		x.route = rt
		x.fail(ErrPathNotAllowed)
		return
	}
	// 4. Admit the tenant: its models, requests per minute (and tokens
	// spent), requests in flight.
	if t := x.tenant; t != nil {
		x.route = rt
		if !t.Allows(x.model) {
			// The same 404 as for a model nobody serves, listing the
			// tenant's models: the two cannot be told apart.
			x.fail(x.tenantView(&route.UnknownError{Model: string(x.model), Path: string(r.Path), Available: x.set.Models()}))
			return
		}
		if ok, wait := t.Admit(x.start); !ok {
			x.retryAfterBuf = strconv.AppendInt(x.retryAfterBuf[:0], int64(max(1, (wait+time.Second-1)/time.Second)), 10)
			x.fail(ErrRateLimited)
			return
		}
		if !t.Acquire() {
			x.fail(ErrRateLimited)
			return
		}
		x.holds = true
	}
	// 5. Split and shadow; the OpenAI body as the serving route's nodes
	// want it.
	served := x.extras(rt)
	x.endpoint = openai.EndpointOf(r.Path)
	x.ms = seriesOf(served, x.model, served != rt)
	x.rewriteBody(served)
	rt = served
	x.route = rt
	x.stream = stream
	x.forwarding()
	// 6. Flow control (a slot of the route, or a wait in its fair queue),
	// then the exchange with retries; what the route cannot serve may go
	// to its fallback, once.
	err = x.enterQueue(rt)
	if err == nil {
		x.prepareAffinity(rt)
		err = c.send(x, rt)
	}
	if fb, why := x.fallbackFor(rt, err); fb != nil {
		rt.Stats().Fallback(int(why))
		x.fellBack, x.fallbackWhy = true, why
		err = c.serveFallback(x, fb)
	}
	if err != nil {
		if x.w.gone.Load() {
			err = errors.Join(ErrClientCancelled, err) // the watchdog aborted it
		}
		x.fail(err)
	}
}

// fallbackFor returns rt's fallback route, and why, when the outcome of
// serving the request on rt (err, or the node's status) is one it takes:
// a 5xx or a failure, a 429, a saturated route. Only requests whose whole
// body the gateway holds fall back, and only while nothing was written to
// the client (Forward has not returned).
func (x *Exchange) fallbackFor(rt *route.Route, err error) (*route.Route, route.FallbackReason) {
	r := &x.Req
	if !rt.HasFallback() || r.Proto == GRPC || r.BodyStream != nil || x.fellBack || clientGone(r.Ctx) || x.w.gone.Load() {
		return nil, 0
	}
	why, ok := fallbackReason(err, x.status)
	if !ok {
		return nil, 0
	}
	return rt.Fallback(why), why
}

// fallbackReason classifies the outcome of serving a request on a route
// (err, or the node's status) as a reason to fall back, if it is one.
func fallbackReason(err error, status int) (route.FallbackReason, bool) {
	var ue *UpstreamError
	switch {
	case err == nil && status == fasthttp.StatusTooManyRequests:
		return route.Fallback429, true
	case err == nil && status >= 500:
		return route.Fallback5xx, true
	case err == nil:
		return 0, false
	case errors.Is(err, ErrRouteSaturated) || errors.Is(err, ErrQueued):
		return route.FallbackSaturated, true
	case errors.As(err, &ue) && ue.Status == fasthttp.StatusTooManyRequests:
		return route.Fallback429, true
	case errors.Is(err, ErrClientCancelled) || errors.Is(err, ErrBadRequest):
		return 0, false
	}
	return route.Fallback5xx, true // failures, no node: what a 5xx answer would have been
}

// serveFallback drops what rt answered and serves the request on fb: its
// queue, its nodes, its upstream model.
func (c *Core) serveFallback(x *Exchange, fb *route.Route) error {
	x.dropAnswer()
	x.releaseQueue()
	x.route = fb
	x.ms = seriesOf(fb, x.model, true)
	x.rewriteBody(fb)
	if err := x.enterQueue(fb); err != nil {
		return err
	}
	x.prepareAffinity(fb)
	return c.send(x, fb)
}

// ensureID keeps the client's X-Request-Id or generates one; an HTTP/1.1
// request carries a generated one upstream in place.
func (x *Exchange) ensureID() {
	r := &x.Req
	if id := r.Header(keyRequestID); len(id) > 0 {
		x.id = id
		return
	}
	c := x.core
	b := x.idBuf[:]
	copy(b, c.idPrefix[:])
	b[len(c.idPrefix)] = '-'
	n := c.reqSeq.Add(1)
	const digits = "0123456789abcdef"
	for i := len(b) - 1; i > len(c.idPrefix); i-- {
		b[i] = digits[n&15]
		n >>= 4
	}
	x.id = b
	x.idGenerated = true
	if r.h1 != nil {
		r.h1.Header.SetCanonical(keyRequestID, b)
	}
}

// startTime is when the frontend received the request, or now.
func (r *Request) startTime() time.Time {
	if !r.Start.IsZero() {
		return r.Start
	}
	return time.Now()
}

// Canonical header names.
var (
	keyRequestID     = []byte("X-Request-Id")
	keyAccept        = []byte("Accept")
	keyContentType   = []byte("Content-Type")
	keyForwardedFor  = []byte("X-Forwarded-For")
	keyVia           = []byte("Via")
	keyAuthorization = []byte("Authorization")
	keyAPIKey        = []byte("X-Api-Key")
	keyTenant        = []byte("X-Switchyard-Tenant")
)

const ctJSON = "application/json"

// modelsJSON answers GET /v1/models: every routed model, or with API keys
// those the tenant may use (the others do not exist for it).
func (x *Exchange) modelsJSON() []byte {
	st := x.set
	ks := x.core.tenants.Load()
	if ks == nil {
		return st.ModelsJSON()
	}
	t, ok := ks.LookupHeaders(x.Req.Header(keyAuthorization), x.Req.Header(keyAPIKey))
	if !ok {
		x.fail(ErrInvalidAPIKey)
		return x.local
	}
	var allowed []string
	for _, m := range st.Models() {
		if t.Allows([]byte(m)) {
			allowed = append(allowed, m)
		}
	}
	return route.ModelsJSON(allowed)
}

// tenantView hides from a tenant the models it may not use: a 404 lists
// only the tenant's models.
func (x *Exchange) tenantView(err error) error {
	var ue *route.UnknownError
	if x.tenant == nil || !errors.As(err, &ue) {
		return err
	}
	var allowed []string
	for _, m := range ue.Available {
		if x.tenant.Allows([]byte(m)) {
			allowed = append(allowed, m)
		}
	}
	return &route.UnknownError{Model: ue.Model, Path: ue.Path, Available: allowed}
}

// keyPriority lets a client lower its own priority class (batch); with
// API keys the tenant's class is the highest it may ask for.
var keyPriority = []byte("X-Switchyard-Priority")

// enterQueue takes a slot of rt for the request, waiting in the route's
// queue while every node is full: interactive before batch, fair between
// tenants, until the route's queue timeout for the request's class or the
// client's own sooner deadline (its context's, or the timeout it sends:
// Request.ClientTimeout). A malformed client timeout is a 400, whether or
// not the request would have waited.
func (x *Exchange) enterQueue(rt *route.Route) error {
	client, bounded, err := x.Req.ClientTimeout()
	if err != nil {
		return err
	}
	q := rt.Queue()
	if t := rt.Table(); t == nil || t.Ready() == 0 || q.Limit() == 0 {
		return nil // no node to wait for: the pick answers (503 at once)
	}
	fr := flow.Request{Class: flow.Interactive}
	if x.tenant != nil {
		fr.Tenant = x.tenant.Name()
		if x.tenant.Priority() == tenant.Batch {
			fr.Class = flow.Batch
		}
	}
	if string(x.Req.Header(keyPriority)) == "batch" {
		fr.Class = flow.Batch
	}
	ctx := x.Req.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	wait := rt.Config().Queue.TimeoutFor(fr.Class)
	if bounded && client < wait {
		wait = client
	}
	fr.Deadline = x.start.Add(wait)
	if dl, ok := ctx.Deadline(); ok && dl.Before(fr.Deadline) {
		fr.Deadline = dl
	}
	if err := q.Enter(ctx, fr); err != nil {
		if errors.Is(err, flow.ErrQueueFull) || errors.Is(err, flow.ErrQueueTimeout) {
			x.retryAfterBuf = strconv.AppendInt(x.retryAfterBuf[:0], int64(q.RetryAfter()/time.Second), 10)
			return errors.Join(ErrQueued, err)
		}
		return errors.Join(ErrClientCancelled, err)
	}
	x.queue, x.class = q, fr.Class
	return nil
}

// prepareAffinity reads what affinity needs from the request: its prompt's
// prefix points, its session, the LoRA adapter it names.
func (x *Exchange) prepareAffinity(rt *route.Route) {
	x.affReq = balancer.AffinityRequest{}
	if rt.Affinity() == nil {
		return
	}
	x.affReq.Adapter = rt.AdapterKey(x.model)
	r := &x.Req
	if len(r.Body) > 0 && r.Proto != GRPC {
		var res prefix.Result
		var err error
		if x.jsonBody { // route.ScanJSON checked this body (or the one it was rewritten from)
			res, err = prefix.ScanChecked(r.Body, prefix.Seed(x.model), x.hashes[:], x.ends[:])
		} else {
			res, err = prefix.Scan(r.Body, prefix.Seed(x.model), x.hashes[:], x.ends[:])
		}
		if err == nil {
			x.affReq.Hashes, x.affReq.Ends, x.affReq.Size = x.hashes[:res.Points], x.ends[:res.Points], uint32(res.Chars)
			if rt.SessionFromUser() {
				x.affReq.Session = res.User
			}
		}
	}
	if h := rt.SessionHeader(); h != nil {
		if v := r.Header(h); len(v) > 0 {
			x.affReq.Session = balancer.AffinityKey(v)
		}
	}
}
