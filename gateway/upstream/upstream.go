package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/telemetry"
	"github.com/switchyard-dev/switchyard/internal/h2client"
)

// Config is what every node of one route shares.
type Config struct {
	// Route names the route in logs.
	Route string
	// Timeouts are the route's: Connect bounds dialing, FirstByte and
	// Idle are enforced per read on HTTP/1.1 connections.
	Timeouts config.Timeouts
	// Breaker tunes the circuit breaker.
	Breaker config.BreakerConfig
	// MaxConns bounds the HTTP/1.1 connections to the node.
	MaxConns int
	// MaxResponseBytes bounds a buffered response body.
	MaxResponseBytes int
	// OnEject is called when the node's breaker opens (for metrics).
	OnEject func()
	// Log receives breaker transitions.
	Log *slog.Logger
	// Metrics, when set, gives each node its per-node series
	// (requests, time to first token), held until Close.
	Metrics *telemetry.Metrics
	// TLS, when set, makes every connection to the node TLS (NewTLS
	// builds it from the route's tls block): the HTTP/1.1 pool's, and
	// gRPC's, which then speaks HTTP/2 over TLS (ALPN h2) instead of h2c.
	// Nil: plaintext.
	TLS *tls.Config
}

// Node is one node of one route: its HTTP/1.1 connection pool, its HTTP/2
// transport for gRPC, and its circuit breaker. It is the
// balancer.Endpoint's Value. Safe for concurrent use; must not be copied.
type Node struct {
	// Immutable after New.
	id   string
	addr balancer.Address
	cfg  *Config
	cb   *gobreaker.CircuitBreaker[struct{}]
	pool pool
	// tlsH1 and tlsH2 are the node's TLS configs for HTTP/1.1 and for
	// gRPC (nil: plaintext).
	tlsH1, tlsH2 *tls.Config

	h2once sync.Once
	h2     atomic.Pointer[h2client.Transport]
	stats  *telemetry.NodeStats // nil without Config.Metrics

	// Atomic.
	ep        atomic.Pointer[balancer.Endpoint] // bound after the first build
	failing   atomic.Int32                      // failures reported since the last reported success
	drainedAt atomic.Int64                      // unix nanos of the last draining 503
	busyUntil atomic.Int64                      // unix nanos until which a 429's Retry-After keeps it out
	closed    atomic.Bool                       // Close ran: the series are given back
	fb        firstByte                         // answers seen by the forwarding core (firstbyte.go)
}

// New returns the node id at addr. cfg is shared and must not change.
func New(id string, addr balancer.Address, cfg *Config) *Node {
	n := &Node{id: id, addr: addr, cfg: cfg}
	if cfg.Metrics != nil {
		n.stats = cfg.Metrics.Node(cfg.Route, id)
	}
	n.tlsH1, _ = nodeTLS(cfg.TLS, addr.HTTP)
	_, n.tlsH2 = nodeTLS(cfg.TLS, addr.GRPC)
	n.pool.init(n)
	n.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        id,
		MaxRequests: 1,
		Timeout:     cfg.Breaker.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= uint32(cfg.Breaker.Failures)
		},
		OnStateChange: n.onBreakerChange,
	})
	return n
}

// ID is the node's id.
func (n *Node) ID() string { return n.id }

// Stats are the node's series (nil without Config.Metrics). Recording
// after Close is harmless: the series are no longer exported.
func (n *Node) Stats() *telemetry.NodeStats { return n.stats }

// Addr is the node's address.
func (n *Node) Addr() balancer.Address { return n.addr }

// Breaker is the breaker's state ("closed", "half-open", "open").
func (n *Node) Breaker() string { return n.cb.State().String() }

// Failing is the failures reported since the last reported success.
func (n *Node) Failing() int32 { return n.failing.Load() }

// Bind attaches the endpoint once the balancer created it.
func (n *Node) Bind(e *balancer.Endpoint) {
	if n.ep.Load() == nil {
		n.ep.Store(e)
	}
}

func (n *Node) onBreakerChange(_ string, from, to gobreaker.State) {
	if l := n.cfg.Log; l != nil {
		l.Warn("gateway: circuit breaker", "route", n.cfg.Route, "node", n.id, "from", from.String(), "to", to.String())
	}
	e := n.ep.Load()
	switch to {
	case gobreaker.StateClosed:
		if e != nil {
			e.Include(balancer.ExcludeBreaker)
		}
	case gobreaker.StateOpen:
		if n.cfg.OnEject != nil {
			n.cfg.OnEject()
		}
		fallthrough
	default:
		if e != nil {
			e.Exclude(balancer.ExcludeBreaker)
		}
	}
}

var (
	cbSuccess = func() (struct{}, error) { return struct{}{}, nil }
	cbFailure = func() (struct{}, error) { return struct{}{}, errNodeFailed }
)

var errNodeFailed = errors.New("gateway: node failed")

// Report feeds one outcome to the breaker. The common case, a success with
// no failures outstanding, touches one atomic and no lock: gobreaker only
// sees failures and the first success after them, which keeps its
// consecutive-failure count exact.
func (n *Node) Report(ok bool) {
	if ok {
		if n.failing.Load() == 0 {
			return
		}
		n.failing.Store(0)
		_, _ = n.cb.Execute(cbSuccess)
		return
	}
	n.failing.Add(1)
	_, _ = n.cb.Execute(cbFailure)
}

