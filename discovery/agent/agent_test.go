package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/agent"
	"github.com/switchyard-dev/switchyard/discovery/resource"
)

func TestConfigValidate(t *testing.T) {
	good := agent.Config{Servers: []string{"127.0.0.1:1"}, NodeID: "n", App: "a", Addresses: map[string]string{"http": "127.0.0.1:80"}}
	tests := []struct {
		name string
		mod  func(*agent.Config)
		ok   bool
	}{
		{"ok", func(*agent.Config) {}, true},
		{"no servers", func(c *agent.Config) { c.Servers = nil }, false},
		{"no id", func(c *agent.Config) { c.NodeID = "" }, false},
		{"bad address", func(c *agent.Config) { c.Addresses = map[string]string{"http": "x"} }, false},
		{"negative cards", func(c *agent.Config) { c.Accelerator.Count = -1 }, false},
		{"jitter too big", func(c *agent.Config) { c.Jitter = 0.9 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			_, err := agent.New(c)
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestControlDrain drives a drain through the control API against a real
// Resource instance with one watching client.
func TestControlDrain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := resource.New(resource.Config{Token: "k", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	defer func() { stop(); <-served }()
	servers := []string{ln.Addr().String()}

	a, err := agent.New(agent.Config{Servers: servers, Token: "k", NodeID: "n1", App: "a",
		Addresses: map[string]string{"http": "127.0.0.1:80"}, Logger: quiet, InitialDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctl := httptest.NewServer(agent.ControlHandler(a))
	defer ctl.Close()
	// Not running yet: drain is refused.
	if _, err := a.Drain(ctx); !errors.Is(err, agent.ErrNotRunning) {
		t.Fatalf("drain before run: %v", err)
	}
	actx, astop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- a.Run(actx) }()

	updates := make(chan discovery.OnlineList, 16)
	c, err := discovery.NewClient(discovery.ClientConfig{Servers: servers, Token: "k", Apps: []string{"a"}, Logger: quiet,
		OnUpdate: func(_ string, l discovery.OnlineList) { updates <- l }})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cstop := context.WithCancel(ctx)
	cdone := make(chan error, 1)
	go func() { cdone <- c.Run(cctx) }()
	defer func() { cstop(); <-cdone }()
	waitList(ctx, t, updates, func(l discovery.OnlineList) bool { return len(l.Eligible()) == 1 })
	resp, err := http.Post(ctl.URL+"/drain", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rep agent.DrainReply
	_ = json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !rep.Done {
		t.Fatalf("drain: %d %+v", resp.StatusCode, rep)
	}
	if l, _ := c.List("a"); len(l.Eligible()) != 0 {
		t.Fatal("drain answered before the client stopped routing to the node")
	}
	if a.State() != discovery.StateDraining {
		t.Fatalf("state %s", a.State())
	}
	// Stopping sends offline: the node leaves the list.
	astop()
	<-ran
	waitList(ctx, t, updates, func(l discovery.OnlineList) bool { return len(l.Nodes) == 0 })
}

func waitList(ctx context.Context, t *testing.T, updates <-chan discovery.OnlineList, cond func(discovery.OnlineList) bool) {
	t.Helper()
	for {
		select {
		case l := <-updates:
			if cond(l) {
				return
			}
		case <-ctx.Done():
			t.Fatal("condition never met")
		}
	}
}
