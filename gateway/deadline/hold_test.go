package deadline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// queued waits until c's socket has bytes to read (FIONREAD), without
// reading them.
func queued(t *testing.T, c net.Conn) {
	t.Helper()
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		_ = raw.Control(func(fd uintptr) {
			n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ)
		})
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no bytes arrived")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClientHeldAnswer: a held answer goes out with the read for the next
// request, repeatedly; a second write sends both in order.
func TestClientHeldAnswer(t *testing.T) {
	a, b := loopPair(t)
	c := &Client{Conn: a}
	if !c.EnableHold() {
		t.Fatal("EnableHold: false on a TCP connection")
	}
	br := make([]byte, 64)
	for i := range 20 {
		req := fmt.Sprintf("request %d", i)
		if _, err := io.WriteString(b, req); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(br)
		if err != nil || string(br[:n]) != req {
			t.Fatalf("round %d: read %q, %v", i, br[:n], err)
		}
		c.HoldNextWrite(true)
		answer := fmt.Sprintf("answer %d", i)
		if _, err := io.WriteString(c, answer); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(answer))
		_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
		readDone := make(chan error, 1)
		go func() { _, err := io.ReadFull(b, got); readDone <- err }()
		// The answer leaves when the server reads again.
		next := make(chan error, 1)
		go func() {
			n, err := c.Read(br)
			if err == nil && string(br[:n]) != "next" {
				err = fmt.Errorf("read %q, want next", br[:n])
			}
			next <- err
		}()
		if err := <-readDone; err != nil || string(got) != answer {
			t.Fatalf("round %d: client got %q, %v", i, got, err)
		}
		if _, err := io.WriteString(b, "next"); err != nil {
			t.Fatal(err)
		}
		if err := <-next; err != nil {
			t.Fatal(err)
		}
	}
	c.HoldNextWrite(true)
	_, _ = io.WriteString(c, "one ")
	_, _ = io.WriteString(c, "two")
	got := make([]byte, len("one two"))
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "one two" {
		t.Fatalf("two writes: %q, %v", got, err)
	}
}

// TestClientHeldAnswerPipelined: the client's next request came before
// the held answer went out (it pipelined), so the poller's readiness for
// it is forgotten: the read still gets it, within holdGuard.
func TestClientHeldAnswerPipelined(t *testing.T) {
	a, b := loopPair(t)
	c := &Client{Conn: a}
	c.EnableHold()
	if err := c.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(b, "first"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "first" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if _, err := io.WriteString(b, "second"); err != nil { // pipelined
		t.Fatal(err)
	}
	queued(t, a)
	c.HoldNextWrite(true)
	if _, err := io.WriteString(c, "answer"); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "second" {
		t.Fatalf("read %q, %v; want second", buf[:n], err)
	}
	got := make([]byte, len("answer"))
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil || string(got) != "answer" {
		t.Fatalf("client got %q, %v", got, err)
	}
}

// TestClientCloseSendsHeld: Close (from another goroutine, as fasthttp's
// Shutdown closes idle connections) sends a held answer first.
func TestClientCloseSendsHeld(t *testing.T) {
	a, b := loopPair(t)
	c := &Client{Conn: a}
	c.EnableHold()
	c.HoldNextWrite(true)
	if _, err := io.WriteString(c, "answer"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "answer" {
		t.Fatalf("client got %q, %v; want the held answer, then EOF", got, err)
	}
}

// TestClientHoldOnlyWhenAsked: without HoldNextWrite, or past maxHeld,
// writes go out at once.
func TestClientHoldOnlyWhenAsked(t *testing.T) {
	a, b := loopPair(t)
	c := &Client{Conn: a}
	c.EnableHold()
	big := bytes.Repeat([]byte("y"), maxHeld+1)
	for _, p := range [][]byte{[]byte("plain"), big} {
		c.HoldNextWrite(len(p) > maxHeld)
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(p))
		_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("%d bytes: not written at once: %v", len(p), err)
		}
	}
}

// TestClientHoldBacksOff: after a held answer's wait reached the guard (a
// client slower than holdGuard), the next holdBackoff answers go out at
// once, and holding resumes after them.
func TestClientHoldBacksOff(t *testing.T) {
	a, b := loopPair(t)
	c := &Client{Conn: a}
	c.EnableHold()
	buf := make([]byte, 64)
	c.HoldNextWrite(true)
	if _, err := io.WriteString(c, "answer"); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("answer"))
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(buf) // sends the answer; the request comes after the guard
		read <- err
	}()
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	// The request comes only once the guard has fired.
	for c.holdSkip.Load() != holdBackoff {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := io.WriteString(b, "late request"); err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil {
		t.Fatal(err)
	}
	for i := range holdBackoff {
		c.HoldNextWrite(true)
		if c.holdNext {
			t.Fatalf("answer %d after the guard fired is held", i)
		}
	}
	c.HoldNextWrite(true)
	if !c.holdNext {
		t.Fatal("holding did not resume after the backoff")
	}
}

// TestClientCloseDuringHeldRead: Close racing with the read that sends a
// held answer never loses the answer: either Close sends it or the read
// did before the socket closed.
func TestClientCloseDuringHeldRead(t *testing.T) {
	for i := range 200 {
		a, b := loopPair(t)
		c := &Client{Conn: a}
		c.EnableHold()
		c.HoldNextWrite(true)
		answer := fmt.Sprintf("answer %d", i)
		if _, err := io.WriteString(c, answer); err != nil {
			t.Fatal(err)
		}
		readDone := make(chan struct{})
		go func() {
			_, _ = c.Read(make([]byte, 16))
			close(readDone)
		}()
		_ = c.Close()
		<-readDone
		_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := io.ReadAll(b)
		if string(got) != answer {
			t.Fatalf("round %d: client got %q, %v; want %q", i, got, err, answer)
		}
	}
}
