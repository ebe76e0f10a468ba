package sim

import (
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestManyNodesOneProcess hosts 48 nodes with gRPC in one process and
// streams from all of them at once: the sim is cheap enough for a whole
// demo fleet on a 2-core machine.
func TestManyNodesOneProcess(t *testing.T) {
	ctx := testCtx(t, 30*time.Second)
	const nodes, perNode = 48, 4
	var ns []*Node
	profiles := ProfileNames()
	for i := 0; i < nodes; i++ {
		n := start(t, Config{Model: "m", GRPCListen: "127.0.0.1:0", Profile: profiles[i%len(profiles)],
			Override: Profile{Prefill: 5 * time.Millisecond, PerToken: 2 * time.Millisecond, MaxTokens: 20, QueueDepth: perNode}})
		ns = append(ns, n)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: perNode}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for _, n := range ns {
		for k := 0; k < perNode; k++ {
			wg.Add(1)
			go func(url string) {
				defer wg.Done()
				req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/chat/completions", strings.NewReader(`{"messages":[{"role":"user","content":"hi"}],"stream":true}`))
				resp, err := c.Do(req)
				ok := err == nil
				if ok {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					ok = resp.StatusCode == 200 && strings.HasSuffix(string(b), "data: [DONE]\n\n")
				}
				if !ok {
					mu.Lock()
					failures++
					mu.Unlock()
				}
			}(n.URL())
		}
	}
	wg.Wait()
	if failures > 0 {
		t.Fatalf("%d of %d streams failed", failures, nodes*perNode)
	}
	var served int64
	for _, n := range ns {
		served += n.Stats().Served
	}
	if served != nodes*perNode {
		t.Errorf("served %d, want %d", served, nodes*perNode)
	}
	t.Logf("%d nodes, %d streams of 20 tokens, %d goroutines", nodes, served, runtime.NumGoroutine())
}
