package openai

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
)

// The fuzz targets compare the scanners with encoding/json (decoding into
// maps: exact keys, the last of repeated keys, as Python's json), and the
// stream relay with a whole-input reference splitter. Inputs are capped;
// deeply nested ones skip the comparison (encoding/json and the scanners
// both stop at 10000 levels, counted slightly differently).

const fuzzMax = 64 << 10

func tooDeep(b []byte) bool {
	return bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) > 2000
}

// decodeObject decodes b as one JSON object with numbers kept as text;
// ok is false when encoding/json rejects it or it is not an object.
func decodeObject(b []byte) (map[string]any, bool) {
	if !json.Valid(b) {
		return nil, false
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil, false
	}
	m, ok := v.(map[string]any)
	return m, ok
}

func refCount(v any) int64 {
	n, ok := v.(json.Number)
	if !ok {
		return 0
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || i < 0 {
		return 0
	}
	return i
}

func refUsage(v any) Usage {
	m, ok := v.(map[string]any)
	if !ok {
		return Usage{}
	}
	u := Usage{Found: true, PromptTokens: refCount(m["prompt_tokens"]), CompletionTokens: refCount(m["completion_tokens"]), TotalTokens: refCount(m["total_tokens"])}
	if d, ok := m["prompt_tokens_details"].(map[string]any); ok {
		u.CachedTokens = refCount(d["cached_tokens"])
	}
	if d, ok := m["completion_tokens_details"].(map[string]any); ok {
		u.ReasoningTokens = refCount(d["reasoning_tokens"])
	}
	return u
}

func refReason(s string) FinishReason {
	for r := FinishStop; r < FinishOther; r++ {
		if s == r.String() {
			return r
		}
	}
	return FinishOther
}

func nonEmpty(v any) bool { s, ok := v.(string); return ok && s != "" }

// refChoices is what encoding/json's decode of a "choices" value says:
// its length (-1: not an array), whether a choice carries output, and the
// finish reasons.
func refChoices(v any) (n int, content bool, fin []FinishReason) {
	cs, ok := v.([]any)
	if !ok {
		return -1, false, nil
	}
	for _, c := range cs {
		m, ok := c.(map[string]any)
		if !ok {
			continue
		}
		if s, ok := m["finish_reason"].(string); ok {
			fin = append(fin, refReason(s))
		}
		if nonEmpty(m["text"]) {
			content = true
		}
		if d, ok := m["delta"].(map[string]any); ok {
			tools, _ := d["tool_calls"].([]any)
			if nonEmpty(d["content"]) || nonEmpty(d["reasoning_content"]) || nonEmpty(d["reasoning"]) || len(tools) > 0 {
				content = true
			}
		}
	}
	return len(cs), content, fin
}

func reasons(f FinishReasons) []FinishReason {
	var out []FinishReason
	for i := 0; i < f.Len(); i++ {
		out = append(out, f.At(i))
	}
	return out
}

func capReasons(f []FinishReason) []FinishReason { return f[:min(len(f), MaxFinishReasons)] }

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"total_tokens":15,"completion_tokens":5}}`))
	f.Add([]byte(`{"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":80},"completion_tokens_details":{"reasoning_tokens":5}}}`))
	f.Add([]byte(`{"us\u0061ge":{"prompt_tokens":1.5,"completion_tokens":-0},"usage":null,"choices":[{"finish_reason":"\u0073top"},1,{"finish_reason":null}]}`))
	f.Add([]byte(`{"note":"\"usage\":{\"prompt_tokens\":5}","x":{"usage":{"prompt_tokens":6}}}`))
	f.Add([]byte(`{"object":"list","data":[{"embedding":[0.1,-2e-3]}],"usage":{"prompt_tokens":8,"total_tokens":8}}`))
	f.Add([]byte(`[1] `))
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > fuzzMax || tooDeep(body) {
			return
		}
		r, err := ParseResponse(body)
		m, ok := decodeObject(body)
		if (err == nil) != ok {
			t.Fatalf("ParseResponse error %v, encoding/json accepts an object: %v", err, ok)
		}
		if !ok {
			return
		}
		if want := refUsage(m["usage"]); r.Usage != want {
			t.Fatalf("usage %+v, encoding/json %+v", r.Usage, want)
		}
		_, _, fin := refChoices(m["choices"])
		if got := reasons(r.Finish); !equalReasons(got, capReasons(fin)) {
			t.Fatalf("finish %v, encoding/json %v", got, fin)
		}
	})
}

// refStream is the reference relay: the whole input split into events
// (each through its blank line's line end, a CRLF whole), each read with
// encoding/json.
type refStream struct {
	out      []byte
	usage    Usage
	finish   []FinishReason
	done     bool
	errEvent bool
	events   int
	stripped int
	output   int
}

func refRelay(in []byte, strip bool) refStream {
	var r refStream
	start, lineLen := 0, 0
	for i := 0; i < len(in); {
		c := in[i]
		if c != '\r' && c != '\n' {
			lineLen++
			i++
			continue
		}
		end := i + 1
		if c == '\r' && end < len(in) && in[end] == '\n' {
			end++
		}
		if lineLen == 0 {
			if r.event(in[start:end], strip) {
				r.out = append(r.out, in[start:end]...)
			}
			start = end
		}
		lineLen, i = 0, end
	}
	r.out = append(r.out, in[start:]...)
	return r
}

func (r *refStream) event(ev []byte, strip bool) bool {
	r.events++
	if r.events == 1 {
		ev = bytes.TrimPrefix(ev, []byte("\xef\xbb\xbf"))
	}
	var data []byte
	lines := 0
	for _, line := range bytes.FieldsFunc(ev, func(c rune) bool { return c == '\r' || c == '\n' }) {
		v, ok := bytes.CutPrefix(line, []byte("data"))
		if !ok || (len(v) > 0 && v[0] != ':') {
			continue
		}
		if len(v) > 0 {
			v = bytes.TrimPrefix(v[1:], []byte(" "))
		}
		if lines > 0 {
			data = append(data, '\n')
		}
		data = append(data, v...)
		lines++
	}
	if lines == 0 {
		return true
	}
	if string(data) == "[DONE]" {
		r.done = true
		return true
	}
	m, ok := decodeObject(data)
	if !ok {
		return true
	}
	u := refUsage(m["usage"])
	if u.Found {
		r.usage = u
	}
	n, content, fin := refChoices(m["choices"])
	r.finish = append(r.finish, fin...)
	if e, has := m["error"]; has && e != nil {
		r.errEvent = true
	}
	if content {
		r.output++
	}
	if strip && n == 0 && u.Found {
		r.stripped++
		return false
	}
	return true
}

// cuts returns piece sizes (1..max) drawn from seed.
func cuts(seed uint64, max int) []int {
	out := make([]int, 16)
	for i := range out {
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		out[i] = int(seed%uint64(max)) + 1
	}
	return out
}

func FuzzStream(f *testing.F) {
	vllm, err := readFixture(vllmStreamFixture)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(vllm, uint64(1), true, uint16(0))
	f.Add([]byte("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}\r\n\r\ndata: [DONE]\r\n\r\n"), uint64(7), true, uint16(20))
	f.Add([]byte("\xef\xbb\xbfevent: x\r: c\rdata:{\"choices\":[{\"text\":\"a\",\"finish_reason\":\"length\"}]}\r\rdata: [DONE]\n\n"), uint64(3), false, uint16(0))
	f.Add([]byte("data: {\"choices\":[{\"delta\":\ndata: {\"content\":\"a\"}}]}\n\ndata: {\"error\":{\"message\":\"x\"}}\n\n: keep\n\ndata: [DONE]\n\n"), uint64(9), true, uint16(30))
	f.Fuzz(func(t *testing.T, in []byte, seed uint64, strip bool, small uint16) {
		if len(in) > fuzzMax || tooDeep(in) {
			return
		}
		var s Stream
		// The reference, with a limit no event reaches.
		o := StreamOptions{StripUsage: strip, MaxEvent: len(in) + 1}
		want := refRelay(in, strip)
		for _, sizes := range [][]int{{len(in)}, {1}, cuts(seed, 16)} {
			out := filterAll(&s, o, in, sizes...)
			if !bytes.Equal(out, want.out) {
				t.Fatalf("sizes %v: output\n%q\nreference\n%q", sizes, out, want.out)
			}
			ev, stripped, oversize, output := s.Counts()
			if ev != want.events || stripped != want.stripped || oversize != 0 || output != want.output {
				t.Fatalf("sizes %v: counts %d %d %d %d, reference %d %d 0 %d", sizes, ev, stripped, oversize, output, want.events, want.stripped, want.output)
			}
			if s.Usage() != want.usage || s.Done() != want.done || s.ErrorEvent() != want.errEvent || !equalReasons(reasons(s.FinishReasons()), capReasons(want.finish)) {
				t.Fatalf("sizes %v: usage %+v done %v error %v finish %v; reference %+v %v %v %v", sizes,
					s.Usage(), s.Done(), s.ErrorEvent(), reasons(s.FinishReasons()), want.usage, want.done, want.errEvent, want.finish)
			}
		}
		// A small limit: whatever it passes unparsed, the output does not
		// depend on the split points, and never grows.
		o.MaxEvent = 1 + int(small%256)
		whole := filterAll(&s, o, in)
		wholeUsage := s.Usage()
		if len(whole) > len(in) {
			t.Fatalf("output longer than input")
		}
		for _, sizes := range [][]int{{1}, cuts(seed^0x9e3779b97f4a7c15, 32)} {
			out := filterAll(&s, o, in, sizes...)
			if !bytes.Equal(out, whole) || s.Usage() != wholeUsage {
				t.Fatalf("limit %d sizes %v: output\n%q\nin one piece\n%q", o.MaxEvent, sizes, out, whole)
			}
		}
	})
}

func FuzzRewriteRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`), "real", true)
	f.Add([]byte(`{"stream":true,"stream_options":null,"model":"a","model":"b"}`), "x\"y", true)
	f.Add([]byte(`{"stream":true,"stream_options":{"continuous_usage_stats":true}}`), "", true)
	f.Add([]byte(`{"stream":true,"stream_options":{ "x" : [1] }}`), "", true)
	f.Add([]byte(` {"m\u006fdel":"a"} `), "é", false)
	f.Fuzz(func(t *testing.T, body []byte, model string, usage bool) {
		if len(body) > fuzzMax || tooDeep(body) {
			return
		}
		dst := []byte("x")
		out, res, err := RewriteRequest(dst, body, Rewrite{Model: model, IncludeUsage: usage})
		in, ok := decodeObject(body)
		if (err == nil) != ok {
			t.Fatalf("error %v, encoding/json accepts an object: %v", err, ok)
		}
		if !ok {
			return
		}
		// What the request asks, read by encoding/json.
		stream := in["stream"] == true
		_, hasModel := in["model"]
		var wantUsage UsageMode
		if usage && stream {
			opts, has := in["stream_options"]
			om, isObj := opts.(map[string]any)
			iu, hasIU := om["include_usage"]
			_, stats := om["continuous_usage_stats"]
			switch {
			case !has || opts == nil:
				wantUsage = UsageAdded
			case !isObj || (hasIU && iu != true) || (!hasIU && stats):
				wantUsage = UsageRefused
			case iu == true:
				wantUsage = UsageByClient
			default:
				wantUsage = UsageAdded
			}
		}
		wantModel := model != "" && hasModel
		if res.Stream != stream || res.Usage != wantUsage || res.Model != wantModel || res.Changed != (wantModel || wantUsage == UsageAdded) {
			t.Fatalf("result %+v; stream %v usage %v model %v", res, stream, wantUsage, wantModel)
		}
		if !res.Changed {
			if string(out) != "x" {
				t.Fatalf("unchanged, but dst became %q", out)
			}
			return
		}
		got, ok := decodeObject(out[1:])
		if !ok {
			t.Fatalf("rewritten body is not a JSON object: %q", out)
		}
		if wantModel {
			// encoding/json writes invalid UTF-8 as U+FFFD, byte by byte.
			var want string
			if err := json.Unmarshal(mustJSON(t, model), &want); err != nil || got["model"] != want {
				t.Fatalf("model %q, want %q", got["model"], want)
			}
		}
		if wantUsage == UsageAdded {
			om, _ := got["stream_options"].(map[string]any)
			if om["include_usage"] != true {
				t.Fatalf("stream_options %v", got["stream_options"])
			}
			if old, ok := in["stream_options"].(map[string]any); ok {
				delete(om, "include_usage")
				if string(mustJSON(t, om)) != string(mustJSON(t, old)) {
					t.Fatalf("stream_options %v, was %v", om, old)
				}
			}
		}
		// Everything else is as it was.
		for _, k := range []string{"model", "stream_options"} {
			if (k == "model" && wantModel) || (k == "stream_options" && wantUsage == UsageAdded) {
				delete(in, k)
				delete(got, k)
			}
		}
		if string(mustJSON(t, in)) != string(mustJSON(t, got)) {
			t.Fatalf("other members changed:\n%s\n%s", body, out[1:])
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
