package gateway

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRefusalsPassOn: an engine's 429 reaches the client as 429 with the
// engine's Retry-After, also once a retry on another node was refused
// too; and refusals with a Retry-After never trip the breaker (one
// failure would open it here; TestRefusalsKeepBreakerClosed checks the
// breaker of one refusing node beside a serving one).
func TestRefusalsPassOn(t *testing.T) {
	full := func(name string, status int) string {
		return backend(t, name, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(status)
		}).URL
	}
	for _, tc := range []struct {
		name   string
		nodes  []string
		status int
	}{
		{"one node, 429", []string{full("a", 429)}, 429},
		{"two nodes, both 429", []string{full("b", 429), full("c", 429)}, 429},
		{"two nodes, both 503", []string{full("d", 503), full("e", 503)}, 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(staticRoute("m", tc.nodes...))
			cfg.Routes[0].Retries.BudgetPercent = 100
			cfg.Routes[0].Breaker.Failures = 1
			gw := startGateway(t, cfg)
			for i := 0; i < 6; i++ {
				resp, body := post(t, testClient(), gw.url("/v1/completions"), `{"model":"m"}`)
				ra := resp.Header.Get("Retry-After")
				// A 503 marks its node as draining: later requests find no
				// node and get the gateway's own 503 with its Retry-After.
				if resp.StatusCode != tc.status || ra == "" || tc.status == 429 && ra != "7" {
					t.Fatalf("request %d: %d Retry-After %q %s", i, resp.StatusCode, resp.Header.Get("Retry-After"), body)
				}
			}
			r := gw.g.core.Routes().Route("m")
			if e := r.Stats().Ejections(); e != 0 {
				t.Errorf("refusals with Retry-After opened %d breakers", e)
			}
		})
	}
}

// TestRefusalsKeepBreakerClosed: a node's refusal with a Retry-After (503
// while it drains or starts, 429 while its queue is full) is the node
// telling, not failing: with a breaker that opens at the first failure,
// the refusing node's breaker stays closed and counts no failure, while
// the retry on the other node answers the client. The node leaves the
// picks for another reason ("draining" after a 503, "overload" after a
// 429), never "breaker".
func TestRefusalsKeepBreakerClosed(t *testing.T) {
	for _, status := range []int{503, 429} {
		t.Run(itoa(status), func(t *testing.T) {
			var refusals atomic.Int32
			refusing := backend(t, "refusing", func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodPost {
					return // health checks pass: only the refusals speak
				}
				_, _ = io.ReadAll(r.Body)
				refusals.Add(1)
				w.Header().Set("Retry-After", "7")
				w.WriteHeader(status)
			})
			ok := backend(t, "ok", nil)
			cfg := testConfig(staticRoute("m", refusing.URL, ok.URL))
			rc := &cfg.Routes[0]
			rc.Retries.BudgetPercent = 100
			rc.Breaker.Failures = 1
			rc.Breaker.OpenFor = time.Minute // an opened breaker stays open until the assertion
			gw := startGateway(t, cfg)
			for i := 0; refusals.Load() == 0; i++ {
				if i == 20 {
					t.Fatal("20 requests and the refusing node got none")
				}
				resp, body := post(t, testClient(), gw.url("/v1/completions"), `{"model":"m"}`)
				if resp.StatusCode != 200 || resp.Header.Get("X-Node") != "ok" {
					t.Fatalf("request %d: %d from %q %s", i, resp.StatusCode, resp.Header.Get("X-Node"), body)
				}
			}
			var v struct {
				Nodes []struct {
					ID       string   `json:"id"`
					Breaker  string   `json:"breaker"`
					Failing  int32    `json:"failing"`
					Excluded []string `json:"excluded"`
				} `json:"nodes"`
			}
			getAdmin(t, gw, "/admin/nodes", &v)
			seen := false
			for _, n := range v.Nodes {
				if n.ID != hostOf(refusing) {
					continue
				}
				seen = true
				if n.Breaker != "closed" || n.Failing != 0 || slices.Contains(n.Excluded, "breaker") {
					t.Errorf("after %d refusal(s) with Retry-After: breaker %s, failing %d, excluded %v",
						refusals.Load(), n.Breaker, n.Failing, n.Excluded)
				}
			}
			if !seen {
				t.Fatalf("/admin/nodes lacks the refusing node: %+v", v.Nodes)
			}
			if e := gw.g.core.Routes().Route("m").Stats().Ejections(); e != 0 {
				t.Errorf("refusals with Retry-After opened %d breakers", e)
			}
		})
	}
}

