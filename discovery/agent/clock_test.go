package agent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/resource"
)

// TestClockAheadRecovers (issue 12, item 10): an agent whose clock runs
// ten minutes ahead of Resource's starts with an incarnation Resource
// refuses; it adopts the incarnation the Reject names and is listed.
func TestClockAheadRecovers(t *testing.T) {
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
	servers := []string{ln.Addr().String()}
	a, err := New(Config{Servers: servers, Token: "k", NodeID: "ahead", App: "a",
		Addresses: map[string]string{"http": "127.0.0.1:80"}, InitialDelay: -1, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	a.now = func() time.Time { return time.Now().Add(10 * time.Minute) }
	updates := make(chan discovery.OnlineList, 16)
	c, err := discovery.NewClient(discovery.ClientConfig{Servers: servers, Token: "k", Apps: []string{"a"}, Logger: quiet,
		OnUpdate: func(_ string, l discovery.OnlineList) { updates <- l }})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(rctx, ln) })
	wg.Go(func() { _ = a.Run(rctx) })
	wg.Go(func() { _ = c.Run(rctx) })
	defer func() { stop(); wg.Wait() }()
	for {
		select {
		case l := <-updates:
			if len(l.Eligible()) == 1 {
				if !strings.Contains(a.LastReject(), "ahead of this Resource instance's clock") {
					t.Fatalf("listed, but the agent was not told why its first beat was refused: %q", a.LastReject())
				}
				return
			}
		case <-ctx.Done():
			t.Fatalf("the agent never recovered; last reject %q", a.LastReject())
		}
	}
}
