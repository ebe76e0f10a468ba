// Package h2client is the gateway's HTTP/2 client to one node, for gRPC
// calls over h2c or TLS (ALPN h2). Do takes a request as HTTP/2 fields
// and returns the answer's fields, so that a proxy relays them with no
// header map on the way; RoundTrip is the same as an http.RoundTripper.
//
// net/http's HTTP/2 client starts a goroutine per request to write it,
// hands every frame between goroutines over channels and selects, and
// encodes headers through a general path that allocates per field. Here
// the caller writes its own request (HEADERS and, when the body is known
// whole, its DATA with END_STREAM) under the connection's write lock,
// through a batching writer (internal/writebatch) that sends many
// streams' frames in one system call; one reader goroutine per
// connection processes the node's frames under the connection's lock and
// wakes the stream they are for. A streamed request body (ContentLength
// -1) is written by a goroutine of its own, as the answer may come
// before the body ends.
//
// It implements what a proxy's node side needs: flow control both ways,
// trailers both ways, streamed bodies and answers, the peer's
// MAX_CONCURRENT_STREAMS (a new connection when every one is full),
// GOAWAY, RST_STREAM, cancellation by the request's context, health
// PINGs on a silent connection and an idle timeout. It does not accept
// pushes, does not send 100-continue and does not retry: a refused
// stream comes back as an error, and the caller decides.
package h2client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Transport is an HTTP/2 client for one node. Set its fields before the
// first RoundTrip and do not change them afterwards.
type Transport struct {
	// Dial opens a new connection to the node: TCP for h2c, or a TLS
	// connection that negotiated "h2". Required.
	Dial func(ctx context.Context) (net.Conn, error)

	// ReadIdleTimeout: a connection that received no frame for this
	// long is sent a PING; no frame within PingTimeout after it closes
	// the connection (defaults 30 s and 10 s).
	ReadIdleTimeout time.Duration
	PingTimeout     time.Duration
	// IdleConnTimeout closes a connection that had no stream for this
	// long (default 90 s).
	IdleConnTimeout time.Duration
	// WriteTimeout bounds one write system call: a node that reads
	// nothing for this long loses the connection (default 30 s).
	WriteTimeout time.Duration
	// MaxHeaderListSize bounds an answer's header list and trailers
	// (HPACK-decoded size, default 1 MiB); an answer over it fails.
	MaxHeaderListSize uint32
	// StreamWindow and ConnWindow are the receive windows granted per
	// stream and per connection: how much of the answers may arrive
	// unread (defaults 4 MiB and 16 MiB).
	StreamWindow int32
	ConnWindow   int32

	mu         sync.Mutex
	conns      []*conn
	dialing    chan struct{} // a dial runs; closed when it ends
	cancelDial context.CancelFunc
	closed     bool
}

// ErrClosed is RoundTrip's error once the Transport was closed.
var ErrClosed = errors.New("h2client: transport closed")

// ErrRefused means the node did not process the request (REFUSED_STREAM,
// or a GOAWAY below the stream's ID): it may be sent again elsewhere, or
// on a new connection.
var ErrRefused = errors.New("h2client: stream refused by the node, not processed")

// ErrAborted is the error of a request whose abort channel closed
// (RoundTripAbort); it wraps context.Canceled, as a cancelled context's.
var ErrAborted = fmt.Errorf("h2client: request aborted: %w", context.Canceled)

// RoundTrip sends req to the node and returns its answer once the
// answer's headers have come. req.URL's scheme and req.Host (or the URL's
// host) become :scheme and :authority; the path is URL.Opaque when set,
// else the URL's request URI. A body with ContentLength ≥ 0 is written by
// RoundTrip itself; one with -1 by a goroutine that reads it as it comes.
// The answer's Trailer is filled when its Body returns io.EOF. Cancelling
// req's context resets the stream. It is Do with net/http's types: the
// header maps are built from the fields and back.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.RoundTripAbort(req, nil)
}