// MarkDraining excludes the node after it answered 503; Recheck lets it
// back after the breaker's open period.
func (n *Node) MarkDraining() {
	n.drainedAt.Store(time.Now().UnixNano())
	if e := n.ep.Load(); e != nil {
		e.Exclude(balancer.ExcludeDraining)
	}
}

// MarkBusy takes the node out of picks for d (bounded to 1..30 s) after
// it refused a request with 429 and that Retry-After: its queue is full,
// and others may not be. The route's owner lets it back (BusyOver).
func (n *Node) MarkBusy(d time.Duration) {
	d = min(max(d, time.Second), 30*time.Second)
	n.busyUntil.Store(time.Now().Add(d).UnixNano())
	if e := n.ep.Load(); e != nil {
		e.Exclude(balancer.ExcludeOverload)
	}
}

// BusyOver reports whether a MarkBusy period has passed at now.
func (n *Node) BusyOver(now time.Time) bool { return now.UnixNano() >= n.busyUntil.Load() }

// DrainedFor is how long ago the node last answered a draining 503.
func (n *Node) DrainedFor(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, n.drainedAt.Load()))
}

// Probe runs a health probe through the breaker when the breaker allows a
// trial (half-open): GET healthPath on the node's HTTP address, which must
// answer within timeout. It returns at once while the breaker is open.
func (n *Node) Probe(ctx context.Context, healthPath string, timeout time.Duration) {
	_, _ = n.cb.Execute(func() (struct{}, error) {
		return struct{}{}, n.health(ctx, healthPath, timeout)
	})
}

// health is the breaker's trial: the node must answer HTTP within
// timeout, with a 2xx, or a 404 (no such health endpoint on this engine:
// it answered, so it is not hung; gateway/health watches such nodes by
// outlier detection). A TCP connect is no trial: a stopped process still
// completes handshakes (issue 12).
func (n *Node) health(ctx context.Context, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if path == "" {
		path = "/health"
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + n.addr.HTTP + path)
	req.Header.SetMethod(fasthttp.MethodGet)
	dl, _ := ctx.Deadline()
	var call Call
	stop := context.AfterFunc(ctx, call.Abort)
	defer stop()
	if err := n.do(&call, outgoing{req: req}, resp, dl); err != nil {
		return err
	}
	if c := resp.StatusCode(); (c < 200 || c > 299) && c != fasthttp.StatusNotFound {
		return errNodeFailed
	}
	return nil
}

// H2 returns the node's HTTP/2 transport for gRPC, creating it on first
// use: h2c (prior knowledge), or HTTP/2 over TLS when the route speaks
// TLS (Config.TLS). Call it once per gRPC exchange: like Do, it counts
// the exchange as waiting for the node's answer until the caller reports
// it with ObserveFirstByte.
//
// The transport is internal/h2client: net/http's HTTP/2 client cost about
// half of the gateway's CPU per gRPC call (a goroutine per request,
// channel hand-offs, per-field header encoding). GRPCScheme says which
// scheme the node speaks (the request's :scheme).
func (n *Node) H2() *h2client.Transport {
	n.fb.begin()
	n.h2once.Do(func() {
		d := &net.Dialer{Timeout: max(n.cfg.Timeouts.Connect, 0)}
		addr := n.addr.GRPC
		t := &h2client.Transport{
			ReadIdleTimeout: 30 * time.Second,
			PingTimeout:     10 * time.Second,
			WriteTimeout:    h2WriteTimeout,
			Dial: func(ctx context.Context) (net.Conn, error) {
				return d.DialContext(ctx, "tcp", addr)
			},
		}
		if tc := n.tlsH2; tc != nil {
			t.Dial = func(ctx context.Context) (net.Conn, error) {
				if c := n.cfg.Timeouts.Connect; c > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, c)
					defer cancel()
				}
				return dialH2TLS(ctx, d, addr, tc)
			}
		}
		n.h2.Store(t)
	})
	return n.h2.Load()
}

// h2WriteTimeout bounds one write to a node's HTTP/2 connection: a node
// that reads nothing for this long loses the connection.
const h2WriteTimeout = 30 * time.Second

// GRPCScheme is the URL scheme of the node's gRPC address: "https" when
// the route speaks TLS to it, else "http" (h2c).
func (n *Node) GRPCScheme() string {
	if n.tlsH2 != nil {
		return "https"
	}
	return "http"
}

// TLSConfig is the node's HTTP/1.1 TLS config (nil: plaintext), for
// health probes; it must not be modified.
func (n *Node) TLSConfig() *tls.Config { return n.tlsH1 }

// Close drops the node's idle connections once it left the route;
// requests still running on busy ones finish first, and their connections
// are closed when they come back.
func (n *Node) Close() {
	if n.stats != nil && n.closed.CompareAndSwap(false, true) {
		n.cfg.Metrics.ReleaseNode(n.stats)
	}
	n.pool.close()
	if t := n.h2.Load(); t != nil {
		t.CloseIdleConnections()
	}
}

// CloseStale closes idle HTTP/1.1 connections unused for longer than the
// idle bound (called periodically by the route's owner).
func (n *Node) CloseStale(now time.Time) { n.pool.closeStale(now) }
