package sim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/engines/vllm"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// fast is a profile override with short timings.
var fast = Profile{Prefill: 2 * time.Millisecond, PerToken: time.Millisecond, MaxTokens: 4}

func start(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := Start(testCtx(t, 5*time.Second), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func post(t *testing.T, ctx context.Context, url, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp, b
}

func get(t *testing.T, ctx context.Context, url string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestChatCompletions(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	n := start(t, Config{ID: "node-a", Model: "m", Override: fast})
	resp, b := post(t, ctx, n.URL()+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"say hi to me"}],"max_tokens":3}`)
	if resp.StatusCode != 200 || resp.Header.Get(NodeHeader) != "node-a" {
		t.Fatalf("status %d header %q body %s", resp.StatusCode, resp.Header.Get(NodeHeader), b)
	}
	var out struct {
		Object  string
		Choices []struct {
			Message      struct{ Role, Content string }
			FinishReason string `json:"finish_reason"`
		}
		Usage struct {
			PromptTokens     int `json:"prompt_tokens"`
			CompletionTokens int `json:"completion_tokens"`
			TotalTokens      int `json:"total_tokens"`
		}
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	// The prompt renders as "user\nsay hi to me\n": 17 bytes, 5 tokens
	// at CharsPerToken.
	if out.Object != "chat.completion" || out.Choices[0].Message.Content != "Hello from the" || out.Choices[0].FinishReason != "length" ||
		out.Usage.PromptTokens != 5 || out.Usage.CompletionTokens != 3 || out.Usage.TotalTokens != 8 {
		t.Errorf("response = %+v", out)
	}
	resp, b = post(t, ctx, n.URL()+"/v1/chat/completions", `{"model":"other","messages":[{"role":"user","content":"x"}]}`)
	if resp.StatusCode != 404 || !strings.Contains(string(b), "does not exist") {
		t.Errorf("wrong model: %d %s", resp.StatusCode, b)
	}
	resp, _ = post(t, ctx, n.URL()+"/v1/chat/completions", `{"model":`)
	if resp.StatusCode != 400 {
		t.Errorf("bad json: %d", resp.StatusCode)
	}
	if st := n.Stats(); st.Served != 1 || st.GeneratedTokens != 3 || st.InFlight != 0 {
		t.Errorf("stats = %+v", st)
	}
}

// readSSE returns the data payloads of an SSE body.
func readSSE(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "data: ") {
			t.Fatalf("unexpected SSE line %q", line)
		}
		out = append(out, strings.TrimPrefix(line, "data: "))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStreaming: SSE chunks as vLLM sends them; usage only when
// stream_options.include_usage asks, once, in a last chunk with
// "choices": [] before [DONE].
func TestStreaming(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	n := start(t, Config{Model: "m", Override: fast})
	for _, c := range []struct {
		name, path, body string
		chunks           int // data lines incl. [DONE]
		usage            bool
	}{
		{"chat", "/v1/chat/completions", `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":5}`, 1 + 5 + 1 + 1, false},
		{"chat include_usage", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}],"max_tokens":5}`, 1 + 5 + 1 + 1 + 1, true},
		{"chat include_usage false", "/v1/chat/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":false},"messages":[{"role":"user","content":"hi"}],"max_tokens":5}`, 1 + 5 + 1 + 1, false},
		{"completions", "/v1/completions", `{"model":"m","stream":true,"prompt":"once upon","max_tokens":5}`, 5 + 1 + 1, false},
		{"completions include_usage", "/v1/completions", `{"model":"m","stream":true,"stream_options":{"include_usage":true},"prompt":"once upon","max_tokens":5}`, 5 + 1 + 1 + 1, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+c.path, strings.NewReader(c.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
				t.Errorf("content-type %q", ct)
			}
			data := readSSE(t, resp.Body)
			if len(data) != c.chunks || data[len(data)-1] != "[DONE]" {
				t.Fatalf("got %d chunks: %q", len(data), data)
			}
			var text strings.Builder
			usages := 0
			for i, d := range data[:len(data)-1] {
				var ch struct {
					Choices []struct {
						Delta        struct{ Content string }
						Text         string
						FinishReason *string `json:"finish_reason"`
					}
					Usage map[string]int
				}
				if err := json.Unmarshal([]byte(d), &ch); err != nil {
					t.Fatalf("chunk %q: %v", d, err)
				}
				for _, cc := range ch.Choices {
					text.WriteString(cc.Delta.Content + cc.Text)
				}
				if strings.Contains(d, `"usage"`) {
					usages++
					last := i == len(data)-2
					if !last || len(ch.Choices) != 0 || ch.Usage["completion_tokens"] != 5 || ch.Usage["total_tokens"] != ch.Usage["prompt_tokens"]+5 {
						t.Errorf("usage chunk %d of %d: %s", i, len(data)-1, d)
					}
				}
			}
			if want := map[bool]int{true: 1, false: 0}[c.usage]; usages != want {
				t.Errorf("%d usage chunks, want %d", usages, want)
			}
			if text.String() != "Hello from the switchyard simulated" {
				t.Errorf("text %q", text.String())
			}
		})
	}
}

