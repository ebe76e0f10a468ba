package deadline

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// loopPair returns both ends of a loopback TCP connection.
func loopPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(acc)
			return
		}
		acc <- c
	}()
	client, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	server, ok := <-acc
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// lazyKinds wraps c in each connection type with lazy deadlines.
func lazyKinds(c net.Conn) map[string]net.Conn {
	return map[string]net.Conn{
		"Client":   &Client{Conn: c},
		"Upstream": &Upstream{Conn: c},
	}
}

// TestLazyDeadlineLaterKept: a later deadline replacing an earlier one
// is honoured: the read does not time out before it, and does at it.
func TestLazyDeadlineLaterKept(t *testing.T) {
	for name := range lazyKinds(nil) {
		t.Run(name, func(t *testing.T) {
			a, _ := loopPair(t)
			c := lazyKinds(a)[name]
			start := time.Now()
			if err := c.SetReadDeadline(start.Add(30 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			want := start.Add(250 * time.Millisecond)
			if err := c.SetReadDeadline(want); err != nil {
				t.Fatal(err)
			}
			_, err := c.Read(make([]byte, 8))
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read: %v, want a timeout", err)
			}
			if now := time.Now(); now.Before(want) {
				t.Fatalf("timed out %v before the deadline asked for", want.Sub(now))
			}
		})
	}
}

// TestLazyDeadlineEarlierApplies: an earlier deadline takes effect at once.
func TestLazyDeadlineEarlierApplies(t *testing.T) {
	for name := range lazyKinds(nil) {
		t.Run(name, func(t *testing.T) {
			a, _ := loopPair(t)
			c := lazyKinds(a)[name]
			_ = c.SetReadDeadline(time.Now().Add(time.Minute))
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			done := make(chan error, 1)
			go func() { _, err := c.Read(make([]byte, 8)); done <- err }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			select {
			case err := <-done:
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("read: %v, want a timeout", err)
				}
			case <-ctx.Done():
				t.Fatal("the earlier deadline did not apply")
			}
		})
	}
}

// TestLazyDeadlineDataAfterSpurious: data that arrives after the earlier
// (replaced) deadline but before the one asked for is read, not lost; so
// is data with no deadline at all after one was in force.
func TestLazyDeadlineDataAfterSpurious(t *testing.T) {
	for name := range lazyKinds(nil) {
		for _, final := range []time.Duration{2 * time.Second, 0} {
			t.Run(name, func(t *testing.T) {
				a, b := loopPair(t)
				c := lazyKinds(a)[name]
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				if final > 0 {
					_ = c.SetReadDeadline(time.Now().Add(final))
				} else {
					_ = c.SetReadDeadline(time.Time{})
				}
				go func() {
					time.Sleep(120 * time.Millisecond) // past the replaced deadline
					_, _ = b.Write([]byte("hello"))
				}()
				_ = b.SetDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 5)
				if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
					t.Fatalf("read %q, %v", buf, err)
				}
			})
		}
	}
}

// TestLazyWriteDeadline: write deadlines are lazy as read deadlines are.
// A later deadline replacing an earlier one is honoured by a write to a
// peer that reads nothing (it times out at the later one, not before); a
// write that passes the replaced deadline while the peer is slow, and
// ends before the one asked for, completes whole.
func TestLazyWriteDeadline(t *testing.T) {
	big := make([]byte, 64<<20) // more than loopback socket buffers hold
	for name := range lazyKinds(nil) {
		t.Run(name+"/stalled", func(t *testing.T) {
			a, _ := loopPair(t)
			c := lazyKinds(a)[name]
			start := time.Now()
			_ = c.SetWriteDeadline(start.Add(30 * time.Millisecond))
			want := start.Add(300 * time.Millisecond)
			_ = c.SetWriteDeadline(want)
			_, err := c.Write(big)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write: %v, want a timeout", err)
			}
			if now := time.Now(); now.Before(want) {
				t.Fatalf("timed out %v before the deadline asked for", want.Sub(now))
			}
		})
		t.Run(name+"/slow-reader", func(t *testing.T) {
			a, b := loopPair(t)
			c := lazyKinds(a)[name]
			_ = c.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
			_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
			read := make(chan int64, 1)
			go func() {
				time.Sleep(120 * time.Millisecond) // past the replaced deadline
				_ = b.SetReadDeadline(time.Now().Add(time.Minute))
				n, _ := io.Copy(io.Discard, io.LimitReader(b, int64(len(big))))
				read <- n
			}()
			n, err := c.Write(big)
			if err != nil || n != len(big) {
				t.Fatalf("wrote %d of %d: %v", n, len(big), err)
			}
			if got := <-read; got != int64(len(big)) {
				t.Fatalf("the peer read %d of %d", got, len(big))
			}
		})
	}
}

// TestDeadlineConnTimeouts: the first read after a write waits at most
// FirstByte, later reads at most Idle, and never past the outer deadline.
func TestDeadlineConnTimeouts(t *testing.T) {
	tests := []struct {
		name        string
		ttfb, idle  time.Duration
		outer       time.Duration // 0: none
		firstOK     bool          // the peer answers the first read in time
		wantAtLeast time.Duration
	}{
		{"first byte", 150 * time.Millisecond, time.Minute, 0, false, 150 * time.Millisecond},
		{"idle", time.Minute, 150 * time.Millisecond, 0, true, 150 * time.Millisecond},
		{"outer before first byte", time.Minute, time.Minute, 150 * time.Millisecond, false, 150 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := loopPair(t)
			c := &Upstream{Conn: a, FirstByte: tc.ttfb, Idle: tc.idle}
			for round := 0; round < 2; round++ { // twice: the second round runs on kept deadlines
				var outer time.Time
				if tc.outer > 0 {
					outer = time.Now().Add(tc.outer)
				}
				_ = c.SetWriteDeadline(outer)
				_ = c.SetReadDeadline(outer)
				if _, err := c.Write([]byte("req")); err != nil {
					t.Fatal(err)
				}
				_ = b.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(b, make([]byte, 3)); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 1)
				if tc.firstOK {
					_, _ = b.Write([]byte("x"))
					if _, err := c.Read(buf); err != nil {
						t.Fatalf("round %d: first read: %v", round, err)
					}
				}
				start := time.Now()
				_, err := c.Read(buf)
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("round %d: read: %v, want a timeout", round, err)
				}
				if d := time.Since(start); d < tc.wantAtLeast-10*time.Millisecond {
					t.Fatalf("round %d: timed out after %v, before %v", round, d, tc.wantAtLeast)
				}
			}
		})
	}
}
