package testlog

import (
	"context"
	"testing"
	"time"
)

// TestWaitFor: WaitFor returns once a write brings the text, even one
// split over two writes, and gives up when its context ends.
func TestWaitFor(t *testing.T) {
	var b Buffer
	_, _ = b.Write([]byte("gateway: reload "))
	go func() { _, _ = b.Write([]byte("refused\n")) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !b.WaitFor(ctx, "reload refused") {
		t.Fatal("the text came, WaitFor gave up")
	}
	short, stop := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer stop()
	if b.WaitFor(short, "never written") {
		t.Fatal("WaitFor found text that was never written")
	}
}
