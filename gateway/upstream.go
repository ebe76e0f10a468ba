package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/balancer"
)

// upstream is one node of one route: its connection pools and its circuit
// breaker. It is the balancer.Endpoint's Value. Safe for concurrent use;
// must not be copied.
type upstream struct {
	// Immutable after newUpstream.
	id       string
	httpAddr string
	grpcAddr string
	timeouts Timeouts
	hc       *fasthttp.HostClient
	cb       *gobreaker.CircuitBreaker[struct{}]
	stats    *routeStats
	log      *slog.Logger
	route    string

	h2once sync.Once
	h2     atomic.Pointer[http.Transport]

	// Atomic.
	ep        atomic.Pointer[balancer.Endpoint] // bound after the first build
	failing   atomic.Int32                      // failures reported since the last reported success
	drainedAt atomic.Int64                      // unix nanos of the last draining 503
}

// nodeAddr joins a node's HTTP and gRPC addresses into balancer.Node.Addr,
// so that a change of either gives the node a fresh endpoint and pools.
func nodeAddr(httpAddr, grpcAddr string) string {
	if grpcAddr == "" || grpcAddr == httpAddr {
		return httpAddr
	}
	return httpAddr + "," + grpcAddr
}

func splitNodeAddr(addr string) (httpAddr, grpcAddr string) {
	h, g, ok := strings.Cut(addr, ",")
	if !ok {
		return addr, addr
	}
	return h, g
}

func newUpstream(id, addr string, rc *RouteConfig, lim *Limits, stats *routeStats, log *slog.Logger) *upstream {
	u := &upstream{id: id, timeouts: rc.Timeouts, stats: stats, log: log, route: rc.Name}
	u.httpAddr, u.grpcAddr = splitNodeAddr(addr)
	u.hc = &fasthttp.HostClient{
		Addr:     u.httpAddr,
		MaxConns: lim.MaxPerNode + 16,
		// Below uvicorn's 5 s keep-alive (vLLM, SGLang, Ray Serve), so
		// the gateway rarely reuses a connection the node just closed.
		MaxIdleConnDuration: 4 * time.Second,
		ReadBufferSize:      16 << 10,
		WriteBufferSize:     16 << 10,
		MaxResponseBodySize: lim.MaxResponseBytes,
		// fasthttp retries once, on the same node, only when a reused
		// keep-alive connection turns out closed before any response byte
		// (the node timed it out); every other failure is the gateway's to
		// handle (another node, the breaker).
		MaxIdemponentCallAttempts:     2,
		RetryIfErr:                    staleConnRetry,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		DialTimeout:                   u.dial,
	}
	u.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        id,
		MaxRequests: 1,
		Timeout:     rc.Breaker.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return c.ConsecutiveFailures >= uint32(rc.Breaker.Failures)
		},
		OnStateChange: u.onBreakerChange,
	})
	return u
}

// staleConnRetry lets fasthttp resend a request once when the connection
// it reused from the pool was closed by the node before answering. A
// streamed request body cannot be resent.
func staleConnRetry(req *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
	if attempts > 1 || req.IsBodyStream() {
		return false, false
	}
	return false, errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF)
}

// bind attaches the endpoint once the balancer created it.
func (u *upstream) bind(e *balancer.Endpoint) {
	if u.ep.Load() == nil {
		u.ep.Store(e)
	}
}

func (u *upstream) onBreakerChange(_ string, from, to gobreaker.State) {
	u.log.Warn("gateway: circuit breaker", "route", u.route, "node", u.id, "from", from.String(), "to", to.String())
	e := u.ep.Load()
	switch to {
	case gobreaker.StateClosed:
		if e != nil {
			e.Include(balancer.ExcludeBreaker)
		}
	case gobreaker.StateOpen:
		u.stats.ejections.Add(1)
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

// report feeds one outcome to the breaker. The common case, a success with
// no failures outstanding, touches one atomic and no lock: gobreaker only
// sees failures and the first success after them, which keeps its
// consecutive-failure count exact.
func (u *upstream) report(ok bool) {
	if ok {
		if u.failing.Load() == 0 {
			return
		}
		u.failing.Store(0)
		_, _ = u.cb.Execute(cbSuccess)
		return
	}
	u.failing.Add(1)
	_, _ = u.cb.Execute(cbFailure)
}

// markDraining excludes the node after it answered 503; the prober lets it
// back after the breaker's open period.
func (u *upstream) markDraining() {
	u.drainedAt.Store(time.Now().UnixNano())
	if e := u.ep.Load(); e != nil {
		e.Exclude(balancer.ExcludeDraining)
	}
}

// probe runs a health probe through the breaker when the breaker allows a
// trial (half-open). It returns at once while the breaker is open.
func (u *upstream) probe(ctx context.Context, healthPath string, timeout time.Duration) {
	_, _ = u.cb.Execute(func() (struct{}, error) {
		return struct{}{}, u.health(ctx, healthPath, timeout)
	})
}

func (u *upstream) health(ctx context.Context, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if path == "" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", u.httpAddr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + u.httpAddr + path)
	req.Header.SetMethod(fasthttp.MethodGet)
	dl, _ := ctx.Deadline()
	if err := u.hc.DoDeadline(req, resp, dl); err != nil {
		return err
	}
	if c := resp.StatusCode(); c < 200 || c > 299 {
		return errNodeFailed
	}
	return nil
}

// dial opens an upstream HTTP/1.1 connection within the connect timeout
// and wraps it so reads enforce the first-byte and idle timeouts.
func (u *upstream) dial(addr string, timeout time.Duration) (net.Conn, error) {
	if ct := u.timeouts.Connect; ct > 0 && (timeout <= 0 || ct < timeout) {
		timeout = ct
	}
	var c net.Conn
	var err error
	if timeout > 0 {
		c, err = fasthttp.DialTimeout(addr, timeout)
	} else {
		c, err = fasthttp.Dial(addr)
	}
	if err != nil {
		return nil, err
	}
	return &deadlineConn{Conn: c, ttfb: u.timeouts.FirstByte, idle: u.timeouts.Idle}, nil
}

// h2t returns the node's h2c (prior knowledge) transport for gRPC,
// creating it on first use.
func (u *upstream) h2t() *http.Transport {
	u.h2once.Do(func() {
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		u.h2.Store(&http.Transport{
			Protocols:   &protos,
			DialContext: (&net.Dialer{Timeout: u.timeouts.Connect}).DialContext,
			HTTP2: &http.HTTP2Config{
				SendPingTimeout:  30 * time.Second,
				PingTimeout:      10 * time.Second,
				WriteByteTimeout: 30 * time.Second,
			},
			MaxIdleConnsPerHost: 4,
		})
	})
	return u.h2.Load()
}

// close drops the node's idle connections once it left the route.
func (u *upstream) close() {
	u.hc.CloseIdleConnections()
	if t := u.h2.Load(); t != nil {
		t.CloseIdleConnections()
	}
}