// TestBusyNodeRests (found by the chaos suite): a node that refuses with
// 429 and a Retry-After is left alone for that long while another node
// can serve: with retries off, at most its first refusal reaches a
// client, not one request in two.
func TestBusyNodeRests(t *testing.T) {
	busy := backend(t, "busy", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			return
		}
		_, _ = io.ReadAll(r.Body)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	ok := backend(t, "ok", nil)
	cfg := testConfig(staticRoute("m", busy.URL, ok.URL))
	cfg.Routes[0].Retries.Attempts = 0
	gw := startGateway(t, cfg)
	refused := 0
	for i := 0; i < 20; i++ {
		resp, _ := post(t, testClient(), gw.url("/v1/completions"), `{"model":"m"}`)
		switch resp.StatusCode {
		case 429:
			refused++
		case 200:
		default:
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if refused > 1 {
		t.Errorf("%d of 20 requests got the busy node's 429; it should rest after the first", refused)
	}
	var v struct {
		Nodes []struct {
			ID       string   `json:"id"`
			Excluded []string `json:"excluded"`
		} `json:"nodes"`
	}
	getAdmin(t, gw, "/admin/nodes", &v)
	for _, n := range v.Nodes {
		if n.ID == hostOf(busy) && (len(n.Excluded) != 1 || n.Excluded[0] != "overload") && refused == 1 {
			t.Errorf("the busy node's exclusions: %v", n.Excluded)
		}
	}
}

// rawAnswer writes raw bytes to the gateway and returns what it
// answers (until it closes or 2 s pass).
func rawAnswer(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = io.WriteString(c, raw)
	method, _, _ := strings.Cut(raw, " ")
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw[:min(len(raw), 40)], err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.Status + "\n" + string(b)
}

// TestSmallerHardening covers issue 12's item 7 on the client port.
func TestSmallerHardening(t *testing.T) {
	var mu sync.Mutex
	var hosts, methods []string
	be := backend(t, "n", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		methods = append(methods, r.Method)
		mu.Unlock()
		_, _ = io.ReadAll(r.Body)
		h := w.Header()
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Connection", "keep-alive")
		h.Set("Upgrade", "h2c")
		h.Set("X-Kept", "yes")
		_, _ = io.WriteString(w, `{}`)
	})
	gw := startGateway(t, testConfig(staticRoute("m", be.URL)))
	body := `{"model":"m"}`

	for _, method := range []string{"GET", "HEAD"} {
		t.Run(method+" with Content-Length and Transfer-Encoding", func(t *testing.T) {
			// A path the route serves, so only the framing conflict refuses it.
			got := rawAnswer(t, gw.addr, method+" /v2/models/m/ready HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
			if !strings.HasPrefix(got, "400") {
				t.Fatalf("answered %q", got)
			}
			mu.Lock()
			defer mu.Unlock()
			if slices.Contains(methods, method) {
				t.Fatalf("the node got the %s", method)
			}
		})
	}
	t.Run("absolute-form target keeps the Host", func(t *testing.T) {
		got := rawAnswer(t, gw.addr, "POST http://evil.example/v1/completions HTTP/1.1\r\nHost: real.example\r\nContent-Type: application/json\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body)
		if !strings.HasPrefix(got, "200") {
			t.Fatalf("answered %q", got)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(hosts) == 0 || hosts[len(hosts)-1] != "real.example" {
			t.Fatalf("the node saw Host %q", hosts)
		}
	})
	t.Run("hop-by-hop response headers stripped", func(t *testing.T) {
		for _, h2 := range []bool{false, true} {
			c := testClient()
			if h2 {
				c = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2cOnly()}}
			}
			resp, _ := post(t, c, gw.url("/v1/completions"), body)
			for _, h := range []string{"Keep-Alive", "Proxy-Connection", "Upgrade"} {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("h2=%v: the client got %s: %s", h2, h, v)
				}
			}
			if resp.Header.Get("X-Kept") != "yes" {
				t.Errorf("h2=%v: end-to-end header lost", h2)
			}
		}
	})
	t.Run("a 400 never echoes the request", func(t *testing.T) {
		got := rawAnswer(t, gw.addr, "POST /v1/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer sk-secret-123\r\nContent-Length: nope\r\n\r\n")
		if !strings.HasPrefix(got, "400") || strings.Contains(got, "sk-secret") || strings.Contains(got, "Authorization") {
			t.Fatalf("answered %q", got)
		}
	})
	t.Run("Connection: close while draining", func(t *testing.T) {
		gw2 := startGateway(t, testConfig(staticRoute("m", be.URL)))
		gw2.g.core.Drain()
		resp, _ := post(t, testClient(), gw2.url("/v1/completions"), body)
		if !resp.Close {
			t.Fatal("a draining gateway's answer does not ask the client to close")
		}
	})
}

// TestRoutingLoop: a node address that is the gateway itself is answered
// 508 at the second pass instead of looping until something breaks.
func TestRoutingLoop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the gateway takes the port below
	cfg := testConfig(staticRoute("m", "http://"+addr))
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("port %s taken again: %v", addr, err)
	}
	tg := serveOn(t, g, cl)
	resp, b := post(t, testClient(), tg.url("/v1/completions"), `{"model":"m"}`)
	if resp.StatusCode != 508 || decodeError(t, b).Error.Code != "loop_detected" {
		t.Fatalf("answered %d %s", resp.StatusCode, b)
	}
}
