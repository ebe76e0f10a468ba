// Package h2client is the gateway's HTTP/2 client to one node: an
// http.RoundTripper for gRPC calls over h2c or TLS (ALPN h2).
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
	"net"
	"net/http"
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
}

// RoundTrip sends req to the node and returns its answer once the
// answer's headers have come. req.URL's scheme and req.Host (or the URL's
// host) become :scheme and :authority; the path is URL.Opaque when set,
// else the URL's request URI. A body with ContentLength ≥ 0 is written by
// RoundTrip itself; one with -1 by a goroutine that reads it as it comes.
// The answer's Trailer is filled when its Body returns io.EOF. Cancelling
// req's context resets the stream.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return nil, errors.New("h2client: not implemented yet")
}

// CloseIdleConnections closes the connections with no stream; busy ones
// take no new stream and close when their last stream ends.
func (t *Transport) CloseIdleConnections() {}

// Close closes every connection now, failing the streams on them; later
// RoundTrips fail with ErrClosed.
func (t *Transport) Close() error { return nil }

// ErrClosed is RoundTrip's error once the Transport was closed.
var ErrClosed = errors.New("h2client: transport closed")

// ErrRefused means the node did not process the request (REFUSED_STREAM,
// or a GOAWAY below the stream's ID): it may be sent again elsewhere, or
// on a new connection.
var ErrRefused = errors.New("h2client: stream refused by the node, not processed")
