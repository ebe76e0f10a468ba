package upstream

import (
	"net"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/balancer"
)

// TestCloseStale: an idle connection is kept until it has been idle for
// idleFor, counted on the monotonic clock from its return to the pool.
func TestCloseStale(t *testing.T) {
	n := New("n", balancer.Address{HTTP: silentNode(t)}, &Config{MaxConns: 4})
	defer n.Close()
	c, reused, err := n.pool.get()
	if err != nil || reused {
		t.Fatalf("get: %v, reused %v", err, reused)
	}
	n.pool.put(c)
	idle := func() int {
		n.pool.mu.Lock()
		defer n.pool.mu.Unlock()
		return len(n.pool.idle)
	}
	n.CloseStale(time.Now().Add(idleFor - time.Second))
	if idle() != 1 {
		t.Fatalf("a connection idle for less than %v was closed", idleFor)
	}
	n.CloseStale(time.Now().Add(idleFor + time.Second))
	if idle() != 0 {
		t.Fatalf("a connection idle for more than %v was kept", idleFor)
	}
}

// silentNode is the address of a loopback listener that accepts
// connections and never answers; the test's cleanup closes it and them.
func silentNode(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { _ = ln.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return ln.Addr().String()
}
