package sim

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenAINodeClient drives the sim with the official OpenAI Node
// client (npm "openai", pinned in testdata/openai-node/package.json):
// a streaming chat completion read chunk by chunk, and the client's
// ChatCompletionStream helper. Install it with
// testdata/openai-node/install.sh. Without node or node_modules the test
// skips, except under CI=true where it fails.
func TestOpenAINodeClient(t *testing.T) {
	dir := filepath.Join("testdata", "openai-node")
	ci := os.Getenv("CI") == "true"
	missing := func(what string) {
		msg := what + ": run engines/sim/testdata/openai-node/install.sh (needs node and npm)"
		if ci {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not on PATH")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		missing("openai npm package not installed")
	}
	ctx := testCtx(t, 60*time.Second)
	n := start(t, Config{Model: "sim-chat", Override: Profile{Prefill: 2 * time.Millisecond, PerToken: time.Millisecond}})
	cmd := exec.CommandContext(ctx, node, "stream.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SIM_BASE_URL="+n.URL()+"/v1", "SIM_MODEL=sim-chat")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node stream.mjs: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var got struct {
		Content string
		Usage   struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		}
		Chunks int
		Finish string
		Helper struct{ Content, Finish string }
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &got); err != nil {
		t.Fatalf("output %q: %v", stdout.String(), err)
	}
	if got.Content != "Hello from the switchyard simulated" || got.Finish != "length" || got.Usage.CompletionTokens != 5 ||
		got.Usage.TotalTokens != got.Usage.PromptTokens+5 || got.Chunks < 7 {
		t.Errorf("stream result %+v", got)
	}
	if got.Helper.Content != "Hello from the" || got.Helper.Finish != "length" {
		t.Errorf("ChatCompletionStream helper result %+v", got.Helper)
	}
	if s := n.Stats(); s.Served != 2 {
		t.Errorf("sim served %d, want 2", s.Served)
	}
	if strings.TrimSpace(stderr.String()) != "" {
		t.Logf("node stderr: %s", stderr.String())
	}
}
