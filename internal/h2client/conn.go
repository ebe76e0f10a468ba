package h2client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/internal/hdecode"
	"github.com/switchyard-dev/switchyard/internal/writebatch"
	"golang.org/x/net/http2"
)

// conn is one connection to the node. Its goroutine (readLoop) reads and
// processes frames; callers write their streams' frames themselves.
//
// Locks: wmu guards the write side (the framer's writes, the HPACK
// encoder, stream ids); mu guards the stream table, the flow-control
// windows and the streams' state. wmu may be taken before mu, never
// after it; the Transport's lock comes before mu and never meets wmu.
type conn struct {
	t     *Transport
	nc    net.Conn
	fr    *http2.Framer
	hdec  *hdecode.Decoder // reads fr's frames, header blocks decoded (reader only)
	reads atomic.Uint64    // frames read: the health check's sign of life
	once  sync.Once
	ready chan struct{} // closed when the node's first SETTINGS came
	done  chan struct{} // closed when the connection closed

	wmu         sync.Mutex
	hblock      []byte // the header block being written (hpacklit: literals, no dynamic table)
	noTableSent bool   // the first block's table size update went out
	nextID      uint32
	werr        error             // the first write error
	lower       map[string]string // canonical keys to wire names (under wmu)

	mu             sync.Mutex
	streams        map[uint32]*stream
	reserved       int    // slots taken by callers that have no stream id yet
	maxOpened      uint32 // the highest stream id opened
	maxStreams     uint32 // the node's SETTINGS_MAX_CONCURRENT_STREAMS
	sendWindow     int64  // the node's connection window for our DATA
	peerInitWindow int64  // the node's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame   uint32 // the node's SETTINGS_MAX_FRAME_SIZE
	recvAvail      int64  // what the node may still send on the connection
	recvUnacked    int64  // consumed, not yet returned by WINDOW_UPDATE
	goingAway      bool   // GOAWAY received: no new streams
	draining       bool   // CloseIdleConnections: close once idle
	closed         bool
	closeErr       error
	idle           *time.Timer
	health         *time.Timer
	healthReads    uint64 // reads at the last health check
	pinging        bool   // a PING is out, unanswered
}

// initialMaxStreams is the stream cap assumed until the node's SETTINGS
// say otherwise (as net/http's client does).
const initialMaxStreams = 100

// Errors of connections and streams.
var (
	errConnClosed       = errors.New("h2client: connection to the node closed")
	errIdle             = errors.New("h2client: idle connection closed")
	errPingTimeout      = errors.New("h2client: the node did not answer a PING")
	errHeaderListSize   = errors.New("h2client: answer's header list over MaxHeaderListSize")
	errBodyClosed       = errors.New("h2client: answer body closed")
	errMalformed        = errors.New("h2client: malformed answer")
	errNoSettings       = errors.New("h2client: the node sent no SETTINGS")
	errGoneAway         = fmt.Errorf("%w: the connection is going away (GOAWAY)", ErrRefused)
	errNoStreams        = fmt.Errorf("%w: the node allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)", ErrRefused)
	errNotHTTP2         = errors.New("h2client: TLS connection did not negotiate h2")
	errBodyLength       = errors.New("h2client: request body length differs from ContentLength")
	errInvalidFieldName = errors.New("h2client: invalid header field name")
)

// dial opens a connection and sends the preface; the node's SETTINGS
// come to the reader.
func (t *Transport) dial(ctx context.Context) (*conn, error) {
	if t.Dial == nil {
		return nil, errors.New("h2client: Transport.Dial is nil")
	}
	nc, err := t.Dial(ctx)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*tls.Conn); ok && tc.ConnectionState().NegotiatedProtocol != "h2" {
		_ = nc.Close()
		return nil, errNotHTTP2
	}
	wc := writebatch.New(nc, t.writeTimeout())
	cc := &conn{
		t:              t,
		nc:             wc,
		ready:          make(chan struct{}),
		done:           make(chan struct{}),
		lower:          make(map[string]string),
		nextID:         1,
		streams:        make(map[uint32]*stream),
		maxStreams:     initialMaxStreams,
		sendWindow:     1<<16 - 1,
		peerInitWindow: 1<<16 - 1,
		peerMaxFrame:   16 << 10,
		recvAvail:      int64(t.connWindow()),
	}
	br := newReader(nc)
	cc.fr = http2.NewFramer(wc, br)
	cc.hdec = hdecode.New(cc.fr, br, t.maxHeaderListSize())
	cc.fr.SetMaxReadFrameSize(16 << 10) // our SETTINGS keep the default
	cc.fr.SetReuseFrames()

	cc.wmu.Lock()
	_, err = io.WriteString(wc, http2.ClientPreface)
	if err == nil {
		err = cc.fr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(t.streamWindow())},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: t.maxHeaderListSize()},
		)
	}
	if err == nil {
		err = cc.fr.WriteWindowUpdate(0, uint32(t.connWindow())-(1<<16-1))
	}
	cc.wmu.Unlock()
	if err != nil {
		_ = wc.Close()
		return nil, err
	}
	cc.idle = time.AfterFunc(t.idleConnTimeout(), cc.onIdle)
	cc.health = time.AfterFunc(t.readIdleTimeout(), cc.checkHealth)
	go cc.readLoop()
	// The node's SETTINGS say how many streams it takes: waiting for
	// them (as grpc-go's client does) costs one round trip per
	// connection and spares the streams it would refuse.
	wait := time.NewTimer(settingsTimeout)
	defer wait.Stop()
	select {
	case <-cc.ready:
		return cc, nil
	case <-cc.done:
		select {
		case <-cc.ready: // SETTINGS, then a close (a GOAWAY with them)
			return cc, nil
		default:
		}
		return nil, cc.closeErr
	case <-ctx.Done():
		err = ctx.Err()
	case <-wait.C:
		err = errNoSettings
	}
	cc.close(err)
	return nil, err
}

