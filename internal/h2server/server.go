// Package h2server serves HTTP/2 connections (h2c with prior knowledge,
// or TLS once ALPN chose h2) to an http.Handler.
//
// net/http's HTTP/2 server runs three goroutines and several channel
// hand-offs per stream: a frame reader, a serve loop that owns all
// state, a new handler goroutine per stream (whose small stack grows on
// every deep request) and a goroutine per HEADERS write. Here each
// connection has one goroutine that reads and processes frames under a
// mutex, handlers run on long-lived workers that keep their grown
// stacks, and a handler writes its own frames (under the connection's
// write lock), all of its answer in one buffered write when it fits.
// A stream's handler starts once its request has arrived whole, or when
// the reader would otherwise wait for more (a streamed body), so a
// unary request's handler never waits for its body.
//
// It implements what a reverse proxy's client side needs: flow control
// both ways, trailers, streamed bodies and answers, http.Flusher,
// http.ResponseController's SetReadDeadline, the connection-specific
// header and pseudo-header rules of RFC 9113 §8, a cap on concurrent
// streams that holds until each handler returns (so reset streams cannot
// pile up handlers: CVE-2023-44487), graceful shutdown with GOAWAY and
// an idle timeout. It does not push, does not support extended CONNECT,
// and does not sniff answer content types.
package h2server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves HTTP/2 connections handed to it with ServeConn. Set its
// fields before the first ServeConn and do not change them afterwards.
type Server struct {
	Handler http.Handler

	// MaxConcurrentStreams is the most streams a connection may have
	// open at once, each counted until its handler returns (default 250).
	MaxConcurrentStreams uint32
	// MaxHeaderBytes bounds a request's header list (HPACK-decoded
	// size, RFC 9113 §6.5.2); a request over it goes to HeaderTooLarge
	// with the fields decoded before the limit, or is answered a plain
	// 431 (default http.DefaultMaxHeaderBytes).
	MaxHeaderBytes int
	HeaderTooLarge http.Handler
	// MaxReadFrameSize is the largest frame payload accepted (16 KiB to
	// 16 MiB; default 16 KiB).
	MaxReadFrameSize uint32
	// StreamWindow and ConnWindow are the receive windows granted per
	// stream and per connection: how much request body may be buffered
	// unread (default 1 MiB each).
	StreamWindow int32
	ConnWindow   int32
	// IdleTimeout closes a connection with no open stream for this long
	// (0: never).
	IdleTimeout time.Duration
	// PrefaceTimeout bounds the wait for the client's preface and first
	// SETTINGS frame (default 10 s).
	PrefaceTimeout time.Duration
	// WriteTimeout bounds how long a handler's write waits for the
	// client to open its flow-control window; past it the stream is
	// reset (default 60 s).
	WriteTimeout time.Duration
	// Logger receives protocol errors at debug level and handler panics
	// at error level (default: discarded).
	Logger *slog.Logger
	// NoHeaderMap leaves a request's Header nil: its handler reads the
	// fields as they came, with FieldRelay.RequestFields (a proxy that
	// relays them saves the map). Host, Trailer and ContentLength are
	// filled as ever.
	NoHeaderMap bool

	mu       sync.Mutex
	conns    map[*conn]struct{}
	stopping bool
	gone     chan struct{} // closed when stopping and conns is empty

	workers workers

	goAwayLinger time.Duration // how long a connection is read after its GOAWAY (default 1 s; tests set it)
	afterAnswer  func()        // tests: runs after an answer's last frame is written, before its stream is released
}

// Defaults.
const (
	defaultMaxStreams   = 250
	defaultWindow       = 1 << 20
	defaultFrameSize    = 16 << 10
	defaultPreface      = 10 * time.Second
	defaultWriteTimeout = 60 * time.Second
	defaultGoAwayLinger = time.Second
	maxWindow           = 1<<31 - 1
)

var (
	errServerClosed = errors.New("h2server: server closed")
	errConnClosed   = errors.New("h2server: client connection closed")
	errStreamReset  = errors.New("h2server: stream reset")
	errHandlerDone  = errors.New("h2server: body read after the handler returned")
	errWindowWait   = errors.New("h2server: client did not open its flow-control window in time")
)

// ServeConn serves HTTP/2 on c, whose next bytes are the client's
// connection preface, until the connection ends. It closes c.
func (s *Server) ServeConn(c net.Conn) {
	cc := newConn(s, c)
	if !s.track(cc) {
		_ = c.Close()
		return
	}
	defer s.untrack(cc)
	cc.serve()
}

func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
		s.workers.jobs, s.workers.quit = make(chan *stream), make(chan struct{})
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if s.stopping && len(s.conns) == 0 && s.gone != nil {
		close(s.gone)
		s.gone = nil
	}
}

// stop marks the server stopping and returns its connections and a
// channel closed once they have all ended.
func (s *Server) stop() ([]*conn, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopping = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	gone := make(chan struct{})
	if len(s.conns) == 0 {
		close(gone)
	} else {
		s.gone = gone
	}
	return conns, gone
}

