//go:build !race

package frontend

import (
	"net"
	"testing"
)

// TestGoneAllocs: the watchdog's look at a client connection allocates
// nothing (it runs every 200 ms for every request waiting or streaming),
// and sees a client that closed its end.
func TestGoneAllocs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	cc := newClientConn(server)
	defer cc.Close()
	if cc.Gone() {
		t.Fatal("a connected client is gone")
	}
	if n := testing.AllocsPerRun(100, func() { cc.Gone() }); n != 0 {
		t.Fatalf("Gone allocates %v times", n)
	}
	client.Close()
	if !cc.Gone() {
		t.Fatal("a client that closed is not gone")
	}
}
