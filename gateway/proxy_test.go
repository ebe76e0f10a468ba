package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
	"github.com/switchyard-dev/switchyard/gateway/split"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
)

func TestRouting(t *testing.T) {
	a := backend(t, "a", nil)
	b := backend(t, "b", nil)
	k := backend(t, "k", nil)
	ray := backend(t, "ray", nil)
	cfg := testConfig(
		staticRoute("llama", a.URL),
		staticRoute("qwen", b.URL),
		RouteConfig{Name: "kserve-resnet", Match: MatchConfig{Models: []string{"resnet"}, PathPrefix: "/v2/"}, Nodes: []NodeConfig{{HTTP: hostOf(k)}}},
		RouteConfig{Name: "ray", Match: MatchConfig{RayPrefix: "/summarize"}, Nodes: []NodeConfig{{HTTP: hostOf(ray)}}},
		RouteConfig{Name: "tenant", Match: MatchConfig{Headers: map[string]string{"X-Tenant": "blue"}}, Nodes: []NodeConfig{{HTTP: hostOf(b)}}, AllowPaths: []string{"/anything"}},
	)
	gw := startGateway(t, cfg)
	c := testClient()
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		hdr      []string
		status   int
		node     string
		errCode  string
		contains string
	}{
		{name: "openai model a", method: "POST", path: "/v1/chat/completions", body: `{"model":"llama","messages":[]}`, status: 200, node: "a"},
		{name: "openai model b", method: "POST", path: "/v1/chat/completions", body: `{"messages":[{"model":"llama"}], "model" : "qwen"}`, status: 200, node: "b"},
		{name: "escaped model", method: "POST", path: "/v1/completions", body: `{"model":"ll\u0061ma"}`, status: 200, node: "a"},
		{name: "kserve path", method: "POST", path: "/v2/models/resnet/infer", body: `{"inputs":[]}`, status: 200, node: "k"},
		{name: "ray prefix", method: "POST", path: "/summarize/run", body: `x`, hdr: []string{"Content-Type", "text/plain"}, status: 200, node: "ray"},
		{name: "ray prefix not a segment", method: "POST", path: "/summarizer", body: `x`, hdr: []string{"Content-Type", "text/plain"}, status: 404, errCode: "model_not_found"},
		{name: "header route", method: "POST", path: "/anything", body: `x`, hdr: []string{"Content-Type", "text/plain", "X-Tenant", "blue"}, status: 200, node: "b"},
		{name: "unknown model", method: "POST", path: "/v1/chat/completions", body: `{"model":"gpt-9"}`, status: 404, errCode: "model_not_found", contains: `gpt-9`},
		{name: "unknown kserve model", method: "POST", path: "/v2/models/nope/infer", body: `{}`, status: 404, errCode: "model_not_found", contains: "llama"},
		{name: "invalid json", method: "POST", path: "/v1/chat/completions", body: `{"model":"llama",`, status: 400, errCode: "invalid_request"},
		{name: "model not a string", method: "POST", path: "/v1/chat/completions", body: `{"model":7}`, status: 400, errCode: "invalid_request"},
		{name: "non-utf8 model", method: "POST", path: "/v1/chat/completions", body: "{\"model\":\"ll\xffma\"}", status: 400, errCode: "invalid_request"},
		{name: "non-utf8 kserve model", method: "POST", path: "/v2/models/re%FFsnet/infer", body: `{}`, status: 400, errCode: "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, gw.url(tc.path), strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, tc.status, body)
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Errorf("no X-Request-Id in the response")
			}
			if tc.node != "" {
				if got := resp.Header.Get("X-Node"); got != tc.node {
					t.Errorf("served by %q, want %q", got, tc.node)
				}
				var echo struct{ RID string }
				_ = json.Unmarshal(body, &echo)
				if echo.RID == "" || echo.RID != resp.Header.Get("X-Request-Id") {
					t.Errorf("node saw request id %q, client got %q", echo.RID, resp.Header.Get("X-Request-Id"))
				}
			}
			if tc.errCode != "" {
				e := decodeError(t, body)
				if e.Error.Code != tc.errCode {
					t.Errorf("code %q, want %q", e.Error.Code, tc.errCode)
				}
				if e.Error.RequestID != resp.Header.Get("X-Request-Id") {
					t.Errorf("body request id %q, header %q", e.Error.RequestID, resp.Header.Get("X-Request-Id"))
				}
			}
			if tc.contains != "" && !strings.Contains(string(body), tc.contains) {
				t.Errorf("body %s lacks %s", body, tc.contains)
			}
		})
	}
	t.Run("x-forwarded-for", func(t *testing.T) {
		seen := make(chan string, 2)
		xb := backend(t, "x", func(w http.ResponseWriter, r *http.Request) {
			seen <- r.Header.Get("X-Forwarded-For")
			_, _ = io.WriteString(w, "{}")
		})
		gw2 := startGateway(t, testConfig(staticRoute("x", xb.URL)))
		post(t, c, gw2.url("/v1/completions"), `{"model":"x"}`)
		post(t, c, gw2.url("/v1/completions"), `{"model":"x"}`, "X-Forwarded-For", "10.1.2.3")
		if a, b := <-seen, <-seen; a != "127.0.0.1" || b != "10.1.2.3, 127.0.0.1" {
			t.Fatalf("X-Forwarded-For %q then %q", a, b)
		}
	})
	t.Run("client request id kept", func(t *testing.T) {
		resp, body := post(t, c, gw.url("/v1/chat/completions"), `{"model":"llama"}`, "X-Request-Id", "abc-123")
		if resp.Header.Get("X-Request-Id") != "abc-123" || !strings.Contains(string(body), `"rid":"abc-123"`) {
			t.Fatalf("request id not kept: %v %s", resp.Header, body)
		}
	})
	t.Run("v1/models", func(t *testing.T) {
		resp, err := c.Get(gw.url("/v1/models"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list struct {
			Object string
			Data   []struct{ ID, Object string }
		}
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, d := range list.Data {
			ids = append(ids, d.ID)
		}
		if list.Object != "list" || strings.Join(ids, ",") != "llama,qwen,resnet" {
			t.Fatalf("models %+v", list)
		}
	})
}

// TestStreamingChunks: an SSE chat completion reaches the client chunk by
// chunk: in lockstep, the backend writes each chunk only after the client
// has read the one before, so a gateway that buffered any of the answer
// would stall the exchange (and fail at the test's deadline) rather than
// merely deliver it late.
func TestStreamingChunks(t *testing.T) {
	const chunks = 5
	next := make(chan struct{}, chunks) // the client read a chunk: write the next
	be := backend(t, "sse", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		f := w.(http.Flusher)
		for i := 0; i < chunks; i++ {
			if i > 0 {
				select {
				case <-next:
				case <-r.Context().Done():
					return
				}
			}
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"tok%d\"}}]}\n\n", i)
			f.Flush()
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
		f.Flush()
	})
	gw := startGateway(t, testConfig(staticRoute("m", be.URL)))
	for _, mode := range []string{"body stream:true", "accept header"} {
		t.Run(mode, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
			if mode == "accept header" {
				body = `{"model":"m"}`
			}
			req, _ := http.NewRequestWithContext(ctx, "POST", gw.url("/v1/chat/completions"), strings.NewReader(body))
			if mode == "accept header" {
				req.Header.Set("Accept", "text/event-stream")
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := testClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			br := bufio.NewReader(resp.Body)
			got := 0
			for {
				line, err := br.ReadString('\n')
				if strings.HasPrefix(line, "data: {") {
					if want := fmt.Sprintf("tok%d", got); !strings.Contains(line, want) {
						t.Fatalf("chunk %d is %q, want %s", got, line, want)
					}
					got++
					if got < chunks {
						next <- struct{}{}
					}
				}
				if err != nil {
					if ctx.Err() != nil {
						t.Fatalf("after %d of %d chunks the stream stalled: the gateway held a chunk back (%v)", got, chunks, err)
					}
					break
				}
			}
			if got != chunks {
				t.Fatalf("got %d chunks, want %d", got, chunks)
			}
		})
	}
}

