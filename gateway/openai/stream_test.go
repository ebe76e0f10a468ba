package openai

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestStreamVLLMFixture: the real vLLM stream passes unchanged whatever
// the split points (every cut in two, one byte at a time); its three
// tokens are output events (the last chunk's "content": "" is not), its
// finish reason is stop, and it has no usage and no [DONE] (the excerpt
// ends before it).
func TestStreamVLLMFixture(t *testing.T) {
	in := fixture(t, vllmStreamFixture)
	var s Stream
	check := func(name string, out []byte, tm *timings) {
		t.Helper()
		if !bytes.Equal(out, in) {
			t.Fatalf("%s: output differs from the input:\n%q\n%q", name, out, in)
		}
		events, stripped, oversize, output := s.Counts()
		if events != 4 || stripped != 0 || oversize != 0 || output != 3 {
			t.Fatalf("%s: counts %d events, %d stripped, %d oversize, %d output; want 4, 0, 0, 3", name, events, stripped, oversize, output)
		}
		f := s.FinishReasons()
		if f.Len() != 1 || f.At(0) != FinishStop {
			t.Fatalf("%s: finish reasons %v", name, f)
		}
		if s.Usage().Found || s.Done() || s.ErrorEvent() {
			t.Fatalf("%s: usage %+v, done %v, error %v", name, s.Usage(), s.Done(), s.ErrorEvent())
		}
		if len(tm.first) != 1 || len(tm.inter) != 2 {
			t.Fatalf("%s: %d first-token and %d inter-token times, want 1 and 2", name, len(tm.first), len(tm.inter))
		}
	}
	for cut := 0; cut <= len(in); cut++ {
		var tm timings
		out := filterAll(&s, StreamOptions{StripUsage: true, Timer: &tm}, in, cut, len(in))
		check("cut", out, &tm)
	}
	var tm timings
	check("bytewise", filterAll(&s, StreamOptions{StripUsage: true, Timer: &tm}, in, 1), &tm)
}

// simStream gets a streamed answer from a simulated engine (vLLM's shape),
// the request rewritten as the gateway does, and returns the request
// body sent and the raw answer.
func simStream(t *testing.T, path, client string) (sent, raw []byte) {
	t.Helper()
	n := startSim(t, "sim-model")
	sent, res, err := RewriteRequest(nil, []byte(client), Rewrite{IncludeUsage: true})
	if err != nil || !res.Changed || res.Usage != UsageAdded {
		t.Fatalf("RewriteRequest: %+v %v", res, err)
	}
	return sent, post(t, n, path, sent)
}

