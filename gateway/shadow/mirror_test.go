package shadow_test

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/engines/sim"
	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

var chatFields = []string{"choices[0].message.content", "usage.completion_tokens", "choices[0].finish_reason", "model"}

// TestDifferencesCountedAndLogged: a primary and a shadow that answer
// differently (8 vs 12 tokens) are compared for a plain JSON and for a
// streaming SSE response; the differences are counted per field and
// logged as JSONL with the right values.
func TestDifferencesCountedAndLogged(t *testing.T) {
	cases := []struct {
		name   string
		stream bool
		mode   sim.Mode
	}{
		{"plain JSON", false, sim.ModeHealthy},
		{"streaming SSE", true, sim.ModeHealthy},
		{"shadow answers 500", false, sim.ModeError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			primary := startSim(t, ctx, "primary", 8)
			candidate := startSim(t, ctx, "candidate", 12)
			candidate.Fail(tc.mode)

			cfg := shadow.DefaultConfig()
			cfg.Target = "candidate"
			cfg.Compare.Fields = chatFields
			cfg.Log.Path = filepath.Join(t.TempDir(), "diff.jsonl")
			cfg.Log.MaxValueBytes = 40
			var mu sync.Mutex
			var reports []shadow.Report
			m, err := shadow.New(ctx, cfg, newSender(t, candidate.URL()), shadow.WithRoute("chat"),
				shadow.WithReportHook(func(r *shadow.Report) { mu.Lock(); reports = append(reports, *r); mu.Unlock() }))
			if err != nil {
				t.Fatal(err)
			}
			front := serve(t, proxyHandler(&fasthttp.HostClient{Addr: primary.Addr()}, m))
			client := &fasthttp.HostClient{Addr: front}

			const n = 6
			body := `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":` + strconv.FormatBool(tc.stream) + `}`
			if tc.stream { // usage comes in a stream only when asked for (as in vLLM)
				body = `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`
			}
			for i := 0; i < n; i++ {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				req.SetRequestURI("http://" + front + "/v1/chat/completions")
				req.Header.SetMethod("POST")
				req.Header.SetContentType("application/json")
				req.Header.Set("X-Request-ID", "req-"+strconv.Itoa(i))
				req.SetBodyString(body)
				if err := client.DoTimeout(req, resp, 10*time.Second); err != nil {
					t.Fatal(err)
				}
				// The client always gets the primary's answer.
				if resp.StatusCode() != 200 || string(resp.Header.Peek("X-Sim-Node")) != "primary" {
					t.Fatalf("client got status %d from %q", resp.StatusCode(), resp.Header.Peek("X-Sim-Node"))
				}
				fasthttp.ReleaseRequest(req)
				fasthttp.ReleaseResponse(resp)
			}
			waitFor(t, ctx, "all comparisons", func() bool { mu.Lock(); defer mu.Unlock(); return len(reports) == n })
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			st := m.Stats()
			if st.Offered != n || st.Mirrored != n || st.Compared != n || st.Dropped() != 0 || st.Errors() != 0 {
				t.Fatalf("stats %+v", st)
			}

			const pText = "Hello from the switchyard simulated engine, one"
			const sText = pText + " token at a time"
			for _, r := range reports {
				if r.Route != "chat" || r.Target != "candidate" || !strings.HasPrefix(r.RequestID, "req-") || r.PrimaryLatency <= 0 || r.ShadowLatency <= 0 {
					t.Fatalf("report %+v", r)
				}
				if r.PrimaryStream != tc.stream || r.ShadowStream != (tc.stream && tc.mode == sim.ModeHealthy) {
					t.Fatalf("stream flags %v/%v", r.PrimaryStream, r.ShadowStream)
				}
			}
			if tc.mode == sim.ModeError {
				if st.StatusMismatch != n || st.Differences != n {
					t.Fatalf("status mismatches %d, differences %d, want %d", st.StatusMismatch, st.Differences, n)
				}
				r := reports[0]
				if r.PrimaryStatus != 200 || r.ShadowStatus != 500 || r.StatusMatch {
					t.Fatalf("report %+v", r)
				}
				// The shadow's error body has none of the chat fields.
				if len(r.Fields) != 4 || r.Fields[0].Missing != "shadow" || r.Fields[0].Equal {
					t.Fatalf("fields %+v", r.Fields)
				}
			} else {
				if st.StatusMismatch != 0 {
					t.Fatalf("status mismatch %d", st.StatusMismatch)
				}
				want := []int64{n, n, 0, 0} // content, completion_tokens differ; finish_reason, model equal
				for i := range want {
					if st.FieldMismatch[i] != want[i] {
						t.Fatalf("field mismatches %v, want %v", st.FieldMismatch, want)
					}
				}
				f := reports[0].Fields
				if f[0].Equal || f[0].Primary != truncated(strconv.Quote(pText), 40) || f[0].Shadow != truncated(strconv.Quote(sText), 40) {
					t.Fatalf("content diff %+v", f[0])
				}
				if f[1].Equal || !f[1].Numeric || f[1].AbsDiff != 4 || math.Abs(f[1].RelDiff-4.0/12) > 1e-12 || f[1].Primary != "8" || f[1].Shadow != "12" {
					t.Fatalf("completion_tokens diff %+v", f[1])
				}
				if !f[2].Equal || f[2].Primary != `"stop"` || !f[3].Equal {
					t.Fatalf("equal fields %+v", f[2:])
				}
			}

			// The log holds one line per difference event with the same content.
			lines := readJSONL(t, cfg.Log.Path)
			if len(lines) != n || st.LogWritten != n {
				t.Fatalf("%d log lines, %d written, want %d", len(lines), st.LogWritten, n)
			}
			seen := map[string]bool{}
			for _, l := range lines {
				var r shadow.Report
				if err := json.Unmarshal(l, &r); err != nil {
					t.Fatalf("log line %s: %v", l, err)
				}
				seen[r.RequestID] = true
				if r.Time.IsZero() || r.Route != "chat" || r.PrimaryStatus != 200 || len(r.Fields) != 4 || r.PrimaryMillis <= 0 {
					t.Fatalf("log line %s", l)
				}
				if tc.mode == sim.ModeHealthy && (r.Fields[1].Primary != "8" || r.Fields[1].Shadow != "12" || r.Fields[1].AbsDiff != 4) {
					t.Fatalf("log line %s", l)
				}
			}
			if len(seen) != n {
				t.Fatalf("request ids in log: %v", seen)
			}
			// The admin API's recent differences hold the same reports.
			rec := m.Recent()
			if len(rec) != n {
				t.Fatalf("%d recent differences, want %d", len(rec), n)
			}
			for _, r := range rec {
				if !r.Different() || r.Route != "chat" || !seen[r.RequestID] || len(r.Fields) != 4 {
					t.Fatalf("recent difference %+v", r)
				}
			}
		})
	}
}