// RoundTripAbort is RoundTrip with Do's second way to cancel, abort.
func (t *Transport) RoundTripAbort(req *http.Request, abort <-chan struct{}) (*http.Response, error) {
	r, err := fromHTTP(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.Do(r, abort)
	if err != nil {
		return nil, err
	}
	return toHTTP(resp, req), nil
}

// Do sends req to the node and returns its answer once the answer's
// headers have come. Closing abort ends the request as cancelling its
// context does (a dial it waits for is given up, the stream reset, the
// request body closed), and the request's calls fail with ErrAborted: a
// caller that cancels requests on its own (a timeout) so needs no
// context derived from the client's for each one. The request's body is
// closed in every case.
func (t *Transport) Do(req *Request, abort <-chan struct{}) (*Response, error) {
	if req.Ctx == nil {
		req.Ctx = context.Background()
	}
	cc, err := t.reserve(req.Ctx, abort)
	if err != nil {
		closeReqBody(req)
		return nil, err
	}
	return cc.roundTrip(req, abort)
}

// reserve returns a connection with a stream slot taken for the caller,
// dialing one when every connection is full or going away.
func (t *Transport) reserve(ctx context.Context, abort <-chan struct{}) (*conn, error) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, ErrClosed
		}
		for _, cc := range t.conns {
			if cc.tryReserve() {
				t.mu.Unlock()
				return cc, nil
			}
		}
		if wait := t.dialing; wait != nil {
			t.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-abort:
				return nil, ErrAborted
			}
		}
		done := make(chan struct{})
		dctx, cancel := context.WithCancel(ctx) // Close cancels a dial
		t.dialing, t.cancelDial = done, cancel
		t.mu.Unlock()

		if abort != nil {
			go func() { // ends with the dial (cancel below)
				select {
				case <-abort:
					cancel()
				case <-dctx.Done():
				}
			}()
		}
		cc, err := t.dial(dctx)
		cancel()
		t.mu.Lock()
		t.dialing, t.cancelDial = nil, nil
		close(done)
		if err != nil {
			t.mu.Unlock()
			if t.isClosed() {
				return nil, ErrClosed
			}
			if isClosed(abort) && ctx.Err() == nil {
				return nil, ErrAborted
			}
			return nil, err
		}
		if t.closed {
			t.mu.Unlock()
			cc.close(ErrClosed)
			return nil, ErrClosed
		}
		if cc.tryReserve() {
			t.conns = append(t.conns, cc)
			t.mu.Unlock()
			return cc, nil
		}
		if refused := cc.refusesStreams(); refused != nil {
			// A new connection that takes no stream at all (GOAWAY, or
			// MAX_CONCURRENT_STREAMS 0): dialing again would not help.
			t.mu.Unlock()
			cc.close(refused)
			return nil, refused
		}
		t.conns = append(t.conns, cc) // full already: waiters took it; dial again
		t.mu.Unlock()
	}
}

// isClosed reports whether ch (which may be nil) is closed.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// remove drops a closed connection from the pool.
func (t *Transport) remove(cc *conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, c := range t.conns {
		if c == cc {
			t.conns = slices.Delete(t.conns, i, i+1)
			return
		}
	}
}

// CloseIdleConnections closes the connections with no stream; busy ones
// take no new stream and close when their last stream ends.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	conns := append([]*conn(nil), t.conns...)
	t.mu.Unlock()
	for _, cc := range conns {
		cc.drain()
	}
}

// Close closes every connection now, failing the streams on them; later
// RoundTrips fail with ErrClosed.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = nil
	if t.cancelDial != nil {
		t.cancelDial()
	}
	t.mu.Unlock()
	for _, cc := range conns {
		cc.close(ErrClosed)
	}
	return nil
}

func closeReqBody(req *Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

func (t *Transport) readIdleTimeout() time.Duration {
	return orDefault(t.ReadIdleTimeout, 30*time.Second)
}
func (t *Transport) pingTimeout() time.Duration { return orDefault(t.PingTimeout, 10*time.Second) }
func (t *Transport) idleConnTimeout() time.Duration {
	return orDefault(t.IdleConnTimeout, 90*time.Second)
}
func (t *Transport) writeTimeout() time.Duration { return orDefault(t.WriteTimeout, 30*time.Second) }

func (t *Transport) maxHeaderListSize() uint32 {
	if t.MaxHeaderListSize > 0 {
		return t.MaxHeaderListSize
	}
	return 1 << 20
}

func (t *Transport) streamWindow() int32 {
	if t.StreamWindow > 0 {
		return t.StreamWindow
	}
	return 4 << 20
}

func (t *Transport) connWindow() int32 {
	if t.ConnWindow > 0 {
		return max(t.ConnWindow, 1<<16-1)
	}
	return 16 << 20
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