// TestStreamSimStripUsage: a chat stream from the simulated engine, asked
// for usage by the gateway: the client gets every event but the
// usage-only one, unchanged, at any split; the usage read is the engine's.
// Without StripUsage the stream passes whole.
func TestStreamSimStripUsage(t *testing.T) {
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"sim-model","messages":[{"role":"user","content":"hello there"}],"stream":true,"max_tokens":5}`},
		{"/v1/completions", `{"model":"sim-model","prompt":"hello there","stream":true}`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			_, raw := simStream(t, tc.path, tc.body)
			evs := events(raw)
			var want []byte
			var usageEvent struct {
				Choices []any `json:"choices"`
				Usage   struct {
					Prompt     int64 `json:"prompt_tokens"`
					Completion int64 `json:"completion_tokens"`
					Total      int64 `json:"total_tokens"`
				} `json:"usage"`
			}
			found := 0
			for _, e := range evs {
				if strings.Contains(e, `"choices":[]`) {
					if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(e, "data: "))), &usageEvent); err != nil {
						t.Fatal(err)
					}
					found++
					continue
				}
				want = append(want, e...)
			}
			if found != 1 || evs[len(evs)-1] != "data: [DONE]\n\n" {
				t.Fatalf("the engine's stream has %d usage events, ends %q", found, evs[len(evs)-1])
			}
			var s Stream
			for _, size := range []int{1, 7, 64, len(raw)} {
				out := filterAll(&s, StreamOptions{StripUsage: true}, raw, size)
				if !bytes.Equal(out, want) {
					t.Fatalf("size %d: client got\n%s\nwant\n%s", size, out, want)
				}
				u := s.Usage()
				if !u.Found || u.PromptTokens != usageEvent.Usage.Prompt || u.CompletionTokens != usageEvent.Usage.Completion ||
					u.TotalTokens != usageEvent.Usage.Total || u.CompletionTokens == 0 {
					t.Fatalf("size %d: usage %+v, the engine sent %+v", size, u, usageEvent.Usage)
				}
				if _, stripped, _, output := s.Counts(); stripped != 1 || int64(output) != u.CompletionTokens {
					t.Fatalf("size %d: %d stripped, %d output events for %d tokens", size, stripped, output, u.CompletionTokens)
				}
				if !s.Done() {
					t.Fatalf("size %d: [DONE] not seen", size)
				}
				if f := s.FinishReasons(); f.Len() != 1 || (f.At(0) != FinishLength && f.At(0) != FinishStop) {
					t.Fatalf("size %d: finish reasons %v", size, f)
				}
			}
			if out := filterAll(&s, StreamOptions{}, raw, 5); !bytes.Equal(out, raw) {
				t.Fatalf("without StripUsage the stream changed:\n%s", out)
			}
		})
	}
}

// TestReaderSimHTTP relays a live streamed answer from the simulated
// engine's HTTP response through a Reader, with tiny reads on both sides,
// and gets the stream without the usage event.
func TestReaderSimHTTP(t *testing.T) {
	n := startSim(t, "sim-model")
	body, _, err := RewriteRequest(nil, []byte(`{"model":"sim-model","messages":[{"role":"user","content":"hi"}],"stream":true}`), Rewrite{IncludeUsage: true})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", n.URL()+"/v1/chat/completions", bytes.NewReader(body))
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r Reader
	var tm timings
	start := time.Now()
	r.Reset(iotest.HalfReader(resp.Body), StreamOptions{StripUsage: true, Start: start, Timer: &tm}, nil)
	out, err := io.ReadAll(iotest.OneByteReader(&r))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte(`"usage"`)) || !bytes.HasSuffix(out, []byte("data: [DONE]\n\n")) {
		t.Fatalf("client got:\n%s", out)
	}
	u := r.Usage()
	if !u.Found || u.CompletionTokens != 6 || u.PromptTokens == 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Fatalf("usage %+v", u)
	}
	if len(tm.first) != 1 || len(tm.inter) != 5 || tm.first[0] <= 0 || tm.first[0] > time.Since(start) {
		t.Fatalf("timing: first %v, %d inter-token times", tm.first, len(tm.inter))
	}
	if d, ok := r.TTFT(); !ok || d != tm.first[0] {
		t.Fatalf("TTFT %v %v", d, ok)
	}
}

// TestStreamLineEnds: the same events with CRLF and CR line ends pass
// unchanged; the usage event is removed with its whole line end (a CRLF
// split between reads included).
func TestStreamLineEnds(t *testing.T) {
	base := "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
		": a comment\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n" +
		"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n" +
		"data: [DONE]\n\n"
	usageEv := "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\n\n"
	for _, eol := range []string{"\n", "\r\n", "\r"} {
		in := strings.ReplaceAll(base, "\n", eol)
		want := strings.ReplaceAll(strings.Replace(base, usageEv, "", 1), "\n", eol)
		var s Stream
		for cut := 0; cut <= len(in); cut++ {
			out := filterAll(&s, StreamOptions{StripUsage: true}, []byte(in), cut, len(in))
			if string(out) != want {
				t.Fatalf("eol %q cut %d:\n%q\nwant\n%q", eol, cut, out, want)
			}
			if u := s.Usage(); !u.Found || u.TotalTokens != 4 || !s.Done() {
				t.Fatalf("eol %q cut %d: usage %+v done %v", eol, cut, u, s.Done())
			}
			if ev, stripped, _, output := s.Counts(); ev != 6 || stripped != 1 || output != 1 {
				t.Fatalf("eol %q cut %d: counts %d %d %d", eol, cut, ev, stripped, output)
			}
		}
	}
}

// TestStreamOversize: an event larger than MaxEvent is passed on as it
// comes, unparsed, even the usage event; the events after it are read
// again.
func TestStreamOversize(t *testing.T) {
	big := "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2},\"pad\":\"" + strings.Repeat("x", 200) + "\"}\n\n"
	small := "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6,\"total_tokens\":11}}\n\n"
	in := big + small + "data: [DONE]\n\n"
	var s Stream
	for _, size := range []int{1, 10, 100, len(in)} {
		s.Reset(StreamOptions{StripUsage: true, MaxEvent: 128})
		var out []byte
		sawMid := false
		for p := []byte(in); len(p) > 0; {
			n := min(size, len(p))
			before := len(out)
			out = s.Filter(out, p[:n], time.Time{})
			p = p[n:]
			if len(out) > before && len(out) < len(big) {
				sawMid = true // big's head went out before its end came
				if s.AtBoundary() {
					t.Fatalf("size %d: AtBoundary inside an oversize event", size)
				}
			}
		}
		out = s.Flush(out)
		if string(out) != big+"data: [DONE]\n\n" {
			t.Fatalf("size %d: client got %q", size, out)
		}
		if size < len(big)-128 && !sawMid {
			t.Fatalf("size %d: the oversize event was held whole", size)
		}
		if _, stripped, oversize, _ := s.Counts(); stripped != 1 || oversize != 1 || s.Usage().TotalTokens != 11 {
			t.Fatalf("size %d: %d stripped, %d oversize, usage %+v", size, stripped, oversize, s.Usage())
		}
		if !s.AtBoundary() {
			t.Fatalf("size %d: not at a boundary at the end", size)
		}
	}
}

// TestStreamTruncated: a stream the node cuts inside an event: Flush
// hands the client the partial event, so nothing is lost.
func TestStreamTruncated(t *testing.T) {
	in := fixture(t, vllmStreamFixture)
	cut := in[:len(in)-20]
	var s Stream
	out := filterAll(&s, StreamOptions{StripUsage: true}, cut, 33)
	if !bytes.Equal(out, cut) {
		t.Fatalf("truncated stream: %q", out)
	}
	if ev, _, _, _ := s.Counts(); ev != 3 || s.FinishReasons().Len() != 0 {
		t.Fatalf("%d events, finish %v", ev, s.FinishReasons())
	}
}

// TestStreamEvents: what counts as output, usage, finish reasons and
// errors, event by event (the SSE grammar: fields, comments, several data
// lines joined with "\n", "data" with no colon).
func TestStreamEvents(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       string
		output   int
		usage    int64 // total tokens, -1: none
		finish   []FinishReason
		stripped int
		err      bool
	}{
		{"role chunk", `data: {"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`, 0, -1, nil, 0, false},
		{"content", `data: {"choices":[{"delta":{"content":"a"}}]}`, 1, -1, nil, 0, false},
		{"content null", `data: {"choices":[{"delta":{"content":null}}]}`, 0, -1, nil, 0, false},
		{"reasoning_content", `data: {"choices":[{"delta":{"reasoning_content":"hm"}}]}`, 1, -1, nil, 0, false},
		{"reasoning", `data: {"choices":[{"delta":{"reasoning":"hm"}}]}`, 1, -1, nil, 0, false},
		{"tool call", `data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}`, 1, -1, nil, 0, false},
		{"empty tool calls", `data: {"choices":[{"delta":{"tool_calls":[ ]}}]}`, 0, -1, nil, 0, false},
		{"completions text", `data: {"choices":[{"text":" x","index":0,"finish_reason":null}]}`, 1, -1, nil, 0, false},
		{"escaped content", `data: {"choices":[{"delta":{"content":"\n"}}]}`, 1, -1, nil, 0, false},
		{"escaped key", `data: {"choices":[{"delta":{"cont\u0065nt":"x"}}]}`, 1, -1, nil, 0, false},
		{"repeated key keeps the last", `data: {"choices":[{"delta":{"content":"x","content":""}}]}`, 0, -1, nil, 0, false},
		{"event field and comment", "event: message\n: note\nid: 7\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}", 1, -1, nil, 0, false},
		{"data on two lines", "data: {\"choices\":[{\"delta\":\ndata: {\"content\":\"a\"}}]}", 1, -1, nil, 0, false},
		{"data without space", `data:{"choices":[{"delta":{"content":"a"}}]}`, 1, -1, nil, 0, false},
		{"n=2 finishes", `data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"},{"index":1,"delta":{},"finish_reason":"tool_calls"}]}`, 0, -1, []FinishReason{FinishStop, FinishToolCalls}, 0, false},
		{"unknown finish", `data: {"choices":[{"delta":{},"finish_reason":"eos_token"}]}`, 0, -1, []FinishReason{FinishOther}, 0, false},
		{"usage only", `data: {"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`, 0, 5, nil, 1, false},
		{"OpenAI usage null", `data: {"choices":[{"delta":{"content":"a"}}],"usage":null}`, 1, -1, nil, 0, false},
		{"TGI usage with a choice", `data: {"choices":[{"delta":{"content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`, 0, 3, []FinishReason{FinishStop}, 0, false},
		{"usage in a string", `data: {"choices":[{"delta":{"content":"\"choices\":[],\"usage\":{\"total_tokens\":9}"}}]}`, 1, -1, nil, 0, false},
		{"usage nested", `data: {"choices":[],"x":{"usage":{"total_tokens":9}}}`, 0, -1, nil, 0, false},
		{"error event", `data: {"error":{"object":"error","message":"boom","type":"InternalServerError","code":500}}`, 0, -1, nil, 0, true},
		{"not json", `data: {"choices":[}`, 0, -1, nil, 0, false},
		{"done", `data: [DONE]`, 0, -1, nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s Stream
			in := tc.in + "\n\n"
			out := filterAll(&s, StreamOptions{StripUsage: true}, []byte(in), 3)
			wantOut := in
			if tc.stripped > 0 {
				wantOut = ""
			}
			if string(out) != wantOut {
				t.Fatalf("client got %q", out)
			}
			_, stripped, _, output := s.Counts()
			u := s.Usage()
			total := int64(-1)
			if u.Found {
				total = u.TotalTokens
			}
			f := s.FinishReasons()
			var fin []FinishReason
			for i := 0; i < f.Len(); i++ {
				fin = append(fin, f.At(i))
			}
			if output != tc.output || total != tc.usage || stripped != tc.stripped || s.ErrorEvent() != tc.err || !equalReasons(fin, tc.finish) {
				t.Fatalf("output %d usage %d stripped %d error %v finish %v; want %d %d %d %v %v",
					output, total, stripped, s.ErrorEvent(), fin, tc.output, tc.usage, tc.stripped, tc.err, tc.finish)
			}
		})
	}
}