// Shutdown sends GOAWAY on every connection, refuses new ones, and
// waits within ctx for the open streams to finish and the connections to
// close; then it ends the workers. Past ctx it returns ctx's error and
// leaves the rest to Close.
func (s *Server) Shutdown(ctx context.Context) error {
	conns, gone := s.stop()
	for _, c := range conns {
		c.shutdown()
	}
	select {
	case <-gone:
		s.workers.stop()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes every connection at once (their handlers see their
// contexts cancelled), waits for the connections to end and for the
// handlers to return.
func (s *Server) Close() error {
	conns, gone := s.stop()
	for _, c := range conns {
		c.close(errServerClosed)
	}
	<-gone
	s.workers.stop()
	return nil
}

func (s *Server) maxStreams() uint32 {
	if s.MaxConcurrentStreams > 0 {
		return s.MaxConcurrentStreams
	}
	return defaultMaxStreams
}

func (s *Server) maxHeaderBytes() uint32 {
	if s.MaxHeaderBytes > 0 {
		return uint32(min(s.MaxHeaderBytes, 16<<20))
	}
	return http.DefaultMaxHeaderBytes
}

func (s *Server) frameSize() uint32 {
	return min(max(s.MaxReadFrameSize, defaultFrameSize), 1<<24-1)
}

func (s *Server) streamWindow() int32 {
	if s.StreamWindow > 0 {
		return max(s.StreamWindow, 1<<16-1)
	}
	return defaultWindow
}

func (s *Server) connWindow() int32 {
	if s.ConnWindow > 0 {
		return max(s.ConnWindow, 1<<16-1)
	}
	return defaultWindow
}

func (s *Server) lingerAfterGoAway() time.Duration {
	if s.goAwayLinger > 0 {
		return s.goAwayLinger
	}
	return defaultGoAwayLinger
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return discard
}

var discard = slog.New(slog.DiscardHandler)

// workers runs stream handlers on long-lived goroutines: a handler's
// stack grows once and stays grown (a new goroutine per stream grew its
// stack on every deep request). Workers start when none is idle and the
// idle ones beyond the last period's peak end every retireEvery.
//
// An idle worker waits on jobs alone (a select with a quit channel had
// been 3 % of a gRPC call's CPU); a nil job ends it, and whoever sends
// the nil counts the worker out.
type workers struct {
	jobs chan *stream // unbuffered: a send succeeds only to an idle worker
	busy atomic.Int32
	peak atomic.Int32 // the most busy at once since the last retire

	mu       sync.Mutex
	count    int // workers not yet sent their nil
	retiring bool
	stopped  bool
	quit     chan struct{}  // ends the retire loop
	wg       sync.WaitGroup // the workers
	loop     sync.WaitGroup // the retire loop
}

const retireEvery = 10 * time.Second

// run serves st on a worker; after stop, on a new goroutine.
func (w *workers) run(st *stream) {
	w.notePeak(w.busy.Add(1))
	select {
	case w.jobs <- st:
		return
	default:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		go func() {
			defer w.busy.Add(-1)
			st.serve()
		}()
		return
	}
	if !w.retiring {
		w.retiring = true
		w.loop.Add(1)
		go w.retireLoop()
	}
	w.count++
	w.wg.Add(1)
	go w.work(st)
}

func (w *workers) notePeak(busy int32) {
	for {
		pk := w.peak.Load()
		if busy <= pk || w.peak.CompareAndSwap(pk, busy) {
			return
		}
	}
}

func (w *workers) work(st *stream) {
	defer w.wg.Done()
	for st != nil {
		st.serve()
		w.busy.Add(-1)
		st = <-w.jobs
	}
}

func (w *workers) retireLoop() {
	defer w.loop.Done()
	t := time.NewTicker(retireEvery)
	defer t.Stop()
	for {
		select {
		case <-w.quit:
			return
		case <-t.C:
			w.retire()
		}
	}
}

// retire ends the idle workers beyond the most that were busy at once
// since the last call; it returns how many it ended.
func (w *workers) retire() (ended int) {
	w.mu.Lock()
	excess := int32(w.count) - w.peak.Load()
	w.mu.Unlock()
	w.peak.Store(w.busy.Load())
	for ; excess > 0; excess-- {
		select {
		case w.jobs <- nil:
			ended++
			w.mu.Lock()
			w.count--
			w.mu.Unlock()
		default:
			return ended
		}
	}
	return ended
}

// stop ends the workers (busy ones when their handler returns) and
// waits for them.
func (w *workers) stop() {
	w.mu.Lock()
	first := !w.stopped
	// From here on run starts no worker. quit is nil when no connection
	// was ever served.
	w.stopped = true
	if first && w.quit != nil {
		close(w.quit)
	}
	w.mu.Unlock()
	if first {
		w.loop.Wait() // it ends no more workers
		w.mu.Lock()
		n := w.count
		w.count = 0
		w.mu.Unlock()
		for range n {
			w.jobs <- nil
		}
	}
	w.wg.Wait()
}

// Workers returns the worker goroutines running now (tests).
func (s *Server) Workers() int {
	s.workers.mu.Lock()
	defer s.workers.mu.Unlock()
	return s.workers.count
}
