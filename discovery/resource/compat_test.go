package resource

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/agent"
)

// serveOn runs s on a fresh loopback listener until the test ends.
func serveOn(t *testing.T, ln net.Listener, s *Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func listeners(t *testing.T, n int) ([]net.Listener, []string) {
	t.Helper()
	var lns []net.Listener
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return lns, addrs
}

// waitList polls c until cond holds for app's list (the client's own
// goroutines fill it; the deadline bounds the wait).
func waitList(ctx context.Context, t *testing.T, c *discovery.Client, app, what string, cond func(l discovery.OnlineList) bool) discovery.OnlineList {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		l, _ := c.List(app)
		if cond(l) {
			return l
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not met; list %+v", what, l)
		case <-tick.C:
		}
	}
}

func nodeOf(l discovery.OnlineList, id string) *discovery.Node {
	for _, n := range l.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// TestWireVersionCompatibility runs a tier of one instance that only speaks
// wire version 1 (standing in for a Resource from before issue 13: it hands
// the version-2 preamble to its HTTP server, which answers 400) and one
// current instance, peered. A current agent falls back to version 1 with
// the old instance; a version-1 agent (raw frames, as old agents send them)
// is served by the current one; both clients see every node, with loads as
// each encoding can carry them.
func TestWireVersionCompatibility(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	lns, addrs := listeners(t, 2)
	cfg := Config{Token: "k", Peers: addrs, Logger: quiet}
	old, err := newServer(cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	old.wireMax = discovery.Version1
	cur, err := newServer(cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, lns[0], old)
	serveOn(t, lns[1], cur)

	load := discovery.Load{Utilisation: discovery.Known(0.5), Running: discovery.Known(0), Waiting: discovery.Known(2), Readiness: discovery.ReadinessReady}
	for i, srv := range addrs {
		id := []string{"to-old", "to-new"}[i]
		a, err := agent.New(agent.Config{Servers: []string{srv}, Token: "k", NodeID: id, App: "m",
			Addresses: map[string]string{"http": "127.0.0.1:80"}, Load: agent.StaticLoad(load), InitialDelay: -1, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		actx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = a.Run(actx); close(done) }()
		t.Cleanup(func() { stop(); <-done })
	}
	// An old agent: version-1 preamble and frames.
	c, err := net.Dial("tcp", addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if _, err := discovery.Handshake(c, br, discovery.Version1, discovery.Hello{Role: discovery.RoleAgent, Token: "k"}); err != nil {
		t.Fatalf("version-1 handshake with the current instance: %v", err)
	}
	var mu sync.Mutex
	beat := func(seq uint64) {
		hb := discovery.Heartbeat{ID: "old-agent", App: "m", Addresses: map[string]string{"http": "127.0.0.1:81"}, State: discovery.StateReady,
			Load: discovery.Load{Utilisation: discovery.Known(0.25), Running: discovery.Known(3)}, Incarnation: 1, Seq: seq}
		mu.Lock()
		defer mu.Unlock()
		_, _ = c.Write(discovery.AppendHeartbeatFrame(nil, &hb, discovery.Version1))
	}
	beat(1)
	go func() { _, _ = io.Copy(io.Discard, br) }()
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	go func() {
		for seq := uint64(2); ; seq++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				beat(seq)
			}
		}
	}()

	for i, srv := range addrs {
		cl, err := discovery.NewClient(discovery.ClientConfig{Servers: []string{srv}, Token: "k", Apps: []string{"m"}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		cctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = cl.Run(cctx); close(done) }()
		t.Cleanup(func() { stop(); <-done })
		l := waitList(ctx, t, cl, "m", "every node on both instances", func(l discovery.OnlineList) bool { return len(l.Eligible()) == 3 })
		toNew, toOld, oldAgent := nodeOf(l, "to-new"), nodeOf(l, "to-old"), nodeOf(l, "old-agent")
		if oldAgent.Load.Running != discovery.Known(3) || oldAgent.Load.Readiness != discovery.ReadinessUnknown {
			t.Errorf("client %d: a version-1 agent's load: %+v", i, oldAgent.Load)
		}
		// The old instance stores version-1 loads: 0 running reads as
		// unknown, readiness is lost; both encodings keep utilisation.
		if toOld.Load.Running.IsKnown() || toOld.Load.Readiness != discovery.ReadinessUnknown || toOld.Load.Utilisation != discovery.Known(0.5) {
			t.Errorf("client %d: node of the old instance: %+v", i, toOld.Load)
		}
		want := load
		if i == 0 { // read through the old instance: version 1 end to end
			want.Running, want.Readiness = discovery.Unknown, discovery.ReadinessUnknown
		}
		if toNew.Load.Utilisation != want.Utilisation || toNew.Load.Running != want.Running || toNew.Load.Waiting != want.Waiting || toNew.Load.Readiness != want.Readiness {
			t.Errorf("client %d: node of the current instance: %+v, want %+v", i, toNew.Load, want)
		}
	}
}

// TestWireVersion3Compatibility: a tier of one instance that speaks wire
// version 2 at most (a Resource of issue 13) and one current instance,
// peered. A current agent reporting prefix-cache counters and LoRA
// adapters falls back to version 2 with the old instance (its new fields
// are dropped there, nothing is refused); through the current instance
// they reach a current client whole, through the old one they read as
// unknown. The old instance's own clients and peers are served version 2.
func TestWireVersion3Compatibility(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	lns, addrs := listeners(t, 2)
	cfg := Config{Token: "k", Peers: addrs, Logger: quiet}
	old, err := newServer(cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	old.wireMax = discovery.Version2
	cur, err := newServer(cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, lns[0], old)
	serveOn(t, lns[1], cur)

	lora, err := discovery.NewAdapters([]string{"sql-lora"}, []string{"chat-lora"})
	if err != nil {
		t.Fatal(err)
	}
	load := discovery.Load{Utilisation: discovery.Known(0.5), Running: discovery.Known(1), Readiness: discovery.ReadinessReady,
		PrefixCacheHits: discovery.Known(100), PrefixCacheQueries: discovery.Known(400), LoRA: lora}
	for i, srv := range addrs {
		id := []string{"to-old", "to-new"}[i]
		a, err := agent.New(agent.Config{Servers: []string{srv}, Token: "k", NodeID: id, App: "m",
			Addresses: map[string]string{"http": "127.0.0.1:80"}, Load: agent.StaticLoad(load), InitialDelay: -1, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		actx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = a.Run(actx); close(done) }()
		t.Cleanup(func() { stop(); <-done })
	}
	for i, srv := range addrs {
		cl, err := discovery.NewClient(discovery.ClientConfig{Servers: []string{srv}, Token: "k", Apps: []string{"m"}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		cctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = cl.Run(cctx); close(done) }()
		t.Cleanup(func() { stop(); <-done })
		l := waitList(ctx, t, cl, "m", "both nodes on both instances", func(l discovery.OnlineList) bool { return len(l.Eligible()) == 2 })
		for _, id := range []string{"to-old", "to-new"} {
			got := nodeOf(l, id).Load
			// Version 3 end to end only from the current agent, through
			// the current instance, to a client of the current instance.
			whole := i == 1 && id == "to-new"
			if whole {
				if got.LoRA != lora || got.PrefixCacheHits != load.PrefixCacheHits || got.PrefixCacheQueries != load.PrefixCacheQueries {
					t.Errorf("client %d, node %s: %+v, want the adapters and counters", i, id, got)
				}
			} else if got.LoRA.Known() || got.PrefixCacheHits.IsKnown() || got.PrefixCacheQueries.IsKnown() {
				t.Errorf("client %d, node %s: version-3 fields through a version-2 hop: %+v", i, id, got)
			}
			if got.Running != load.Running || got.Readiness != load.Readiness {
				t.Errorf("client %d, node %s: the version-2 fields are lost: %+v", i, id, got)
			}
		}
	}
}
