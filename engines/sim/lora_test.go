package sim

import (
	"bufio"
	"context"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for the sim's timestamps.
type fakeClock struct{ sec atomic.Int64 }

func (c *fakeClock) now() time.Time { return time.Unix(c.sec.Load(), 0) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLoRAOnDemand: adapters load on first use (once), an idle one is
// evicted for another when the slots are full, unknown names are 404,
// and /v1/models lists the adapters under the base model.
func TestLoRAOnDemand(t *testing.T) {
	n := start(t, Config{Model: "base", Override: fast, LoRA: LoRAConfig{Adapters: []string{"sql"}, Prefix: "tenant-", MaxLoRAs: 1, LoadTime: time.Millisecond}})
	ask := func(model string) (int, string) {
		t.Helper()
		resp, b := post(t, testCtx(t, 10*time.Second), n.URL()+"/v1/completions", `{"model":"`+model+`","prompt":"x","max_tokens":1}`)
		if resp.StatusCode == 200 && !strings.Contains(string(b), `"model":"`+model+`"`) {
			t.Errorf("%s answered as %s", model, b)
		}
		return resp.StatusCode, resp.Header.Get(LoRAHeader)
	}
	for _, c := range []struct {
		model     string
		status    int
		lora      string
		loads     int64
		loaded    []string
		wantInAll bool
	}{
		{"base", 200, "", 0, []string{}, false},
		{"sql", 200, "sql", 1, []string{"sql"}, true},
		{"sql", 200, "sql", 1, []string{"sql"}, true},
		{"tenant-7", 200, "tenant-7", 2, []string{"tenant-7"}, true},
		{"other", 404, "", 2, []string{"tenant-7"}, false},
		{"sql", 200, "sql", 3, []string{"sql"}, true},
	} {
		st, lora := ask(c.model)
		ls := n.Stats().LoRA
		if st != c.status || lora != c.lora || ls.Loads != c.loads || !slices.Equal(ls.Loaded, c.loaded) {
			t.Errorf("%s: status %d lora %q, stats %+v; want %d %q loads %d loaded %v", c.model, st, lora, ls, c.status, c.lora, c.loads, c.loaded)
		}
	}
	_, b := get(t, testCtx(t, 5*time.Second), n.URL()+"/v1/models")
	for _, want := range []string{`"id":"base"`, `"id":"sql","object":"model"`, `"parent":"base"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/v1/models lacks %s: %s", want, b)
		}
	}
}

// TestLoRASlotLimit: with one slot held by a running adapter, a request
// for another adapter waits (waiting, listed in waiting_lora_adapters)
// until the first goes idle, then loads. vllm:lora_requests_info keeps
// old label sets with their timestamps (the injected clock's).
func TestLoRASlotLimit(t *testing.T) {
	clk := &fakeClock{}
	clk.sec.Store(100)
	n, err := startClock(testCtx(t, 5*time.Second), Config{Model: "base",
		Override: Profile{Prefill: time.Millisecond, PerToken: 20 * time.Millisecond, MaxTokens: 1000},
		LoRA:     LoRAConfig{Adapters: []string{"a", "b"}, MaxLoRAs: 1, LoadTime: time.Millisecond}}, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	ctx := testCtx(t, 10*time.Second)

	// Adapter a: a long stream we cancel later.
	clk.sec.Store(200)
	actx, cancelA := context.WithCancel(ctx)
	defer cancelA()
	req, _ := http.NewRequestWithContext(actx, "POST", n.URL()+"/v1/completions", strings.NewReader(`{"model":"a","prompt":"x","stream":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	// Adapter b must wait for a's slot.
	clk.sec.Store(300)
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/completions", strings.NewReader(`{"model":"b","prompt":"x","max_tokens":1}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	waitFor(t, "b waiting", func() bool { ls := n.Stats().LoRA; return slices.Equal(ls.Waiting, []string{"b"}) })
	if st := n.Stats(); st.Waiting != 1 || st.Running != 1 || !slices.Equal(st.LoRA.Running, []string{"a"}) || st.LoRA.Loads != 1 {
		t.Fatalf("while b waits: %+v %+v", st, st.LoRA)
	}
	clk.sec.Store(400)
	m := scrape(t, n, "/metrics")
	info := func(running, waiting string) float64 {
		return value(t, m, "vllm:lora_requests_info", map[string]string{"running_lora_adapters": running, "waiting_lora_adapters": waiting, "max_lora": "1"})
	}
	if got := info("a", "b"); got != 400 {
		t.Errorf("current label set stamped %g, want 400 (the scrape's time: the engine is stepping)", got)
	}
	if got := info("", ""); got != 100 {
		t.Errorf("idle label set from start-up stamped %g, want 100", got)
	}
	if got := info("a", ""); got != 200 {
		t.Errorf("a-only label set stamped %g, want 200", got)
	}
	// a goes idle: b loads (evicting a) and runs.
	cancelA()
	select {
	case st := <-done:
		if st != 200 {
			t.Fatalf("b: %d", st)
		}
	case <-ctx.Done():
		t.Fatal("b never ran")
	}
	if ls := n.Stats().LoRA; ls.Loads != 2 || !slices.Equal(ls.Loaded, []string{"b"}) || len(ls.Waiting) != 0 {
		t.Errorf("after b: %+v", ls)
	}
}

func TestLoRAConfigErrors(t *testing.T) {
	for name, c := range map[string]Config{
		"negative slots":   {LoRA: LoRAConfig{Adapters: []string{"a"}, MaxLoRAs: -1}},
		"comma in name":    {LoRA: LoRAConfig{Adapters: []string{"a,b"}}},
		"base is adapter":  {Model: "lora-x", LoRA: LoRAConfig{Prefix: "lora-"}},
		"data parallel":    {DataParallel: 2, LoRA: LoRAConfig{Adapters: []string{"a"}}},
		"negative loading": {LoRA: LoRAConfig{Adapters: []string{"a"}, LoadTime: -time.Second}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
