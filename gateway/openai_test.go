package gateway

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testlog"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/switchyard-dev/switchyard/engines/sim"
	"github.com/switchyard-dev/switchyard/gateway/tenant"
)

// scrapeURL reads a Prometheus exposition over HTTP.
func scrapeURL(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := testClient().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return fams
}

// sumSeries sums a family's samples whose labels include every pair of
// want (counters and gauges; histograms: their count).
func sumSeries(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	total := 0.0
outer:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue outer
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// simRoute is a static route over simulated engines.
func simRoute(name string, nodes []*sim.Node) RouteConfig {
	rc := RouteConfig{Name: name, Match: MatchConfig{Models: []string{name}}}
	for _, n := range nodes {
		rc.Nodes = append(rc.Nodes, NodeConfig{ID: n.ID(), HTTP: n.Addr(), GRPC: n.GRPCAddr()})
	}
	return rc
}

// sseAnswer is what a client read of an OpenAI event stream.
type sseAnswer struct {
	status     int
	content    strings.Builder
	usageSeen  int // events carrying a usage object
	done       bool
	keepAlives int
	prompt     int64
	completion int64
}

// readSSE posts body and reads the event stream.
func readSSE(t *testing.T, url, body string, hdr ...string) *sseAnswer {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	a := &sseAnswer{status: resp.StatusCode}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == ": keep-alive":
			a.keepAlives++
		case line == "data: [DONE]":
			a.done = true
		case strings.HasPrefix(line, "data: "):
			var ev struct {
				Choices []struct {
					Delta struct {
						Content string `json:"content"`
					} `json:"delta"`
					Text string `json:"text"`
				} `json:"choices"`
				Usage *struct {
					Prompt     int64 `json:"prompt_tokens"`
					Completion int64 `json:"completion_tokens"`
				} `json:"usage"`
			}
			if err := json.Unmarshal([]byte(line[len("data: "):]), &ev); err != nil {
				t.Fatalf("event %q: %v", line, err)
			}
			for _, c := range ev.Choices {
				a.content.WriteString(c.Delta.Content + c.Text)
			}
			if ev.Usage != nil {
				a.usageSeen++
				a.prompt, a.completion = ev.Usage.Prompt, ev.Usage.Completion
			}
		}
	}
	return a
}

