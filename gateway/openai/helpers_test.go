package openai

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/engines/sim"
)

// fixture reads a recorded engine output from engines/testdata/fixtures
// (each file's source is in the README there).
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := readFixture(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readFixture(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join("..", "..", "engines", "testdata", "fixtures", name))
}

// vllmStream is the real vLLM chat stream of PR #19662 (four events, no
// usage, cut before [DONE] as posted).
const vllmStreamFixture = "vllm/chat-completions-stream-sse-vllm-pr19662.txt"

// startSim starts a simulated engine (vLLM's stream shape) on loopback.
func startSim(t testing.TB, model string) *sim.Node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	n, err := sim.Start(ctx, sim.Config{Listen: "127.0.0.1:0", Model: model, Profile: "h100",
		Override: sim.Profile{Prefill: time.Millisecond, PerToken: time.Millisecond, MaxTokens: 6}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// post sends body to the node's path and returns the answer's body.
func post(t testing.TB, n *sim.Node, path string, body []byte) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", n.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s %s: %d %s", path, body, resp.StatusCode, b)
	}
	return b
}

// timings records what a Stream reports to its TokenTimer.
type timings struct {
	first []time.Duration
	inter []time.Duration
}

func (r *timings) FirstToken(d time.Duration) { r.first = append(r.first, d) }
func (r *timings) InterToken(d time.Duration) { r.inter = append(r.inter, d) }

// filterAll runs a fresh Stream over in, cut into pieces of the given
// sizes (cycled), and returns the client's bytes, flushed.
func filterAll(s *Stream, o StreamOptions, in []byte, sizes ...int) []byte {
	s.Reset(o)
	var out []byte
	now := o.Start
	for k := 0; len(in) > 0; k++ {
		n := len(in)
		if len(sizes) > 0 {
			n = min(max(sizes[k%len(sizes)], 1), len(in))
		}
		now = now.Add(time.Millisecond)
		out = s.Filter(out, in[:n], now)
		in = in[n:]
		if len(s.held) > s.limit {
			panic(fmt.Sprintf("Stream holds %d bytes, over its limit %d", len(s.held), s.limit))
		}
	}
	return s.Flush(out)
}

// events splits an event stream at "\n\n" (the test inputs use LF only).
func events(b []byte) []string {
	parts := strings.SplitAfter(string(b), "\n\n")
	if parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	return parts
}

// countTimer is a TokenTimer that allocates nothing.
type countTimer struct{ first, inter int }

func (c *countTimer) FirstToken(time.Duration) { c.first++ }
func (c *countTimer) InterToken(time.Duration) { c.inter++ }

// chatAnswer is a buffered chat answer as vLLM writes it.
var chatAnswer = []byte(`{"id":"chatcmpl-a0e8d16d47a64de58a0a3083e18d432a","object":"chat.completion","created":1749994809,"model":"qwen3-8b","choices":[{"index":0,"message":{"role":"assistant","reasoning_content":null,"content":"Hello! How can I help you today?","tool_calls":[]},"logprobs":null,"finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":12,"total_tokens":21,"completion_tokens":9,"prompt_tokens_details":{"cached_tokens":8}},"prompt_logprobs":null,"kv_transfer_params":null}`)

// usageStream is the vLLM fixture with a usage event and [DONE] after it,
// as vLLM ends a stream asked for usage.
func usageStream(t testing.TB) []byte {
	in := fixture(t, vllmStreamFixture)
	return append(append([]byte{}, in...), "data: {\"id\":\"chatcmpl-a0e8d16d47a64de58a0a3083e18d432a\",\"object\":\"chat.completion.chunk\",\"created\":1749994809,\"model\":\"/home/jovyan/qwen3-8b\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"total_tokens\":16,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n"...)
}
