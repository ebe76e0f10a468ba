package agent_test

import (
	"testing"

	"github.com/switchyard-dev/switchyard/discovery/agent"
)

// TestEngineURLs: MindIE is probed on its management listener (HTTPS,
// 127.0.0.2, ports 1026 and 1027) whatever its serving address; other
// engines on their serving address, with no default metrics URL.
func TestEngineURLs(t *testing.T) {
	for _, c := range []struct {
		engine, addr, health, metrics string
	}{
		{"mindie", "10.0.0.5:1025", "https://127.0.0.2:1026", "https://127.0.0.2:1027/metrics"},
		{"mindie", "", "https://127.0.0.2:1026", "https://127.0.0.2:1027/metrics"},
		{"vllm", "10.0.0.5:8000", "http://10.0.0.5:8000", ""},
		{"vllm", "", "", ""},
	} {
		h, m, err := agent.EngineURLs(c.engine, c.addr)
		if err != nil || h != c.health || m != c.metrics {
			t.Errorf("EngineURLs(%q, %q) = %q, %q, %v; want %q, %q", c.engine, c.addr, h, m, err, c.health, c.metrics)
		}
	}
	if _, _, err := agent.EngineURLs("nope", ""); err == nil {
		t.Error("unknown engine accepted")
	}
}
