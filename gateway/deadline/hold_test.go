package deadline

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// echoOnce reads want bytes from c and answers them back, once.
func echoOnce(t *testing.T, c net.Conn, want int) <-chan error {
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, want)
		if _, err := io.ReadFull(c, buf); err != nil {
			done <- err
			return
		}
		_, err := c.Write(buf)
		done <- err
	}()
	return done
}

// TestHoldWritesOnRead: a held write goes out with the read for its answer,
// and the answer comes back; repeatedly on one connection, as a pooled
// upstream connection is used.
func TestHoldWritesOnRead(t *testing.T) {
	a, b := loopPair(t)
	c := &Upstream{Conn: a, FirstByte: 5 * time.Second}
	for i := range 50 {
		msg := bytes.Repeat([]byte{byte('a' + i%26)}, 100+i)
		if !c.Hold() {
			t.Fatal("Hold: false on a TCP connection")
		}
		done := echoOnce(t, b, len(msg))
		if n, err := c.Write(msg); n != len(msg) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("round %d: read: %v", i, err)
		}
		c.Unhold()
		if !bytes.Equal(got, msg) {
			t.Fatalf("round %d: got %q, want %q", i, got, msg)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestHoldTwoWritesSentInOrder: a second Write sends the held one first
// (a request larger than the writer's buffer).
func TestHoldTwoWritesSentInOrder(t *testing.T) {
	a, b := loopPair(t)
	c := &Upstream{Conn: a}
	c.Hold()
	done := echoOnce(t, b, 6)
	if _, err := c.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("def")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 6)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	c.Unhold()
	if string(got) != "abcdef" {
		t.Fatalf("got %q, want abcdef", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestHoldLargerThanSocketBuffer: a held write the socket cannot take at
// once is finished through the poller, and the answer is still read.
func TestHoldLargerThanSocketBuffer(t *testing.T) {
	a, b := loopPair(t)
	c := &Upstream{Conn: a}
	msg := bytes.Repeat([]byte("x"), 8<<20) // far above loopback's socket buffers
	c.Hold()
	done := echoOnce(t, b, len(msg))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	readErr := make(chan error, 1)
	go func() { _, err := io.ReadFull(c, got); readErr <- err }()
	// The echo answers only after reading everything, so the read above
	// can only end once the whole held write went out.
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	c.Unhold()
	if !bytes.Equal(got, msg) {
		t.Fatal("answer differs from the request")
	}
}

// TestHoldPeerClosedBeforeWrite: the node closed the idle connection
// before the held write (its FIN came before the read began, so the
// poller's readiness for it is forgotten). The write draws a reset, which
// wakes the read: it fails at once, not at its deadline.
func TestHoldPeerClosedBeforeWrite(t *testing.T) {
	a, b := loopPair(t)
	c := &Upstream{Conn: a}
	_ = b.Close()
	// Wait until the FIN is here: a read sees EOF (and records it).
	if _, err := a.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read after the peer closed: %v, want EOF", err)
	}
	c.Hold()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	n, err := c.Read(make([]byte, 64))
	c.Unhold()
	if n != 0 || err == nil {
		t.Fatalf("Read = %d, %v; want an error", n, err)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("Read error %v; want EOF, ECONNRESET or EPIPE", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("Read took %v: it waited for the deadline", d)
	}
}

// TestHoldDeadline: a held exchange whose answer never comes times out at
// the deadline asked for, including a lazy (later) one after a spurious
// wake-up, and the held bytes were sent.
func TestHoldDeadline(t *testing.T) {
	a, b := loopPair(t)
	c := &Upstream{Conn: a}
	if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	want := time.Now().Add(80 * time.Millisecond)
	if err := c.SetReadDeadline(want); err != nil { // later: lazily kept at 20 ms
		t.Fatal(err)
	}
	c.Hold()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Read(make([]byte, 8))
	c.Unhold()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read error %v, want a timeout", err)
	}
	if time.Now().Before(want) {
		t.Fatal("timed out before the deadline asked for")
	}
	got := make([]byte, 4)
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "ping" {
		t.Fatalf("peer got %q, %v; want ping", got, err)
	}
}

// TestUnholdDropsUnsent: an exchange that fails before its read leaves
// nothing for the next one to send.
func TestUnholdDropsUnsent(t *testing.T) {
	a, b := loopPair(t)
	c := &Upstream{Conn: a}
	c.Hold()
	if _, err := c.Write([]byte("stale")); err != nil {
		t.Fatal(err)
	}
	c.Unhold()
	if _, err := c.Write([]byte("fresh")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "fresh" {
		t.Fatalf("peer got %q, %v; want fresh", got, err)
	}
}