// TestTokensCounted (issue 15): over a mix of buffered and streamed chat
// and completion requests, with and without the client's own
// include_usage, the gateway's token counters equal the tokens the
// engines report having processed; a client that did not ask for the
// usage event does not get it (the gateway asked and removed it), one
// that asked gets it once; every stream has one time-to-first-token
// sample; the tenant's counters match and its token budget is charged.
func TestTokensCounted(t *testing.T) {
	nodes := startSims(t, 2, "sim-model")
	const key = "sk-test-tokens-0123456789abcdef"
	file := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(file, []byte("keys:\n  - {key: "+key+", tenant: team-t, tokens_per_minute: 100000}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(simRoute("sim-model", nodes))
	cfg.Auth = &tenant.Config{Path: file, Interval: time.Hour}
	gw := startGateway(t, cfg)
	auth := []string{"Authorization", "Bearer " + key}
	const msgs = `"messages":[{"role":"user","content":"count my tokens please"}]`
	streams := 0
	for i := 0; i < 4; i++ {
		// Buffered chat and completions: the answer's usage.
		for _, c := range []struct{ path, body string }{
			{"/v1/chat/completions", `{"model":"sim-model",` + msgs + `,"max_tokens":5}`},
			{"/v1/completions", `{"model":"sim-model","prompt":"once upon a time","max_tokens":4}`},
		} {
			resp, b := post(t, testClient(), gw.url(c.path), c.body, auth...)
			if resp.StatusCode != 200 || !strings.Contains(string(b), `"usage"`) {
				t.Fatalf("%s: %d %s", c.path, resp.StatusCode, b)
			}
		}
		// Streams without include_usage: no usage event reaches the client.
		a := readSSE(t, gw.url("/v1/chat/completions"), `{"model":"sim-model","stream":true,`+msgs+`,"max_tokens":6}`, auth...)
		streams++
		if a.status != 200 || !a.done || a.usageSeen != 0 || a.content.Len() == 0 {
			t.Fatalf("stream without include_usage: status %d done %v usage events %d content %q", a.status, a.done, a.usageSeen, a.content.String())
		}
		a = readSSE(t, gw.url("/v1/completions"), `{"model":"sim-model","stream":true,"prompt":"tell me","max_tokens":3,"stream_options":null}`, auth...)
		streams++
		if a.status != 200 || !a.done || a.usageSeen != 0 {
			t.Fatalf("completion stream: status %d done %v usage events %d", a.status, a.done, a.usageSeen)
		}
		// The client's own include_usage: its usage event, once.
		a = readSSE(t, gw.url("/v1/chat/completions"), `{"model":"sim-model","stream":true,"stream_options":{"include_usage":true},`+msgs+`,"max_tokens":7}`, auth...)
		streams++
		if a.status != 200 || !a.done || a.usageSeen != 1 || a.completion != 7 {
			t.Fatalf("stream with include_usage: status %d done %v usage events %d completion %d", a.status, a.done, a.usageSeen, a.completion)
		}
	}
	// A stream's Finish may still run after its client read the end.
	waitFor(t, 5*time.Second, "every request finished", func() bool { return gw.g.InFlight() == 0 })
	var prompt, generated float64
	for _, n := range nodes {
		fams := scrapeURL(t, "http://"+n.Addr()+"/metrics")
		prompt += sumSeries(fams, "vllm:prompt_tokens_total", nil)
		generated += sumSeries(fams, "vllm:generation_tokens_total", nil)
	}
	if prompt == 0 || generated == 0 {
		t.Fatalf("the engines report %v prompt and %v generated tokens", prompt, generated)
	}
	fams := scrapeURL(t, "http://"+gw.admin+"/metrics")
	route := map[string]string{"route": "sim-model", "model": "sim-model"}
	in := sumSeries(fams, "switchyard_gateway_tokens_total", map[string]string{"route": "sim-model", "model": "sim-model", "type": "input"})
	out := sumSeries(fams, "switchyard_gateway_tokens_total", map[string]string{"route": "sim-model", "model": "sim-model", "type": "output"})
	if in != prompt || out != generated {
		t.Errorf("gateway counted %v input and %v output tokens; the engines processed %v and %v", in, out, prompt, generated)
	}
	tin := sumSeries(fams, "switchyard_gateway_tenant_tokens_total", map[string]string{"tenant": "team-t", "type": "input"})
	tout := sumSeries(fams, "switchyard_gateway_tenant_tokens_total", map[string]string{"tenant": "team-t", "type": "output"})
	if tin != in || tout != out {
		t.Errorf("tenant tokens %v/%v, route tokens %v/%v", tin, tout, in, out)
	}
	if n := sumSeries(fams, "switchyard_gateway_time_to_first_token_seconds", route); int(n) != streams {
		t.Errorf("%v time-to-first-token samples for %d streams", n, streams)
	}
	if n := sumSeries(fams, "switchyard_gateway_inter_token_latency_seconds", route); n == 0 {
		t.Error("no inter-token latency sample")
	}
	if n := sumSeries(fams, "switchyard_gateway_node_requests_total", map[string]string{"route": "sim-model"}); int(n) != 5*4 {
		t.Errorf("per-node requests %v, want %d", n, 5*4)
	}
	if n := sumSeries(fams, "switchyard_gateway_requests_total", route); int(n) != 5*4 {
		t.Errorf("requests %v, want %d", n, 5*4)
	}
	// The tenant's budget was charged with what the engines report.
	var ts struct {
		Tenants []struct {
			Name  string `json:"name"`
			Usage struct {
				Tokens int64 `json:"tokens"`
			} `json:"usage"`
		} `json:"tenants"`
	}
	getAdmin(t, gw, "/admin/tenants", &ts)
	if len(ts.Tenants) != 1 || float64(ts.Tenants[0].Usage.Tokens) != in+out {
		t.Errorf("tenant usage %+v, want %v tokens", ts.Tenants, in+out)
	}
}

// TestTokenBudget: a tenant past tokens_per_minute is refused (429
// rate_limit_exceeded) once its answers' usage is charged.
func TestTokenBudget(t *testing.T) {
	nodes := startSims(t, 1, "sim-model")
	const key = "sk-test-budget-0123456789abcdef"
	file := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(file, []byte("keys:\n  - {key: "+key+", tenant: small, tokens_per_minute: 20}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(simRoute("sim-model", nodes))
	cfg.Auth = &tenant.Config{Path: file, Interval: time.Hour}
	gw := startGateway(t, cfg)
	body := `{"model":"sim-model","messages":[{"role":"user","content":"a long enough prompt to spend the budget at once"}],"max_tokens":8}`
	resp, b := post(t, testClient(), gw.url("/v1/chat/completions"), body, "Authorization", "Bearer "+key)
	if resp.StatusCode != 200 {
		t.Fatalf("first request: %d %s", resp.StatusCode, b)
	}
	resp, b = post(t, testClient(), gw.url("/v1/chat/completions"), body, "Authorization", "Bearer "+key)
	if resp.StatusCode != 429 || decodeError(t, b).Error.Code != "rate_limit_exceeded" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the token budget: %d %s %v", resp.StatusCode, b, resp.Header)
	}
}

// TestModelAlias: a route whose match lists an alias sends the engine its
// upstream_model: the engine, which knows only its own name, answers.
func TestModelAlias(t *testing.T) {
	nodes := startSims(t, 1, "sim-model")
	aliased := simRoute("llama", nodes)
	aliased.Match.Models = []string{"llama", "llama-latest"}
	aliased.UpstreamModel = "sim-model"
	plain := simRoute("bare", nodes) // the alias sent as it is
	gw := startGateway(t, testConfig(aliased, plain))
	for _, m := range []string{"llama", "llama-latest"} {
		resp, b := post(t, testClient(), gw.url("/v1/chat/completions"), `{"model":"`+m+`","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`)
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"sim-model"`) {
			t.Errorf("alias %s: %d %s", m, resp.StatusCode, b)
		}
		a := readSSE(t, gw.url("/v1/chat/completions"), `{"model":"`+m+`","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":2}`)
		if a.status != 200 || !a.done {
			t.Errorf("alias %s streamed: %d done %v", m, a.status, a.done)
		}
	}
	resp, b := post(t, testClient(), gw.url("/v1/chat/completions"), `{"model":"bare","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`)
	if resp.StatusCode != 404 {
		t.Errorf("a model the engine does not serve, not rewritten: %d %s (the engine should refuse it)", resp.StatusCode, b)
	}
	waitFor(t, 5*time.Second, "every request finished", func() bool { return gw.g.InFlight() == 0 })
	fams := scrapeURL(t, "http://"+gw.admin+"/metrics")
	if n := sumSeries(fams, "switchyard_gateway_requests_total", map[string]string{"route": "llama", "model": "llama-latest"}); n != 2 {
		t.Errorf("requests counted under the alias the client used: %v, want 2", n)
	}
}

// TestFallback: a route whose nodes fail (5xx), refuse (429) or are all
// busy sends the request to its fallback route, once; without a fallback
// the failure is the client's answer.
func TestFallback(t *testing.T) {
	backup := startSims(t, 1, "backup")
	var status atomic.Int32
	status.Store(500)
	release := make(chan struct{})
	defer close(release)
	primary := backend(t, "p", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			return // health probes
		}
		_, _ = io.Copy(io.Discard, r.Body)
		switch s := int(status.Load()); s {
		case 0: // busy: hold the request
			<-release
			_, _ = io.WriteString(w, `{}`)
		default:
			w.WriteHeader(s)
			_, _ = io.WriteString(w, `{"error":{"message":"no"}}`)
		}
	})
	main := staticRoute("main", primary.URL)
	main.Retries.Attempts = 0
	main.Breaker.Failures = 1000
	main.Outlier.Disable = true
	main.UpstreamModel = "main-v2"
	main.Fallback = &FallbackConfig{Target: "backup"}
	main.Queue.Timeout = 100 * time.Millisecond
	bk := simRoute("backup", backup)
	bk.UpstreamModel = "backup"
	noFallback := staticRoute("solo", primary.URL)
	noFallback.Retries.Attempts = 0
	noFallback.Outlier.Disable = true
	cfg := testConfig(main, bk, noFallback)
	cfg.Limits.MaxPerNode = 1
	gw := startGateway(t, cfg)
	var lastFallback atomic.Value // the X-Switchyard-Fallback of the last answer
	ask := func(model string) (int, string) {
		resp, b := post(t, testClient(), gw.url("/v1/chat/completions"), `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`)
		lastFallback.Store(resp.Header.Get("X-Switchyard-Fallback"))
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		status int32
		why    string
	}{{500, "5xx"}, {502, "5xx"}, {429, "429"}} {
		status.Store(c.status)
		if code, b := ask("main"); code != 200 || !strings.Contains(b, `"backup"`) {
			t.Errorf("primary answering %d: %d %s, want the backup's answer", c.status, code, b)
		}
		if h := lastFallback.Load(); h != c.why {
			t.Errorf("primary answering %d: X-Switchyard-Fallback %q, want %q", c.status, h, c.why)
		}
		if code, _ := ask("solo"); code != int(c.status) {
			t.Errorf("no fallback, primary answering %d: client got %d", c.status, code)
		}
		if h := lastFallback.Load(); h != "" {
			t.Errorf("no fallback: X-Switchyard-Fallback %q on the primary's own answer", h)
		}
	}
	// Busy: one request holds the only slot; the next waits out the
	// queue's timeout, then falls back.
	status.Store(0)
	held := make(chan int, 1)
	go func() {
		code, _ := ask("main")
		held <- code
	}()
	waitFor(t, 5*time.Second, "the primary's slot taken", func() bool { return gw.g.core.Routes().Route("main").InFlight() == 1 })
	if code, b := ask("main"); code != 200 || !strings.Contains(b, `"backup"`) {
		t.Errorf("saturated primary: %d %s, want the backup's answer", code, b)
	}
	if h := lastFallback.Load(); h != "saturated" {
		t.Errorf("saturated primary: X-Switchyard-Fallback %q, want saturated", h)
	}
	release <- struct{}{}
	if code := <-held; code != 200 {
		t.Errorf("the held request: %d", code)
	}
	waitFor(t, 5*time.Second, "every request finished", func() bool { return gw.g.InFlight() == 0 })
	fams := scrapeURL(t, "http://"+gw.admin+"/metrics")
	if n := sumSeries(fams, "switchyard_gateway_requests_total", map[string]string{"route": "backup", "code": "2xx"}); n != 4 {
		t.Errorf("the backup route served %v requests, want 4", n)
	}
	for why, want := range map[string]float64{"5xx": 2, "429": 1, "saturated": 1} {
		if n := sumSeries(fams, "switchyard_gateway_fallbacks_total", map[string]string{"route": "main", "reason": why}); n != want {
			t.Errorf("switchyard_gateway_fallbacks_total{route=main,reason=%s} = %v, want %v", why, n, want)
		}
		if n := sumSeries(fams, "switchyard_gateway_fallbacks_total", map[string]string{"route": "solo", "reason": why}); n != 0 {
			t.Errorf("switchyard_gateway_fallbacks_total{route=solo,reason=%s} = %v, want 0", why, n)
		}
	}
}

// TestStreamKeepAlive: with stream_keepalive, a long silence in the
// middle of a streamed answer reaches the client as SSE comments between
// events; the events themselves arrive whole and in order.
func TestStreamKeepAlive(t *testing.T) {
	pause := make(chan struct{})
	be := backend(t, "thinker", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		f := w.(http.Flusher)
		write := func(s string) {
			_, _ = io.WriteString(w, s)
			f.Flush()
		}
		write(`data: {"choices":[{"index":0,"delta":{"content":"thinking"}}]}` + "\n\n")
		write(`data: {"choices":[{"index":0,"delta":{"content":" hard"`) // half an event, then silence
		select {
		case <-pause:
		case <-r.Context().Done():
			return
		}
		write(`}}]}` + "\n\n")
		write(`data: {"choices":[{"index":0,"delta":{"content":" done"},"finish_reason":"stop"}]}` + "\n\n")
		write("data: [DONE]\n\n")
	})
	rc := staticRoute("m", be.URL)
	rc.StreamKeepAlive = time.Second
	gw := startGateway(t, testConfig(rc))
	got := make(chan *sseAnswer, 1)
	go func() { got <- readSSE(t, gw.url("/v1/chat/completions"), `{"model":"m","stream":true,"messages":[]}`) }()
	// The node stays silent until the gateway has sent two keep-alives:
	// the route's keep-alive counter is what the test waits on.
	waitFor(t, 10*time.Second, "two keep-alive comments", func() bool {
		return gw.g.core.KeepAlivesSent() >= 2
	})
	close(pause)
	var a *sseAnswer
	select {
	case a = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end")
	}
	if a.status != 200 || !a.done || a.content.String() != "thinking hard done" || a.keepAlives < 2 {
		t.Fatalf("status %d done %v content %q keep-alives %d", a.status, a.done, a.content.String(), a.keepAlives)
	}
}

// TestAccessLog (issue 15): with telemetry.access_log on, a streamed
// request's line carries its method and path, request id, tenant, model,
// route, node, status, upstream time, time to first token and tokens; the
// API key never appears.
func TestAccessLog(t *testing.T) {
	nodes := startSims(t, 1, "sim-model")
	const key = "sk-test-logged-0123456789abcdef"
	file := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(file, []byte("keys:\n  - {key: "+key+", tenant: team-log}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(simRoute("sim-model", nodes))
	cfg.Auth = &tenant.Config{Path: file, Interval: time.Hour}
	cfg.Telemetry.AccessLog = true
	var logs testlog.Buffer
	g, err := New(cfg, WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw := serveOn(t, g, cl)
	a := readSSE(t, gw.url("/v1/chat/completions"), `{"model":"sim-model","stream":true,"messages":[{"role":"user","content":"log me"}],"max_tokens":4}`,
		"Authorization", "Bearer "+key, "X-Request-Id", "req-42")
	if a.status != 200 || !a.done {
		t.Fatalf("stream: %d done %v", a.status, a.done)
	}
	waitFor(t, 5*time.Second, "the access log line", func() bool { return strings.Contains(logs.String(), `"req-42"`) })
	var line map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"req-42"`) {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k, want := range map[string]any{
		"method": "POST", "path": "/v1/chat/completions", "status": float64(200), "tenant": "team-log",
		"model": "sim-model", "route": "sim-model", "node": nodes[0].ID(), "streamed": true, "output_tokens": float64(4),
	} {
		if line[k] != want {
			t.Errorf("access log %s = %v, want %v (line %v)", k, line[k], want, line)
		}
	}
	for _, k := range []string{"upstream_time", "ttft", "duration", "input_tokens"} {
		if _, ok := line[k]; !ok {
			t.Errorf("access log lacks %s: %v", k, line)
		}
	}
	if strings.Contains(logs.String(), key) {
		t.Error("the API key is in the log")
	}
}
