package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testlog"
)

// startSim runs `switchyard sim args...` until the test ends and returns
// the JSON lines it printed for its nodes.
func startSim(t *testing.T, nodes int, args ...string) []map[string]any {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb testlog.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"sim"}, args...), &out, &errb) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("sim did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(out.String(), "\n") < nodes {
		if time.Now().After(deadline) {
			t.Fatalf("sim printed %q, stderr %q", out.String(), errb.String())
		}
		select {
		case code := <-done:
			t.Fatalf("sim exited %d: %s", code, errb.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	var res []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		res = append(res, m)
	}
	return res
}

func TestSimQuickForm(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes := startSim(t, 1, "--listen", "127.0.0.1:0", "--model", "qwen", "--profile", "h100", "--per-token", "1ms", "--prefill", "1ms")
	if nodes[0]["slots"].(float64) != 25 || nodes[0]["card"] != "NVIDIA H100 80GB HBM3" {
		t.Errorf("node %v", nodes[0])
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+nodes[0]["http"].(string)+"/v1/chat/completions",
		strings.NewReader(`{"model":"qwen","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
		t.Errorf("status %d body %s", resp.StatusCode, b)
	}
}

func TestSimFleetConfig(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(p, []byte("defaults: {model: m}\nnodes:\n  - {id: a, profile: a10, count: 2}\n  - {id: b, profile: 910b, grpc_listen: \"127.0.0.1:0\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nodes := startSim(t, 3, "--config", p)
	if len(nodes) != 3 || nodes[2]["id"] != "b" || nodes[2]["grpc"] == "" {
		t.Errorf("nodes %v", nodes)
	}
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"sim", "--config", filepath.Join(t.TempDir(), "missing.yaml")}, io.Discard, &errb); code != 1 {
		t.Errorf("missing config: exit %d", code)
	}
}
