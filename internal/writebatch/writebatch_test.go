package writebatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	client, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() {
		_ = client.Close()
		_ = r.c.Close()
	})
	return client, r.c
}

// gatedConn counts the writes that reach the socket and can hold them:
// while gate is set, each write first reports on entered and waits for
// the gate to be closed.
type gatedConn struct {
	net.Conn
	mu      sync.Mutex
	writes  int
	gate    chan struct{}
	entered chan struct{}
}

func (g *gatedConn) Write(p []byte) (int, error) {
	g.mu.Lock()
	g.writes++
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		g.entered <- struct{}{}
		<-gate
	}
	return g.Conn.Write(p)
}

func (g *gatedConn) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.writes
}

// readN reads n bytes from c within 10 s.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return buf
}

// TestConcurrentWritesArriveWholeAndInOrder: many writers, each message
// arrives in one piece and each writer's messages in its order.
func TestConcurrentWritesArriveWholeAndInOrder(t *testing.T) {
	a, b := pair(t)
	w := New(a, 10*time.Second)
	const writers, each, size = 16, 200, 100
	var wg sync.WaitGroup
	for id := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := make([]byte, size)
			for seq := range each {
				binary.BigEndian.PutUint32(msg[0:], uint32(id))
				binary.BigEndian.PutUint32(msg[4:], uint32(seq))
				for i := 8; i < size; i++ {
					msg[i] = byte(id + seq + i)
				}
				if _, err := w.Write(msg); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		}()
	}
	got := readN(t, b, writers*each*size)
	wg.Wait()
	next := make([]int, writers)
	for off := 0; off < len(got); off += size {
		m := got[off : off+size]
		id, seq := int(binary.BigEndian.Uint32(m[0:])), int(binary.BigEndian.Uint32(m[4:]))
		if id >= writers || seq != next[id] {
			t.Fatalf("message at %d: writer %d seq %d, want seq %d", off, id, seq, next[id])
		}
		for i := 8; i < size; i++ {
			if m[i] != byte(id+seq+i) {
				t.Fatalf("message %d/%d torn at byte %d", id, seq, i)
			}
		}
		next[id]++
	}
}

// TestWritesDuringAFlushLeaveInOneWrite: what is written while the
// socket write is busy goes out in one more system call.
func TestWritesDuringAFlushLeaveInOneWrite(t *testing.T) {
	a, b := pair(t)
	g := &gatedConn{Conn: a, gate: make(chan struct{}), entered: make(chan struct{})}
	w := New(g, 10*time.Second)
	if _, err := w.Write([]byte("first;")); err != nil {
		t.Fatal(err)
	}
	<-g.entered // the flusher holds "first;" in the socket write
	var want bytes.Buffer
	want.WriteString("first;")
	for i := range 10 {
		msg := []byte{'m', byte('0' + i), ';'}
		want.Write(msg)
		if _, err := w.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	g.mu.Lock()
	gate := g.gate
	g.gate = nil
	g.mu.Unlock()
	close(gate)
	if got := readN(t, b, want.Len()); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("read %q, want %q", got, want.Bytes())
	}
	if n := g.count(); n != 2 {
		t.Fatalf("%d socket writes for 11 writes, want 2 (the held one and one batch)", n)
	}
	// Once the flusher ends, the idle connection holds no buffer.
	for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
		w.mu.Lock()
		flushing, buf, spare := w.flushing, w.buf, w.spare
		w.mu.Unlock()
		if !flushing {
			if buf != nil || spare != nil {
				t.Fatalf("an idle connection holds buffers: %v, %v", buf, spare)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the flusher did not end")
		}
	}
}

// TestCloseWritesWhatIsBuffered: bytes written before Close reach the
// peer, then EOF.
func TestCloseWritesWhatIsBuffered(t *testing.T) {
	a, b := pair(t)
	w := New(a, 10*time.Second)
	msg := bytes.Repeat([]byte("x"), 100<<10)
	if _, err := w.Write(msg); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_ = b.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(b)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("read %d bytes (err %v), want %d then EOF", len(got), err, len(msg))
	}
	if _, err := w.Write(msg); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v, want net.ErrClosed", err)
	}
}

// TestStalledPeerEndsTheConnection: a peer that reads nothing fails the
// flusher's write after the timeout; later writes fail, and the reader
// of the connection learns it is closed.
func TestStalledPeerEndsTheConnection(t *testing.T) {
	a, _ := pair(t) // the peer never reads
	w := New(a, 200*time.Millisecond)
	chunk := make([]byte, 64<<10)
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		_, err = w.Write(chunk)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("writes to a stalled peer ended with %v, want a timeout", err)
	}
	_ = w.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, rerr := w.Read(make([]byte, 1)); !errors.Is(rerr, net.ErrClosed) {
		t.Fatalf("read after the failed flush: %v, want net.ErrClosed", rerr)
	}
}

// TestCloseIsBoundedWithAStalledPeer: Close gives up on buffered bytes a
// stalled peer does not take within its grace.
func TestCloseIsBoundedWithAStalledPeer(t *testing.T) {
	a, _ := pair(t) // the peer never reads
	g := &gatedConn{Conn: a, gate: make(chan struct{}), entered: make(chan struct{})}
	w := New(g, time.Hour)
	// More than the loopback socket buffers hold: the socket write
	// blocks until a deadline ends it.
	if _, err := w.Write(make([]byte, 64<<20)); err != nil {
		t.Fatal(err)
	}
	<-g.entered
	g.mu.Lock()
	gate := g.gate
	g.gate = nil
	g.mu.Unlock()
	close(gate)
	start := time.Now()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > closeGrace+5*time.Second {
		t.Fatalf("Close took %v with a stalled peer; its grace is %v", d, closeGrace)
	}
}

// TestWriteDeadline: a passed write deadline fails Write; Wrap passes
// writes and deadlines straight through until Start.
func TestWriteDeadline(t *testing.T) {
	a, b := pair(t)
	g := &gatedConn{Conn: a}
	w := Wrap(g, 10*time.Second)
	if _, err := w.Write([]byte("direct")); err != nil {
		t.Fatal(err)
	}
	if n := g.count(); n != 1 {
		t.Fatalf("unbatched write made %d socket writes, want 1 before Write returns", n)
	}
	readN(t, b, len("direct"))
	w.Start()
	_ = w.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := w.Write([]byte("late")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past its deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	_ = w.SetWriteDeadline(time.Time{})
	if _, err := w.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, b, len("again")); string(got) != "again" {
		t.Fatalf("read %q", got)
	}
}

// BenchmarkWrite is the cost of one batched write of a small frame,
// flushes included, to a peer that reads everything. The writer outruns
// the socket here, so batches grow past keepBuffer and their buffers are
// dropped: the bytes per op are that, amortised (0 allocations per op).
func BenchmarkWrite(b *testing.B) {
	a, peer := pair(b)
	go func() { _, _ = io.Copy(io.Discard, peer) }()
	w := New(a, 10*time.Second)
	frame := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := w.Write(frame); err != nil {
			b.Fatal(err)
		}
	}
}
