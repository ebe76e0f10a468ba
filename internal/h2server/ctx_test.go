package h2server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestStreamCtx: a stream's context is done once cancelled (Done asked
// before or after), contexts derived from it follow it, and AfterFunc
// keeps context.AfterFunc's contract: f runs once done unless stopped
// first, and right away on a context already done.
func TestStreamCtx(t *testing.T) {
	var c streamCtx
	early := c.Done()
	child, stopChild := context.WithCancel(&c)
	defer stopChild()
	ran := make(chan string, 3)
	stop := context.AfterFunc(&c, func() { ran <- "kept" })
	stopped := context.AfterFunc(&c, func() { ran <- "stopped" })
	if !stopped() {
		t.Fatal("stop before the cancel reported false")
	}
	if c.Err() != nil || child.Err() != nil {
		t.Fatalf("done before the cancel: %v, %v", c.Err(), child.Err())
	}
	c.cancel()
	c.cancel() // a second cancel does nothing
	for _, ch := range []<-chan struct{}{early, c.Done(), child.Done()} {
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("not done after the cancel")
		}
	}
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(child.Err(), context.Canceled) {
		t.Fatalf("errors %v, %v; want Canceled", c.Err(), child.Err())
	}
	if got := <-ran; got != "kept" {
		t.Fatalf("AfterFunc ran %q", got)
	}
	if stop() {
		t.Fatal("stop after the function ran reported true")
	}
	context.AfterFunc(&c, func() { ran <- "late" })
	if got := <-ran; got != "late" {
		t.Fatalf("AfterFunc on a done context ran %q", got)
	}
	select {
	case got := <-ran:
		t.Fatalf("%q ran too", got)
	default:
	}

	var d streamCtx // Done asked only after the cancel
	d.cancel()
	select {
	case <-d.Done():
	default:
		t.Fatal("Done after the cancel is not closed")
	}
}
