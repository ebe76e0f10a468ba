package h2server

import (
	"context"
	"sync"
	"time"
)

// streamCtx is a stream's context, done when the stream ends or is
// reset. It lives inside the stream: no allocation but its Done channel,
// made when first asked for (a context.WithCancel per stream was 1.7 % of
// a proxied gRPC call's CPU). It offers the context package AfterFunc,
// so that contexts derived from it follow it without a goroutine each.
type streamCtx struct {
	mu    sync.Mutex
	done  chan struct{} // nil until Done, or closed by cancel
	err   error
	after []*afterFunc
}

// afterFunc is one AfterFunc registration; ran is set once it ran or
// was stopped.
type afterFunc struct {
	f   func()
	ran bool
}

// closedDone is Done's channel for a context cancelled before anyone
// asked for it.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *streamCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *streamCtx) Value(any) any               { return nil }

func (c *streamCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			c.done = closedDone
		} else {
			c.done = make(chan struct{})
		}
	}
	return c.done
}

func (c *streamCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// AfterFunc runs f on its own goroutine once the context is done, unless
// stop is called first (context.AfterFunc's contract).
func (c *streamCtx) AfterFunc(f func()) (stop func() bool) {
	a := &afterFunc{f: f}
	c.mu.Lock()
	if c.err != nil {
		a.ran = true
		c.mu.Unlock()
		go f()
	} else {
		c.after = append(c.after, a)
		c.mu.Unlock()
	}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if a.ran {
			return false
		}
		a.ran = true
		for i, x := range c.after {
			if x == a {
				c.after = append(c.after[:i], c.after[i+1:]...)
				break
			}
		}
		return true
	}
}

// cancel makes the context done, once, and starts its AfterFunc
// functions.
func (c *streamCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = context.Canceled
	if c.done != nil {
		close(c.done)
	}
	for _, a := range c.after {
		if !a.ran {
			a.ran = true
			go a.f()
		}
	}
	c.after = nil
}
