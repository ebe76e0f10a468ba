package resource_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// TestPeerDNS builds a two-instance tier from a DNS name ("localhost"): each
// instance finds the other by resolving it, and a node heard by one is
// listed by the other.
func TestPeerDNS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := net.DefaultResolver.LookupHost(ctx, "localhost"); err != nil {
		t.Skipf("no resolver for localhost: %v", err)
	}
	lns := listenAll(t, 2)
	servers := addrs(lns)
	port := func(i int) string { return strconv.Itoa(lns[i].Addr().(*net.TCPAddr).Port) }
	for i, ln := range lns {
		cfg := baseConfig(nil)
		cfg.PeerDNS = net.JoinHostPort("localhost", port(1-i))
		cfg.PeerDNSInterval = 100 * time.Millisecond
		startInstance(t, ln, cfg)
	}
	startAgent(t, agentConfig(servers[:1], "llama", "dns-node", 9400))
	w := startWatcher(t, servers[1:], "llama", nil)
	if _, err := w.waitFor(ctx, func(l *discovery.OnlineList) bool { return countEligible(l) == 1 }); err != nil {
		t.Fatal(err)
	}
}
