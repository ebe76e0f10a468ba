package resource_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/agent"
	"github.com/switchyard-dev/switchyard/discovery/resource"
)

const testToken = "s3cret"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// instance is one Resource instance on loopback.
type instance struct {
	t      testing.TB
	addr   string
	srv    *resource.Server
	cancel context.CancelFunc
	done   chan error
}

// listenAll reserves n loopback listeners (so peers know each other's
// addresses before starting).
func listenAll(t testing.TB, n int) []net.Listener {
	lns := make([]net.Listener, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	return lns
}

func addrs(lns []net.Listener) []string {
	out := make([]string, len(lns))
	for i, ln := range lns {
		out[i] = ln.Addr().String()
	}
	return out
}

func baseConfig(peers []string) resource.Config {
	return resource.Config{Token: testToken, Peers: peers, Logger: quiet}
}

func startInstance(t testing.TB, ln net.Listener, cfg resource.Config) *instance {
	t.Helper()
	srv, err := resource.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{t: t, addr: ln.Addr().String(), srv: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(in.kill)
	return in
}

// kill stops the instance abruptly (all connections closed, no goodbye).
func (in *instance) kill() {
	if in.cancel == nil {
		return
	}
	in.cancel()
	<-in.done
	in.cancel = nil
}

// restart starts a fresh instance (new epoch, empty state) on the same address.
func (in *instance) restart(cfg resource.Config) *instance {
	in.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", in.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		in.t.Fatal(err)
	}
	return startInstance(in.t, ln, cfg)
}

type testAgent struct {
	a      *agent.Agent
	id     string
	cancel context.CancelFunc
	done   chan error
}

func agentConfig(servers []string, app, id string, port int) agent.Config {
	return agent.Config{
		Servers: servers, Token: testToken, NodeID: id, App: app,
		Addresses: map[string]string{"http": fmt.Sprintf("127.0.0.1:%d", port)},
		Engine:    "vllm", Accelerator: discovery.Accelerator{Model: "H100", Count: 8}, Capacity: 8,
		Load:   agent.StaticLoad{Utilisation: discovery.Known(0.5), Concurrency: discovery.Known(4)},
		Logger: quiet,
	}
}

func startAgent(t testing.TB, cfg agent.Config) *testAgent {
	t.Helper()
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testAgent{a: a, id: cfg.NodeID, cancel: cancel, done: make(chan error, 1)}
	go func() { ta.done <- a.Run(ctx) }()
	t.Cleanup(ta.stop)
	return ta
}

func (ta *testAgent) stop() {
	if ta.cancel == nil {
		return
	}
	ta.cancel()
	<-ta.done
	ta.cancel = nil
}

// watcher is a discovery.Client recording when each version arrived.
type watcher struct {
	c      *discovery.Client
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every update
	last    discovery.OnlineList
}

func startWatcher(t testing.TB, servers []string, app string, mod func(*discovery.ClientConfig)) *watcher {
	t.Helper()
	w := &watcher{changed: make(chan struct{})}
	cfg := discovery.ClientConfig{
		Servers: servers, Token: testToken, Apps: []string{app}, Logger: quiet,
		OnUpdate: func(app string, l discovery.OnlineList) {
			w.mu.Lock()
			w.last = l
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := discovery.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.c = c
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan error, 1)
	go func() { w.done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-w.done })
	return w
}

// waitFor waits until cond holds for the watcher's latest list.
func (w *watcher) waitFor(ctx context.Context, cond func(l *discovery.OnlineList) bool) (time.Time, error) {
	for {
		w.mu.Lock()
		l, ch := w.last, w.changed
		w.mu.Unlock()
		if cond(&l) {
			return time.Now(), nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting for list condition (have version %d, %d nodes): %w", l.Version, len(l.Nodes), ctx.Err())
		}
	}
}

func eligible(l *discovery.OnlineList, id string) bool {
	for i := range l.Nodes {
		if l.Nodes[i].ID == id {
			return l.Nodes[i].Eligible()
		}
	}
	return false
}

func listed(l *discovery.OnlineList, id string) bool {
	for i := range l.Nodes {
		if l.Nodes[i].ID == id {
			return true
		}
	}
	return false
}

func countEligible(l *discovery.OnlineList) int {
	n := 0
	for i := range l.Nodes {
		if l.Nodes[i].Eligible() {
			n++
		}
	}
	return n
}