func TestModelsHealthMetrics(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	n := start(t, Config{Model: "m", Override: Profile{Slots: 2, Prefill: time.Hour}})
	st, b := get(t, ctx, n.URL()+"/v1/models")
	if st != 200 || !strings.Contains(string(b), `"id":"m"`) {
		t.Errorf("models %d %s", st, b)
	}
	if st, _ := get(t, ctx, n.URL()+"/health"); st != 200 {
		t.Errorf("health %d", st)
	}
	// One request in prefill (it never finishes before Close): running 1.
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/completions", strings.NewReader(`{"prompt":"x"}`))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for n.Stats().Running != 1 && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	_, b = get(t, ctx, n.URL()+"/metrics")
	l, err := vllm.ParseLoad(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("our vllm adapter cannot parse the sim's metrics: %v\n%s", err, b)
	}
	if l.Running.String() != "1" || l.Waiting.String() != "0" || l.KVCache.String() != "0.5" || l.Models[0] != "m" {
		t.Errorf("load = %+v", l)
	}
}

func TestKServeHTTP(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	n := start(t, Config{Model: "m", Override: fast})
	resp, b := post(t, ctx, n.URL()+"/v2/models/m/infer", `{"id":"r1","inputs":[{"name":"text_input","shape":[1],"datatype":"BYTES","data":["hello there"]}],"parameters":{"max_tokens":2}}`)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"data":["Hello from"]`) || !strings.Contains(string(b), `"id":"r1"`) {
		t.Errorf("infer %d %s", resp.StatusCode, b)
	}
	resp, _ = post(t, ctx, n.URL()+"/v2/models/m/versions/1/infer", `{"inputs":[{"name":"text_input","shape":[1],"datatype":"BYTES","data":["x"]}]}`)
	if resp.StatusCode != 200 {
		t.Errorf("versioned infer %d", resp.StatusCode)
	}
	for path, want := range map[string]int{"/v2/health/ready": 200, "/v2/health/live": 200, "/v2/models/m/ready": 200, "/v2/models/x/ready": 404, "/v2/models/m": 200} {
		if st, _ := get(t, ctx, n.URL()+path); st != want {
			t.Errorf("%s = %d, want %d", path, st, want)
		}
	}
	resp, _ = post(t, ctx, n.URL()+"/v2/models/m/infer", `{"inputs":[]}`)
	if resp.StatusCode != 400 {
		t.Errorf("empty inputs %d", resp.StatusCode)
	}
}

func TestQueueBound(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	n := start(t, Config{Model: "m", Override: Profile{Slots: 1, QueueDepth: 1, Prefill: 200 * time.Millisecond, MaxTokens: 1}})
	var wg sync.WaitGroup
	codes := make(chan int, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/completions", strings.NewReader(`{"prompt":"x"}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
		// Let each request be admitted (or queued) before the next.
		deadline := time.Now().Add(5 * time.Second)
		for n.Stats().InFlight+n.Stats().Rejected < int64(i+1) && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[200] != 2 || got[429] != 1 {
		t.Errorf("status counts %v, want two 200 and one 429", got)
	}
}

