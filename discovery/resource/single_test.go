package resource_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

func TestSingleInstanceDrain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lns := listenAll(t, 1)
	servers := addrs(lns)
	in := startInstance(t, lns[0], baseConfig(nil))
	_ = in
	var agents []*testAgent
	for i := range 3 {
		agents = append(agents, startAgent(t, agentConfig(servers, "llama", fmt.Sprintf("n%d", i), 9000+i)))
	}
	w := startWatcher(t, servers, "llama", nil)
	if _, err := w.waitFor(ctx, func(l *discovery.OnlineList) bool { return countEligible(l) == 3 }); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	st, err := agents[0].a.Drain(ctx)
	if err != nil {
		t.Fatalf("drain: %v (%+v)", err, st)
	}
	if !st.Done {
		t.Fatalf("drain returned not done: %+v", st)
	}
	w.mu.Lock()
	l := w.last
	w.mu.Unlock()
	if eligible(&l, "n0") {
		t.Fatalf("drain returned but the watcher still routes to n0 (version %d)", l.Version)
	}
	t.Logf("drain acknowledged after %v", time.Since(start))
	agents[1].stop() // sends offline
	if _, err := w.waitFor(ctx, func(l *discovery.OnlineList) bool { return !listed(l, "n1") }); err != nil {
		t.Fatal(err)
	}
}

// TestPullModeClient: a client that only pulls (no long-poll) still gets
// changes and acknowledges them explicitly, so drains complete.
func TestPullModeClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lns := listenAll(t, 1)
	servers := addrs(lns)
	startInstance(t, lns[0], baseConfig(nil))
	a := startAgent(t, agentConfig(servers, "llama", "p0", 9300))
	startAgent(t, agentConfig(servers, "llama", "p1", 9301))
	w := startWatcher(t, servers, "llama", func(c *discovery.ClientConfig) {
		c.WatchWait = -1
		c.PullInterval = 200 * time.Millisecond
	})
	if _, err := w.waitFor(ctx, func(l *discovery.OnlineList) bool { return countEligible(l) == 2 }); err != nil {
		t.Fatal(err)
	}
	st, err := a.a.Drain(ctx)
	if err != nil || !st.Done {
		t.Fatalf("drain with a pulling client: %v %+v", err, st)
	}
	w.mu.Lock()
	l := w.last
	w.mu.Unlock()
	if eligible(&l, "p0") {
		t.Fatal("drain returned before the pulling client applied it")
	}
}