func equalReasons(a, b []FinishReason) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestStreamTiming: the first output event (not the role chunk) is timed
// from Start; output events arriving in one read share the gap since the
// last one.
func TestStreamTiming(t *testing.T) {
	t0 := time.Unix(1000, 0)
	role := "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
	tok := "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
	var tm timings
	var s Stream
	s.Reset(StreamOptions{Start: t0, Timer: &tm})
	s.Filter(nil, []byte(role), t0.Add(50*time.Millisecond))
	s.Filter(nil, []byte(tok), t0.Add(120*time.Millisecond))
	s.Filter(nil, []byte(tok[:10]), t0.Add(130*time.Millisecond)) // half an event: no time yet
	s.Filter(nil, []byte(tok[10:]), t0.Add(140*time.Millisecond))
	s.Filter(nil, []byte(tok+tok+tok), t0.Add(200*time.Millisecond))
	wantInter := []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}
	if len(tm.first) != 1 || tm.first[0] != 120*time.Millisecond || !equalDurations(tm.inter, wantInter) {
		t.Fatalf("first %v inter %v; want [120ms] %v", tm.first, tm.inter, wantInter)
	}
	// The first output event and two more in one read: the two get 0.
	tm = timings{}
	s.Reset(StreamOptions{Start: t0, Timer: &tm})
	s.Filter(nil, []byte(role+tok+tok+tok), t0.Add(80*time.Millisecond))
	if len(tm.first) != 1 || tm.first[0] != 80*time.Millisecond || !equalDurations(tm.inter, []time.Duration{0, 0}) {
		t.Fatalf("first %v inter %v", tm.first, tm.inter)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
