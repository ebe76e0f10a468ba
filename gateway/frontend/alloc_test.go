//go:build !race

package frontend

import "testing"

// TestGoneAllocs: the watchdog's look at a client connection allocates
// nothing (it runs every 200 ms for every request waiting or streaming),
// and sees a client that closed its end.
func TestGoneAllocs(t *testing.T) {
	client, server := tcpPair(t)
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