// settingsTimeout bounds the wait for a new connection's first SETTINGS.
const settingsTimeout = 10 * time.Second

// tryReserve takes a stream slot when the connection can open a stream.
func (cc *conn) tryReserve() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.closed || cc.goingAway || cc.draining || cc.maxOpened > 1<<31-1000 ||
		uint32(len(cc.streams)+cc.reserved) >= cc.maxStreams {
		return false
	}
	cc.reserved++
	cc.idle.Stop()
	return true
}

// refusesStreams says why a connection that took no stream yet will
// take none (nil: it may).
func (cc *conn) refusesStreams() error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	switch {
	case cc.goingAway:
		return errGoneAway
	case cc.maxStreams == 0:
		return errNoStreams
	}
	return nil
}

// unreserve gives back a slot whose stream was never opened.
func (cc *conn) unreserve() {
	cc.mu.Lock()
	cc.reserved--
	closeNow := cc.idleLocked()
	cc.mu.Unlock()
	if closeNow {
		cc.close(errIdle)
	}
}

// idleLocked is called when the connection may have become idle: it
// starts the idle timer, or reports that a draining or going-away
// connection should close now.
func (cc *conn) idleLocked() (closeNow bool) {
	if cc.closed || len(cc.streams) > 0 || cc.reserved > 0 {
		return false
	}
	if cc.draining || cc.goingAway {
		return true
	}
	cc.idle.Reset(cc.t.idleConnTimeout())
	return false
}

func (cc *conn) onIdle() {
	cc.mu.Lock()
	idle := !cc.closed && len(cc.streams) == 0 && cc.reserved == 0
	cc.mu.Unlock()
	if idle {
		cc.close(errIdle)
	}
}

// drain closes the connection when idle, else once its streams end.
func (cc *conn) drain() {
	cc.mu.Lock()
	cc.draining = true
	closeNow := cc.idleLocked()
	cc.mu.Unlock()
	if closeNow {
		cc.close(errIdle)
	}
}

// checkHealth pings a connection that read nothing since the last check,
// and closes one whose PING went unanswered.
func (cc *conn) checkHealth() {
	n := cc.reads.Load()
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		return
	}
	if n != cc.healthReads {
		cc.healthReads, cc.pinging = n, false
		cc.health.Reset(cc.t.readIdleTimeout())
		cc.mu.Unlock()
		return
	}
	if cc.pinging {
		cc.mu.Unlock()
		cc.close(errPingTimeout)
		return
	}
	cc.pinging = true
	cc.health.Reset(cc.t.pingTimeout())
	cc.mu.Unlock()
	cc.write(func() error { return cc.fr.WritePing(false, [8]byte{'h', '2', 'c', 'l', 'i', 'e', 'n', 't'}) })
}

// write runs w under the write lock; a failed write closes the
// connection.
func (cc *conn) write(w func() error) error {
	cc.wmu.Lock()
	err := cc.werr
	if err == nil {
		if err = w(); err != nil {
			cc.werr = err
		}
	}
	cc.wmu.Unlock()
	if err != nil {
		cc.close(err)
	}
	return err
}

func (cc *conn) writeReset(id uint32, code http2.ErrCode) {
	_ = cc.write(func() error { return cc.fr.WriteRSTStream(id, code) })
}

func (cc *conn) writeWindowUpdates(id uint32, streamInc, connInc uint32) {
	if streamInc == 0 && connInc == 0 {
		return
	}
	_ = cc.write(func() error {
		if connInc > 0 {
			if err := cc.fr.WriteWindowUpdate(0, connInc); err != nil {
				return err
			}
		}
		if streamInc > 0 {
			return cc.fr.WriteWindowUpdate(id, streamInc)
		}
		return nil
	})
}

// close ends the connection: every stream on it fails with err.
func (cc *conn) close(err error) {
	cc.once.Do(func() {
		cc.mu.Lock()
		cc.closed = true
		cc.closeErr = err
		cc.idle.Stop()
		cc.health.Stop()
		failure := err
		if !errors.Is(err, ErrClosed) {
			failure = fmt.Errorf("%w: %w", errConnClosed, err)
		}
		failed := make([]*stream, 0, len(cc.streams))
		for id, s := range cc.streams {
			delete(cc.streams, id)
			s.removed = true
			s.failLocked(failure)
			failed = append(failed, s)
		}
		cc.mu.Unlock()
		for _, s := range failed {
			s.closeReqBody()
		}
		close(cc.done)
		_ = cc.nc.Close()
		cc.t.remove(cc)
	})
}

// connError ends the connection with GOAWAY carrying code.
func (cc *conn) connError(code http2.ErrCode, err error) {
	cc.mu.Lock()
	last := cc.maxOpened
	cc.mu.Unlock()
	_ = cc.write(func() error { return cc.fr.WriteGoAway(last, code, nil) })
	cc.close(err)
}