func TestFailureModes(t *testing.T) {
	ctx := testCtx(t, 20*time.Second)
	body := `{"prompt":"x","max_tokens":1}`

	t.Run("error", func(t *testing.T) {
		n := start(t, Config{Model: "m", Override: fast})
		n.Fail(ModeError)
		if resp, _ := post(t, ctx, n.URL()+"/v1/completions", body); resp.StatusCode != 500 {
			t.Errorf("5xx mode: %d", resp.StatusCode)
		}
		if st, _ := get(t, ctx, n.URL()+"/health"); st != 200 {
			t.Errorf("health in 5xx mode: %d (grey failure keeps health up)", st)
		}
		n.Fail(ModeHealthy)
		if resp, _ := post(t, ctx, n.URL()+"/v1/completions", body); resp.StatusCode != 200 {
			t.Errorf("recovered: %d", resp.StatusCode)
		}
	})

	t.Run("busy", func(t *testing.T) {
		n := start(t, Config{Model: "m", Override: fast})
		n.Fail(ModeBusy)
		for _, path := range []string{"/v1/completions", "/v2/models/m/infer"} {
			b := body
			if strings.HasPrefix(path, "/v2") {
				b = `{"inputs":[{"name":"text_input","datatype":"BYTES","shape":[1],"data":["x"]}]}`
			}
			resp, _ := post(t, ctx, n.URL()+path, b)
			if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
				t.Errorf("busy %s: %d Retry-After %q, want 429 and 7", path, resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		}
		if st, _ := get(t, ctx, n.URL()+"/health"); st != 200 {
			t.Errorf("health while busy: %d", st)
		}
		if s := n.Stats(); s.Rejected != 2 || s.Mode != "busy" {
			t.Errorf("stats while busy: %+v", s)
		}
		n.Fail(ModeHealthy)
		if resp, _ := post(t, ctx, n.URL()+"/v1/completions", body); resp.StatusCode != 200 {
			t.Errorf("recovered: %d", resp.StatusCode)
		}
	})

	t.Run("cut", func(t *testing.T) {
		n := start(t, Config{Model: "m", Override: fast})
		n.Fail(ModeCut)
		// Streams end half way without [DONE] and without the terminal
		// chunk: the client's read fails.
		req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/chat/completions",
			strings.NewReader(`{"stream":true,"max_tokens":6,"messages":[{"role":"user","content":"x"}]}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		// (fasthttp copies the stream to the connection from a pipe: the
		// last tokens written before the close may not reach the wire.)
		if rerr == nil || strings.Contains(string(got), "[DONE]") || strings.Count(string(got), "data: ") > 1+3 {
			t.Errorf("cut stream: read error %v, body %q; want at most the role chunk and 3 of 6 tokens, then an error", rerr, got)
		}
		// Answers that are not streamed are whole.
		if resp, b := post(t, ctx, n.URL()+"/v1/completions", body); resp.StatusCode != 200 || !strings.Contains(string(b), "usage") {
			t.Errorf("buffered answer in cut mode: %d %s", resp.StatusCode, b)
		}
		if s := n.Stats(); s.Cut != 1 || s.Served != 1 {
			t.Errorf("stats: %+v, want 1 cut and 1 served", s)
		}
		n.Fail(ModeHealthy)
		req, _ = http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/completions", strings.NewReader(`{"stream":true,"prompt":"x"}`))
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, rerr = io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr != nil || !strings.HasSuffix(string(got), "data: [DONE]\n\n") {
			t.Errorf("recovered stream: %v %q", rerr, got)
		}
	})

	t.Run("hang", func(t *testing.T) {
		n := start(t, Config{Model: "m", Override: fast})
		n.Fail(ModeHang)
		hctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(hctx, "GET", n.URL()+"/health", nil)
		if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("hang: err = %v, want deadline exceeded", err)
		}
		n.Fail(ModeHealthy)
		if st, _ := get(t, ctx, n.URL()+"/health"); st != 200 {
			t.Errorf("after hang: %d", st)
		}
	})

	t.Run("slow start", func(t *testing.T) {
		n := start(t, Config{Model: "m", Override: fast, StartupDelay: 150 * time.Millisecond})
		if st, _ := get(t, ctx, n.URL()+"/health"); st != 503 {
			t.Errorf("starting health: %d", st)
		}
		if resp, _ := post(t, ctx, n.URL()+"/v1/completions", body); resp.StatusCode != 503 {
			t.Errorf("starting infer: %d", resp.StatusCode)
		}
		deadline := time.Now().Add(5 * time.Second)
		st := 0
		for st != 200 && time.Now().Before(deadline) {
			st, _ = get(t, ctx, n.URL()+"/health")
			time.Sleep(10 * time.Millisecond)
		}
		if st != 200 {
			t.Fatalf("never became ready")
		}
		n.Fail(ModeSlowStart)
		if st, _ := get(t, ctx, n.URL()+"/v2/health/ready"); st != 503 {
			t.Errorf("slow start again: %d", st)
		}
	})

	t.Run("drain", func(t *testing.T) {
		n := start(t, Config{Model: "m", Override: Profile{Prefill: 100 * time.Millisecond, MaxTokens: 1}})
		done := make(chan int, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/completions", strings.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		deadline := time.Now().Add(5 * time.Second)
		for n.Stats().Running == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		n.Drain()
		if resp, _ := post(t, ctx, n.URL()+"/v1/completions", body); resp.StatusCode != 503 {
			t.Errorf("new request while draining: %d", resp.StatusCode)
		}
		if st, _ := get(t, ctx, n.URL()+"/health"); st != 503 {
			t.Errorf("health while draining: %d", st)
		}
		if err := n.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		if st := <-done; st != 200 {
			t.Errorf("in-flight request during drain: %d", st)
		}
	})

	// A streamed answer's writer releases its slot before fasthttp writes
	// the final chunk: the node is not idle until that chunk is out, so
	// Drain, WaitIdle, Close never cuts an answer's end (TestDemo's
	// drained node once lost a stream that way).
	t.Run("drain waits for a stream's last chunk", func(t *testing.T) {
		n := start(t, Config{Model: "m", Override: Profile{PerToken: time.Millisecond, MaxTokens: 3}})
		idleAfterRelease := make(chan bool, 1)
		hook := func() { idleAfterRelease <- n.idle() }
		n.testAfterStreamRelease.Store(&hook)
		req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/completions", strings.NewReader(`{"prompt":"x","stream":true}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if idle := <-idleAfterRelease; idle {
			t.Fatal("the node counts as idle before its streamed answer's final chunk is written")
		}
		n.Drain()
		if err := n.WaitIdle(ctx); err != nil {
			t.Fatal(err)
		}
		_ = n.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
			t.Fatalf("stream after Drain, WaitIdle, Close: %q, %v", b, err)
		}
	})

	t.Run("crash", func(t *testing.T) {
		n := start(t, Config{Model: "m", Override: Profile{PerToken: 20 * time.Millisecond, MaxTokens: 100}})
		req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/completions", strings.NewReader(`{"prompt":"x","stream":true}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		n.Crash()
		if _, err := io.ReadAll(br); err == nil {
			t.Error("stream survived a crash")
		}
		c := &http.Client{Transport: &http.Transport{}}
		req, _ = http.NewRequestWithContext(ctx, "GET", n.URL()+"/health", nil)
		if _, err := c.Do(req); err == nil {
			t.Error("crashed node still answers")
		}
		select {
		case <-n.Done():
		default:
			t.Error("Done not closed")
		}
	})
}

func TestNoGoroutineLeak(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		n, err := Start(ctx, Config{Model: "m", GRPCListen: "127.0.0.1:0", Override: fast})
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Transport: &http.Transport{}}
		req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/completions", strings.NewReader(`{"prompt":"x","stream":true}`))
		if resp, err := c.Do(req); err == nil {
			_, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		c.CloseIdleConnections()
		_ = n.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+2 {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines %d > %d before\n%s", g, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestProfiles(t *testing.T) {
	h100, _ := LookupProfile("h100", nil)
	a10, _ := LookupProfile("a10", nil)
	b910, _ := LookupProfile("910b", nil)
	cpu, _ := LookupProfile("cpu", nil)
	if !(h100.SlotCount() > b910.SlotCount() && b910.SlotCount() > a10.SlotCount() && a10.SlotCount() >= cpu.SlotCount()) {
		t.Errorf("slots h100 %d 910b %d a10 %d cpu %d", h100.SlotCount(), b910.SlotCount(), a10.SlotCount(), cpu.SlotCount())
	}
	if h100.PerToken != a10.PerToken || h100.Coefficient != 3.17 {
		t.Errorf("h100 %+v a10 %+v", h100, a10)
	}
	if _, err := LookupProfile("tpu", nil); err == nil {
		t.Error("unknown profile accepted")
	}
	if _, err := Start(testCtx(t, time.Second), Config{Profile: "tpu"}); err == nil {
		t.Error("Start with unknown profile")
	}
}

func TestFleet(t *testing.T) {
	fc, err := ParseFleet([]byte(`
defaults:
  model: llama
  override: {prefill: 1ms, per_token: 1ms, max_tokens: 2}
nodes:
  - {id: big, profile: h100, grpc_listen: "127.0.0.1:0"}
  - {id: small, profile: a10, count: 3, slowdown: 2}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t, 10*time.Second)
	f, err := StartFleet(ctx, fc)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Nodes()) != 4 || f.Node("small-2") == nil || f.Node("big").GRPCAddr() == "" || f.Node("small-0").Slowdown() != 2 {
		t.Fatalf("nodes %d", len(f.Nodes()))
	}
	resp, _ := post(t, ctx, f.Node("small-1").URL()+"/v1/completions", `{"model":"llama","prompt":"x"}`)
	if resp.StatusCode != 200 || resp.Header.Get(NodeHeader) != "small-1" {
		t.Errorf("status %d node %q", resp.StatusCode, resp.Header.Get(NodeHeader))
	}
	for _, bad := range []string{"nodes: []\n", "nodes:\n  - {profile: tpu}\n", "nodes:\n  - {colour: red}\n"} {
		fc, err := ParseFleet([]byte(bad))
		if err == nil {
			_, err = fc.Configs()
		}
		if err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAdminEndpoints(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	n := start(t, Config{Model: "m", Override: fast})
	for _, c := range []struct {
		path string
		want int
	}{
		{"/_sim/slowdown?factor=3", 200}, {"/_sim/slowdown?factor=-1", 400},
		{"/_sim/error-rate?p=0.25", 200}, {"/_sim/error-rate?p=2", 400},
		{"/_sim/fail?mode=busy", 200}, {"/_sim/fail?mode=cut", 200},
		{"/_sim/fail?mode=hang", 200}, {"/_sim/fail?mode=bogus", 400},
		{"/_sim/drain", 200}, {"/_sim/nope", 404},
	} {
		if resp, b := post(t, ctx, n.URL()+c.path, ""); resp.StatusCode != c.want {
			t.Errorf("%s = %d %s", c.path, resp.StatusCode, b)
		}
	}
	// Control works while hung.
	st, b := get(t, ctx, n.URL()+"/_sim/stats")
	var s Stats
	if err := json.Unmarshal(b, &s); st != 200 || err != nil || s.Slowdown != 3 || s.Mode != "hang" || !s.Draining {
		t.Errorf("stats %d %+v %v", st, s, err)
	}
	post(t, ctx, n.URL()+"/_sim/fail?mode=healthy", "")
	post(t, ctx, n.URL()+"/_sim/undrain", "")
	post(t, ctx, n.URL()+"/_sim/error-rate?p=0", "")
	if resp, _ := post(t, ctx, n.URL()+"/v1/completions", `{"prompt":"x"}`); resp.StatusCode != 200 {
		t.Errorf("after recovery: %d", resp.StatusCode)
	}
	if resp, _ := post(t, ctx, n.URL()+"/_sim/crash", ""); resp.StatusCode != 202 {
		t.Errorf("crash: %d", resp.StatusCode)
	}
	select {
	case <-n.Done():
	case <-ctx.Done():
		t.Fatal("crash endpoint did not stop the node")
	}
}

// TestClientCancelFreesSlot: a client that goes away mid-stream frees its
// slot (the gateway's cancellations must not leak sim capacity).
func TestClientCancelFreesSlot(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	n := start(t, Config{Model: "m", Override: Profile{Slots: 1, PerToken: 10 * time.Millisecond, MaxTokens: 1000}})
	cctx, cancel := context.WithCancel(ctx)
	req, _ := http.NewRequestWithContext(cctx, "POST", n.URL()+"/v1/chat/completions", strings.NewReader(`{"messages":[{"role":"user","content":"x"}],"stream":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(5 * time.Second)
	for n.Stats().Running != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s := n.Stats(); s.Running != 0 || s.Served != 0 {
		t.Fatalf("after client cancel: %+v", s)
	}
	if resp, _ := post(t, ctx, n.URL()+"/v1/completions", `{"prompt":"x","max_tokens":1}`); resp.StatusCode != 200 {
		t.Errorf("slot not reusable: %d", resp.StatusCode)
	}
}
