package gateway

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/engines/sim"
)

// startSims starts n simulated engines serving model on HTTP and gRPC.
func startSims(t *testing.T, n int, model string) []*sim.Node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var nodes []*sim.Node
	for i := 0; i < n; i++ {
		nd, err := sim.Start(ctx, sim.Config{Listen: "127.0.0.1:0", GRPCListen: "127.0.0.1:0", Model: model, Profile: "h100",
			Override: sim.Profile{Prefill: 5 * time.Millisecond, PerToken: 2 * time.Millisecond, MaxTokens: 8}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nd.Close() })
		nodes = append(nodes, nd)
	}
	return nodes
}

// TestSimCrashUnderStreamingLoad: streaming chat completions against three
// simulated engines; one crashes (every connection reset). Requests that
// started after the crash all succeed, those streaming through the crashed
// node at that instant may be cut, and its breaker opens.
func TestSimCrashUnderStreamingLoad(t *testing.T) {
	nodes := startSims(t, 3, "sim-model")
	rc := RouteConfig{Name: "sim-model", Match: MatchConfig{Models: []string{"sim-model"}}}
	for _, n := range nodes {
		rc.Nodes = append(rc.Nodes, NodeConfig{ID: n.ID(), HTTP: n.Addr(), GRPC: n.GRPCAddr()})
	}
	cfg := testConfig(rc)
	cfg.Routes[0].Breaker.OpenFor = time.Hour
	gw := startGateway(t, cfg)
	c := testClient()
	var crashedAt atomic.Int64
	var after, afterFailed, before atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				started := time.Now().UnixNano()
				ok := streamOnce(c, gw.url("/v1/chat/completions"))
				if k := crashedAt.Load(); k != 0 && started > k {
					after.Add(1)
					if !ok {
						afterFailed.Add(1)
					}
				} else {
					before.Add(1)
				}
			}
		}()
	}
	waitFor(t, 10*time.Second, "streaming load", func() bool { return before.Load() > 30 })
	nodes[2].Crash()
	crashedAt.Store(time.Now().UnixNano())
	waitFor(t, 20*time.Second, "load after the crash", func() bool { return after.Load() > 60 })
	close(stop)
	wg.Wait()
	t.Logf("before crash %d streams; after %d, %d failed", before.Load(), after.Load(), afterFailed.Load())
	if afterFailed.Load() != 0 {
		t.Errorf("%d streams started after the crash failed", afterFailed.Load())
	}
	if e := gw.g.core.Routes().Route("sim-model").Stats().Ejections(); e != 1 {
		t.Errorf("ejections %d, want 1", e)
	}
}

// streamOnce runs one streaming chat completion and reports whether it
// ended with [DONE].
func streamOnce(c *http.Client, url string) bool {
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"hello there"}],"max_tokens":8}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return false
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if sc.Text() == "data: [DONE]" {
			_, _ = io.Copy(io.Discard, resp.Body)
			return true
		}
	}
	return false
}