// TestRetryAndBreaker: a dead node never costs a client a failure; its
// breaker opens within the first failures and it is skipped at once.
func TestRetryAndBreaker(t *testing.T) {
	live := backend(t, "live", nil)
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	cfg := testConfig(staticRoute("m", "http://"+deadAddr, live.URL))
	cfg.Routes[0].Breaker.OpenFor = time.Hour // stays open for the test
	gw := startGateway(t, cfg)
	c := testClient()
	for i := 0; i < 40; i++ {
		resp, body := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
		if resp.StatusCode != 200 || resp.Header.Get("X-Node") != "live" {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	r := gw.g.core.Routes().Route("m")
	tb := r.Table()
	var deadUp *upstream.Node
	for i := 0; i < tb.Len(); i++ {
		if u := tb.Endpoint(i).Value().(*upstream.Node); u.Addr().HTTP == deadAddr {
			deadUp = u
		}
	}
	if s := deadUp.Breaker(); s != "open" {
		t.Fatalf("dead node's breaker is %s", s)
	}
	if got := r.Stats().Ejections(); got != 1 {
		t.Errorf("ejections %d, want 1", got)
	}
	if got := r.Stats().Retries(); got < 5 || got > 6 {
		t.Errorf("retries %d; the breaker (5 failures) should have stopped them", got)
	}
	// Admin reports it.
	resp, err := c.Get("http://" + gw.admin + "/admin/nodes")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"breaker": "open"`) || !strings.Contains(string(b), `"breaker"`) {
		t.Errorf("/admin/nodes does not show the open breaker: %s", b)
	}
}

// TestBreakerHalfOpenProbe: after the open period the prober's health
// probe closes the breaker and the node takes traffic again.
func TestBreakerHalfOpenProbe(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	flaky := backend(t, "flaky", func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() {
			w.WriteHeader(500)
			return
		}
		w.Header().Set("X-Node", "flaky")
		_, _ = io.WriteString(w, "{}")
	})
	cfg := testConfig(staticRoute("m", flaky.URL))
	cfg.Routes[0].HealthPath = "/health"
	cfg.Routes[0].Breaker.Failures = 3
	gw := startGateway(t, cfg)
	c := testClient()
	for i := 0; i < 3; i++ {
		resp, _ := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
		if resp.StatusCode != 500 {
			t.Fatalf("status %d, want the node's 500 passed through", resp.StatusCode)
		}
	}
	resp, body := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("with the breaker open: %d %s", resp.StatusCode, body)
	}
	if e := decodeError(t, body); e.Error.Code != "no_healthy_node" {
		t.Fatalf("code %q", e.Error.Code)
	}
	fail.Store(false)
	waitFor(t, 5*time.Second, "the breaker to close", func() bool {
		resp, _ := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
		return resp.StatusCode == 200
	})
}

// TestNodeKilledUnderLoad: a node dies while clients send requests; no
// request that started after the kill fails, and the breaker opens.
func TestNodeKilledUnderLoad(t *testing.T) {
	slow := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			time.Sleep(2 * time.Millisecond)
			w.Header().Set("X-Node", name)
			_, _ = io.WriteString(w, "{}")
		}
	}
	a := backend(t, "a", slow("a"))
	b := backend(t, "b", slow("b"))
	victim := backend(t, "victim", slow("victim"))
	cfg := testConfig(staticRoute("m", a.URL, b.URL, victim.URL))
	cfg.Routes[0].Breaker.OpenFor = time.Hour
	gw := startGateway(t, cfg)
	c := testClient()
	var killedAt atomic.Int64
	var after, afterFailed, before, beforeFailed atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
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
				req, _ := http.NewRequest("POST", gw.url("/v1/completions"), strings.NewReader(`{"model":"m"}`))
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.Do(req)
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				k := killedAt.Load()
				if k != 0 && started > k {
					after.Add(1)
					if !ok {
						afterFailed.Add(1)
					}
				} else {
					before.Add(1)
					if !ok {
						beforeFailed.Add(1)
					}
				}
			}
		}()
	}
	waitFor(t, 5*time.Second, "load", func() bool { return before.Load() > 100 })
	victim.CloseClientConnections()
	victim.Listener.Close()
	victim.CloseClientConnections()
	killedAt.Store(time.Now().UnixNano())
	waitFor(t, 10*time.Second, "load after the kill", func() bool { return after.Load() > 300 })
	close(stop)
	wg.Wait()
	t.Logf("before kill: %d requests, %d failed; after: %d requests, %d failed", before.Load(), beforeFailed.Load(), after.Load(), afterFailed.Load())
	if afterFailed.Load() != 0 {
		t.Errorf("%d requests started after the kill failed", afterFailed.Load())
	}
	r := gw.g.core.Routes().Route("m")
	if r.Stats().Ejections() != 1 {
		t.Errorf("ejections %d, want 1", r.Stats().Ejections())
	}
}

// TestAdmission: past max_concurrent the gateway answers 503 with
// Retry-After and a JSON body, without queueing.
func TestAdmission(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int32
	be := backend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			return // the health checker's probes
		}
		arrived.Add(1)
		<-release
		_, _ = io.WriteString(w, "{}")
	})
	cfg := testConfig(staticRoute("m", be.URL))
	cfg.Limits.MaxConcurrent = 2
	gw := startGateway(t, cfg)
	c := testClient()
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
			if resp.StatusCode != 200 {
				t.Errorf("admitted request: %d", resp.StatusCode)
			}
		}()
	}
	waitFor(t, 5*time.Second, "two requests at the node", func() bool { return arrived.Load() == 2 })
	resp, body := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the limit: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if e := decodeError(t, body); e.Error.Code != "overloaded" {
		t.Fatalf("code %q", e.Error.Code)
	}
	close(release)
	wg.Wait()
	t.Run("per node", func(t *testing.T) {
		// Every node full: the request waits in the route's queue (issue
		// 14) and goes as soon as a node frees; past the queue's timeout
		// it gets 503 queue_timeout with Retry-After.
		release := make(chan struct{})
		var arrived atomic.Int32
		be := backend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				return // the health checker's probes
			}
			arrived.Add(1)
			<-release
			_, _ = io.WriteString(w, "{}")
		})
		defer close(release)
		cfg := testConfig(staticRoute("m", be.URL))
		cfg.Limits.MaxPerNode = 1
		cfg.Routes[0].Queue.Timeout = 300 * time.Millisecond
		gw := startGateway(t, cfg)
		done := make(chan int, 2)
		go func() {
			resp, _ := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
			done <- resp.StatusCode
		}()
		waitFor(t, 5*time.Second, "one request at the node", func() bool { return arrived.Load() == 1 })
		resp, body := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || decodeError(t, body).Error.Code != "queue_timeout" {
			t.Fatalf("node full past the queue timeout: %d %s", resp.StatusCode, body)
		}
		go func() {
			resp, _ := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
			done <- resp.StatusCode
		}()
		waitFor(t, 5*time.Second, "a request queued", func() bool { return gw.g.core.Routes().Route("m").Queue().Depth(0) == 1 })
		release <- struct{}{} // the first answers; the queued one takes its slot
		if s := <-done; s != 200 {
			t.Fatalf("first: %d", s)
		}
		waitFor(t, 5*time.Second, "the queued request at the node", func() bool { return arrived.Load() == 2 })
		release <- struct{}{}
		if s := <-done; s != 200 {
			t.Fatalf("queued: %d", s)
		}
	})
}

// TestTimeouts: first-byte, idle-between-chunks and total timeouts answer
// 504 (or cut the stream) and are not retried.
// TestQueueCountsOnlyEligibleNodes: an excluded node's slots are not the
// queue's: with one of two nodes taken out, a request that finds the other
// full waits for it in the queue (and is served) instead of being turned
// away as saturated.
func TestQueueCountsOnlyEligibleNodes(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var arrived atomic.Int32
	slow := func(name string) *httptest.Server {
		return backend(t, name, func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost {
				return
			}
			arrived.Add(1)
			<-release
			w.Header().Set("X-Node", name)
			_, _ = io.WriteString(w, "{}")
		})
	}
	a, b := slow("a"), slow("b")
	cfg := testConfig(staticRoute("m", a.URL, b.URL))
	cfg.Limits.MaxPerNode = 1
	cfg.Admin.TokenFile = adminTokenFile(t, pageToken)
	gw := startGateway(t, cfg)
	adminAction(t, gw, "m", hostOf(b), "exclude")
	q := gw.g.core.Routes().Route("m").Queue()
	waitFor(t, 5*time.Second, "the queue to count one node", func() bool { return q.Limit() == 1 })
	done := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func() {
			resp, _ := post(t, testClient(), gw.url("/v1/completions"), `{"model":"m"}`)
			done <- resp.StatusCode
		}()
	}
	waitFor(t, 5*time.Second, "one request at the node, one queued", func() bool {
		return arrived.Load() == 1 && q.Depth(0) == 1
	})
	release <- struct{}{}
	release <- struct{}{}
	for i := 0; i < 2; i++ {
		if s := <-done; s != 200 {
			t.Fatalf("request %d: %d", i, s)
		}
	}
}

func TestTimeouts(t *testing.T) {
	var calls atomic.Int32
	hang := backend(t, "hang", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			return // the health checker's probes: not forwarded requests
		}
		calls.Add(1)
		_, _ = io.ReadAll(r.Body) // lets net/http notice the gateway hanging up
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	stall := backend(t, "stall", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	cfg := testConfig(staticRoute("hang", hang.URL, hang.URL), staticRoute("stall", stall.URL))
	cfg.Routes[0].Nodes[1].ID = "second" // two nodes on one server: a retry would show as 2 calls
	cfg.Routes[0].Timeouts.FirstByte = 200 * time.Millisecond
	cfg.Routes[1].Timeouts.Idle = 200 * time.Millisecond
	gw := startGateway(t, cfg)
	c := testClient()
	begin := time.Now()
	resp, body := post(t, c, gw.url("/v1/completions"), `{"model":"hang"}`)
	if resp.StatusCode != 504 {
		t.Fatalf("first byte timeout: %d %s", resp.StatusCode, body)
	}
	if e := decodeError(t, body); e.Error.Code != "upstream_timeout" {
		t.Fatalf("code %q", e.Error.Code)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	if calls.Load() != 1 {
		t.Fatalf("timed-out request was sent %d times; timeouts are not retried", calls.Load())
	}
	req, _ := http.NewRequest("POST", gw.url("/v1/chat/completions"), strings.NewReader(`{"model":"stall","stream":true}`))
	req.Header.Set("Content-Type", "application/json")
	sresp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(sresp.Body)
	sresp.Body.Close()
	if err == nil {
		t.Fatalf("stalled stream ended cleanly (%q); want a cut connection", b)
	}
	if !strings.Contains(string(b), "data: 1") {
		t.Fatalf("first chunk lost: %q", b)
	}
}

// TestSplitAndShadow: a route with a split sends each user to a sticky
// variant (named in the response), an override header forces one; a route
// with a shadow mirrors its requests to the shadow target.
func TestSplitAndShadow(t *testing.T) {
	var shadowed atomic.Int32
	a := backend(t, "a", nil)
	b := backend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(shadow.DefaultMarkerHeader) != "" {
			shadowed.Add(1)
		}
		w.Header().Set("X-Node", "b")
		_, _ = io.WriteString(w, `{"node":"b"}`)
	})
	sc := split.DefaultConfig()
	sc.Variants = split.Variants{{Name: "va", Weight: 50, Target: "model-a"}, {Name: "vb", Weight: 50, Target: "model-b"}}
	sc.Key = split.KeyConfig{Header: "X-User"}
	shc := shadow.DefaultConfig()
	shc.Target = "model-b"
	cfg := testConfig(
		RouteConfig{Name: "chat", Match: MatchConfig{Models: []string{"chat"}}, Nodes: []NodeConfig{{HTTP: hostOf(a)}}, Split: &sc},
		RouteConfig{Name: "mirrored", Match: MatchConfig{Models: []string{"mirrored"}}, Nodes: []NodeConfig{{HTTP: hostOf(a)}}, Shadow: &shc},
		staticRoute("model-a", a.URL),
		staticRoute("model-b", b.URL),
	)
	gw := startGateway(t, cfg)
	c := testClient()
	seen := map[string]bool{}
	for u := 0; u < 40; u++ {
		user := fmt.Sprintf("user-%d", u)
		var first string
		for k := 0; k < 3; k++ {
			resp, body := post(t, c, gw.url("/v1/chat/completions"), `{"model":"chat"}`, "X-User", user)
			v := resp.Header.Get("X-Switchyard-Variant")
			if resp.StatusCode != 200 || (v == "va") != (resp.Header.Get("X-Node") == "a") {
				t.Fatalf("%s: %d variant %q node %q %s", user, resp.StatusCode, v, resp.Header.Get("X-Node"), body)
			}
			if k == 0 {
				first = v
			} else if v != first {
				t.Fatalf("%s moved from %s to %s", user, first, v)
			}
		}
		seen[first] = true
	}
	if !seen["va"] || !seen["vb"] {
		t.Fatalf("40 users all landed on %v", seen)
	}
	resp, _ := post(t, c, gw.url("/v1/chat/completions"), `{"model":"chat"}`, "X-User", "user-1", sc.OverrideHeader, "vb")
	if resp.Header.Get("X-Switchyard-Variant") != "vb" || resp.Header.Get("X-Node") != "b" {
		t.Fatalf("override: variant %q node %q", resp.Header.Get("X-Switchyard-Variant"), resp.Header.Get("X-Node"))
	}
	for i := 0; i < 5; i++ {
		resp, _ := post(t, c, gw.url("/v1/chat/completions"), `{"model":"mirrored"}`)
		if resp.StatusCode != 200 || resp.Header.Get("X-Node") != "a" {
			t.Fatalf("primary of the mirrored route: %d %q", resp.StatusCode, resp.Header.Get("X-Node"))
		}
	}
	waitFor(t, 5*time.Second, "5 shadow copies at b", func() bool { return shadowed.Load() == 5 })
}

// TestResponseTooLarge: a buffered answer over max_response_bytes is a 502,
// not the client's fault.
func TestResponseTooLarge(t *testing.T) {
	big := backend(t, "big", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		_, _ = w.Write(make([]byte, 64<<10))
	})
	cfg := testConfig(staticRoute("m", big.URL))
	cfg.Limits.MaxResponseBytes = 1 << 10
	gw := startGateway(t, cfg)
	resp, body := post(t, testClient(), gw.url("/v1/completions"), `{"model":"m"}`)
	if resp.StatusCode != 502 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	decodeError(t, body)
}

// TestStaleKeepAlive: a node that closes keep-alive connections while
// they sit idle in the gateway's pool (uvicorn does after 5 s) costs the
// client nothing and its breaker nothing: fasthttp resends once on the
// same node when a reused connection turns out closed.
func TestStaleKeepAlive(t *testing.T) {
	be, closed := closingNode(t)
	gw := startGateway(t, testConfig(staticRoute("m", "http://"+be)))
	c := testClient()
	for i := 0; i < 5; i++ {
		resp, body := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
		if resp.StatusCode != 200 {
			t.Fatalf("request %d on a stale pooled connection: %d %s", i, resp.StatusCode, body)
		}
		select { // the node closed the connection the gateway pooled
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("request %d: the node never closed its connection", i)
		}
	}
	r := gw.g.core.Routes().Route("m")
	u := r.Table().Endpoint(0).Value().(*upstream.Node)
	if f := u.Failing(); f != 0 || r.Stats().Retries() != 0 {
		t.Errorf("stale keep-alive connections counted %d breaker failures, %d retries", f, r.Stats().Retries())
	}
}

// closingNode answers one request per connection with a keep-alive
// response, then closes the connection 10 ms later, without warning, and
// says so on the returned channel (for requests, not health probes).
func closingNode(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	closed := make(chan struct{}, 64)
	addr := connNode(t, 5*time.Second, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
		time.Sleep(10 * time.Millisecond) // the gateway pools the connection meanwhile
		_ = c.Close()
		if req.Method != http.MethodPost {
			return // a health probe's connection
		}
		select {
		case closed <- struct{}{}:
		default:
		}
	})
	return addr, closed
}

// TestRetryBudget: retries stop when the route's budget is spent; the
// failures then reach the client as 502 instead of multiplying load.
func TestRetryBudget(t *testing.T) {
	live := backend(t, "live", nil)
	var deadAddrs []string
	for i := 0; i < 2; i++ {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		deadAddrs = append(deadAddrs, "http://"+ln.Addr().String())
		ln.Close()
	}
	cfg := testConfig(staticRoute("m", append(deadAddrs, live.URL)...))
	cfg.Routes[0].Breaker.Failures = 1000 // keep the dead nodes in rotation
	cfg.Routes[0].Retries = RetryConfig{Attempts: 5, BudgetPercent: 1, MinRetries: 3}
	gw := startGateway(t, cfg)
	c := testClient()
	failed := 0
	for i := 0; i < 30; i++ {
		resp, _ := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`)
		if resp.StatusCode != 200 {
			failed++
		}
	}
	r := gw.g.core.Routes().Route("m")
	// The bank starts with MinRetries+1 and earns 1% of a retry per request.
	if got := r.Stats().Retries(); got < 3 || got > 5 {
		t.Fatalf("retries %d, want the budget's 4 (±1)", got)
	}
	if failed == 0 {
		t.Fatalf("no request failed although the retry budget was spent")
	}
	t.Logf("%d of 30 failed once the budget of %d retries was spent", failed, r.Stats().Retries())
}