func truncated(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

func readJSONL(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestIdenticalShadowLogsNothing: the same engine behind both sides gives
// no differences and an empty log.
func TestIdenticalShadowLogsNothing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	primary := startSim(t, ctx, "primary", 8)
	candidate := startSim(t, ctx, "candidate", 8)
	cfg := shadow.DefaultConfig()
	cfg.Target = "candidate"
	cfg.Compare.Fields = chatFields[:3]
	cfg.Log.Path = filepath.Join(t.TempDir(), "diff.jsonl")
	m, err := shadow.New(ctx, cfg, newSender(t, candidate.URL()))
	if err != nil {
		t.Fatal(err)
	}
	front := serve(t, proxyHandler(&fasthttp.HostClient{Addr: primary.Addr()}, m))
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"messages":[{"role":"user","content":"x"}],"stream":false}`, 200},
		{`{"messages":[{"role":"user","content":"x"}],"stream":true}`, 200},
		{``, 400}, // both sides refuse it alike
		{`{"messages":[]}`, 400},
	} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + front + "/v1/chat/completions")
		req.Header.SetMethod("POST")
		req.SetBodyString(tc.body)
		if err := fasthttp.DoTimeout(req, resp, 10*time.Second); err != nil || resp.StatusCode() != tc.status {
			t.Fatalf("status %d err %v, want %d", resp.StatusCode(), err, tc.status)
		}
	}
	waitFor(t, ctx, "comparisons", func() bool { return m.Stats().Compared == 4 })
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	st := m.Stats()
	if st.Differences != 0 || st.StatusMismatch != 0 || st.FieldMismatch[0] != 0 || st.FieldMismatch[1] != 0 {
		t.Fatalf("stats %+v", st)
	}
	if lines := readJSONL(t, cfg.Log.Path); len(lines) != 0 {
		t.Fatalf("log has %d lines", len(lines))
	}
	if rec := m.Recent(); len(rec) != 0 {
		t.Fatalf("%d recent differences without a difference", len(rec))
	}
}

// TestMarkerHeaderAndIsolation: the shadow sees the marker header and a
// copy of the body; the primary does not; the client never sees the
// shadow's answer; a body above MaxBodyBytes is not mirrored.
func TestMarkerHeaderAndIsolation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type seen struct{ marker, body, path string }
	var mu sync.Mutex
	var atPrimary, atShadow []seen
	rec := func(dst *[]seen, answer string) fasthttp.RequestHandler {
		return func(rc *fasthttp.RequestCtx) {
			mu.Lock()
			*dst = append(*dst, seen{string(rc.Request.Header.Peek(shadow.DefaultMarkerHeader)), string(rc.PostBody()), string(rc.Path())})
			mu.Unlock()
			rc.SetContentType("application/json")
			rc.SetBodyString(answer)
		}
	}
	primary := serve(t, rec(&atPrimary, `{"v":1}`))
	shadowAddr := serve(t, rec(&atShadow, `{"v":2}`))
	cfg := shadow.DefaultConfig()
	cfg.Target = "candidate"
	cfg.MaxBodyBytes = 16
	cfg.Compare.Fields = []string{"v"}
	m, err := shadow.New(ctx, cfg, newSender(t, "http://"+shadowAddr+"/prefix"))
	if err != nil {
		t.Fatal(err)
	}
	front := serve(t, proxyHandler(&fasthttp.HostClient{Addr: primary}, m))
	for _, body := range []string{"small", "this body is longer than sixteen bytes"} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + front + "/v1/x?q=1")
		req.Header.SetMethod("POST")
		req.SetBodyString(body)
		if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil || string(resp.Body()) != `{"v":1}` {
			t.Fatalf("client got %q, %v", resp.Body(), err)
		}
	}
	waitFor(t, ctx, "comparison", func() bool { return m.Stats().Compared == 1 })
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(atPrimary) != 2 || atPrimary[0].marker != "" || atPrimary[1].marker != "" {
		t.Fatalf("primary saw %+v", atPrimary)
	}
	if len(atShadow) != 1 || atShadow[0] != (seen{"1", "small", "/prefix/v1/x"}) {
		t.Fatalf("shadow saw %+v", atShadow)
	}
	st := m.Stats()
	if st.DroppedBodyTooLarge != 1 || st.FieldMismatch[0] != 1 || st.Offered != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSampling: 0 % mirrors nothing; 30 % by key mirrors a stable ~30 %
// of the keys; 30 % at random mirrors ~30 % of requests.
func TestSampling(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cases := []struct {
		name     string
		rate     float64
		by       string
		min, max int
	}{
		{"0 %", 0, shadow.SampleRandom, 0, 0},
		{"100 %", 100, shadow.SampleRandom, 10000, 10000},
		{"30 % random", 30, shadow.SampleRandom, 2700, 3300},
		{"30 % by key", 30, shadow.SampleKey, 2700, 3300},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := shadow.DefaultConfig()
			cfg.Target = "x"
			cfg.SampleRate = tc.rate
			cfg.SampleBy = tc.by
			cfg.Key.Header = "X-User-ID"
			m, err := shadow.New(ctx, cfg, newSender(t, "http://127.0.0.1:1"))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var rc fasthttp.RequestCtx
			rc.Init(&fasthttp.Request{}, nil, nil)
			hits := 0
			for i := 0; i < 10000; i++ {
				rc.Request.Header.Set("X-User-ID", "user-"+strconv.Itoa(i))
				s := m.Sample(ctxReq(&rc))
				if s {
					hits++
				}
				if tc.by == shadow.SampleKey && s != m.Sample(ctxReq(&rc)) {
					t.Fatal("key sampling is not sticky")
				}
			}
			if hits < tc.min || hits > tc.max {
				t.Fatalf("%d of 10000 sampled, want %d..%d", hits, tc.min, tc.max)
			}
		})
	}
}
