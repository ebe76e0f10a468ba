// Package testnode is a hand-written TCP peer for tests: a loopback
// listener whose connections a test function serves, torn down with the
// test.
package testnode

import (
	"net"
	"sync"
	"testing"
)

// Serve listens on a loopback port of network ("tcp" or "tcp4") and
// serves each connection with handle on a goroutine of its own; a nil
// handle accepts connections and never answers (a stopped process whose
// kernel still completes handshakes). When the test ends it closes the
// listener and every connection and waits for the accept loop and the
// handlers. It returns the listener's address.
func Serve(t testing.TB, network string, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen(network, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  []net.Conn
		closed bool // set by the cleanup: a connection accepted after it is closed at once
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				_ = c.Close()
				continue
			}
			conns = append(conns, c)
			mu.Unlock()
			if handle == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}