// TestSplitOverH2C: the split and the mirror also apply to HTTP/2
// requests.
func TestSplitOverH2C(t *testing.T) {
	var shadowed atomic.Int32
	a := backend(t, "a", nil)
	b := backend(t, "b", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(shadow.DefaultMarkerHeader) != "" {
			shadowed.Add(1)
		}
		w.Header().Set("X-Node", "b")
		_, _ = io.WriteString(w, `{"node":"b"}`)
	})
	sc := split.DefaultConfig()
	sc.Variants = split.Variants{{Name: "va", Weight: 0, Target: "model-a"}, {Name: "vb", Weight: 100, Target: "model-b"}}
	shc := shadow.DefaultConfig()
	shc.Target = "model-b"
	cfg := testConfig(
		RouteConfig{Name: "chat", Match: MatchConfig{Models: []string{"chat"}}, Nodes: []NodeConfig{{HTTP: hostOf(a)}}, Split: &sc},
		RouteConfig{Name: "mirrored", Match: MatchConfig{Models: []string{"mirrored"}}, Nodes: []NodeConfig{{HTTP: hostOf(a)}}, Shadow: &shc},
		staticRoute("model-a", a.URL),
		staticRoute("model-b", b.URL),
	)
	gw := startGateway(t, cfg)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2cOnly()}}
	do := func(model string) *http.Response {
		req, _ := http.NewRequest("POST", gw.url("/v1/chat/completions"), strings.NewReader(`{"model":"`+model+`"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := do("chat")
	if resp.ProtoMajor != 2 || resp.Header.Get("X-Switchyard-Variant") != "vb" || resp.Header.Get("X-Node") != "b" {
		t.Fatalf("h2 split: proto %d variant %q node %q", resp.ProtoMajor, resp.Header.Get("X-Switchyard-Variant"), resp.Header.Get("X-Node"))
	}
	if resp := do("mirrored"); resp.Header.Get("X-Node") != "a" {
		t.Fatalf("h2 mirrored primary: %q", resp.Header.Get("X-Node"))
	}
	waitFor(t, 5*time.Second, "the h2 request's shadow copy", func() bool { return shadowed.Load() == 1 })
}
