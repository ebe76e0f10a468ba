package forward

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/openai"
)

// keepAlive relays an OpenAI event stream through an openai.Stream, as
// openai.Reader does, and when the node sends nothing for a while hands
// the client an SSE comment (openai.KeepAlive) between two events, so
// that proxies and load balancers on the way keep the connection while a
// reasoning model thinks. A blocked read cannot be timed, so a pump
// goroutine does the node's reads: Read asks it for one (next), waits
// for the bytes (got) or the timer. The pump is the Exchange's: it ends
// when the node's body ends or fails; stop ends it otherwise, after the
// caller made a pending read return (the Exchange aborts its upstream
// call). Only the pump touches buf between a request and its answer;
// only Read touches the Stream. Not safe for concurrent use.
type keepAlive struct {
	src     io.Reader
	s       *openai.Stream
	every   time.Duration
	timer   *time.Timer
	buf     []byte
	next    chan struct{}   // a read is wanted; closed by stop
	got     chan readResult // its outcome
	done    chan struct{}   // the pump has returned
	pending bool            // a read was asked for and its outcome not yet taken
	out     []byte          // bytes for the client not yet returned
	off     int
	err     error          // the node's error, returned once out is drained
	sent    *atomic.Uint64 // counts the comments sent (Core.KeepAlivesSent)
}

type readResult struct {
	n   int
	err error
}

// keepAliveBuf is the pump's read size: an SSE event or a few.
const keepAliveBuf = 4 << 10

func newKeepAlive(src io.Reader, s *openai.Stream, every time.Duration, sent *atomic.Uint64) *keepAlive {
	k := &keepAlive{
		src: src, s: s, every: every, buf: make([]byte, keepAliveBuf), sent: sent,
		next: make(chan struct{}, 1), got: make(chan readResult, 1), done: make(chan struct{}),
	}
	go k.pump()
	return k
}

// pump reads the node's body on request until it ends or stop.
func (k *keepAlive) pump() {
	defer close(k.done)
	for range k.next {
		n, err := k.src.Read(k.buf)
		k.got <- readResult{n, err}
		if err != nil {
			return
		}
	}
}

// Read returns the client's next bytes: whole events, or a keep-alive
// comment after a silence of k.every at an event boundary.
func (k *keepAlive) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := k.fill(); err != nil {
		return 0, err
	}
	n := copy(p, k.out[k.off:])
	k.off += n
	return n, nil
}

// Next is Read without the caller's buffer: the client's next bytes, a
// slice of k's own buffer valid until the next call.
func (k *keepAlive) Next() ([]byte, error) {
	if err := k.fill(); err != nil {
		return nil, err
	}
	p := k.out[k.off:]
	k.off = len(k.out)
	return p, nil
}

// fill waits until k.out holds bytes not yet returned, or returns the
// node's error once they are all returned.
func (k *keepAlive) fill() error {
	for k.off == len(k.out) {
		if k.err != nil {
			return k.err
		}
		k.out, k.off = k.out[:0], 0
		if !k.pending {
			k.pending = true
			k.next <- struct{}{}
		}
		if k.timer == nil {
			k.timer = time.NewTimer(k.every)
		} else {
			k.timer.Reset(k.every)
		}
		select {
		case r := <-k.got:
			k.timer.Stop()
			k.pending = false
			if r.n > 0 {
				k.out = k.s.Filter(k.out, k.buf[:r.n], time.Now())
			}
			if r.err != nil {
				k.out = k.s.Flush(k.out)
				k.err = r.err
			}
		case <-k.timer.C:
			if k.s.AtBoundary() {
				k.out = append(k.out, openai.KeepAlive...)
				k.sent.Add(1)
			}
		}
	}
	return nil
}

// running reports whether the pump may be inside a read of the node's
// body (the caller must make it return before stop).
func (k *keepAlive) running() bool { return k.pending }

// stop ends the pump and waits for it. A read still pending must have
// been made to return (the upstream call aborted).
func (k *keepAlive) stop() {
	close(k.next)
	<-k.done
	if k.timer != nil {
		k.timer.Stop()
	}
}

// stopKeepAlive ends the exchange's keep-alive pump: a read still in
// progress is ended by aborting the node's connection (the stream did not
// end: the connection is not reused).
func (x *Exchange) stopKeepAlive() {
	if x.ka.running() {
		x.call.Abort()
	}
	x.ka.stop()
	x.ka = nil
}
