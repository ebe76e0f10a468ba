package shadow_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

func TestAssembleSSE(t *testing.T) {
	fixture, err := os.ReadFile("testdata/chat-completions-stream-sse-vllm-pr19662.txt")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                  string
		stream                string
		content, text, finish string
		chunks                int
		done                  bool
		wantErr               string
	}{
		{name: "real vLLM stream (fixture, no [DONE])", stream: string(fixture), content: "가요?", finish: "stop", chunks: 4},
		{name: "chat with role, usage and DONE", stream: "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n" +
			"data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"length\"}],\"usage\":{\"completion_tokens\":2}}\n\n" +
			"data: [DONE]\n\n", content: "Hello", finish: "length", chunks: 3, done: true},
		{name: "completions text, CRLF, comments and event fields", stream: ": keep-alive\r\nevent: message\r\nid: 1\r\ndata: {\"choices\":[{\"index\":0,\"text\":\"a\"}]}\r\n\r\n" +
			"data: {\"choices\":[{\"index\":0,\"text\":\"b\",\"finish_reason\":\"stop\"}]}\r\n\r\ndata: [DONE]\r\n\r\n", text: "ab", finish: "stop", chunks: 2, done: true},
		{name: "multi-line data joined with newline", stream: "data: {\"choices\":[{\"index\":0,\ndata: \"delta\":{\"content\":\"x\"}}]}\n\n", content: "x", chunks: 1},
		{name: "data after DONE ignored", stream: "data: [DONE]\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"late\"}}]}\n\n", done: true},
		{name: "empty", stream: ""},
		{name: "bad chunk", stream: "data: {\"choices\":[]}\n\ndata: {oops\n\n", wantErr: "SSE line 3: chunk 2 is not a JSON chunk"},
		{name: "hostile index", stream: "data: {\"choices\":[{\"index\":100000000}]}\n\n", wantErr: "choice index 100000000 outside 0..127"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := shadow.AssembleSSE([]byte(tc.stream))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			get := func(path string) any {
				p, err := shadow.ParsePath(path)
				if err != nil {
					t.Fatal(err)
				}
				v, _ := p.Lookup(doc)
				return v
			}
			if tc.chunks > 0 || tc.content != "" || tc.text != "" {
				if c := get("choices[0].message.content"); c != tc.content {
					t.Errorf("content %q, want %q", c, tc.content)
				}
				if c := get("choices[0].text"); c != tc.text {
					t.Errorf("text %q, want %q", c, tc.text)
				}
				if c := get("choices[0].finish_reason"); c != tc.finish {
					t.Errorf("finish_reason %q, want %q", c, tc.finish)
				}
			}
			if c := get("chunks"); c != json.Number(itoa(tc.chunks)) {
				t.Errorf("chunks %v, want %d", c, tc.chunks)
			}
			if d := get("done"); d != tc.done {
				t.Errorf("done %v, want %v", d, tc.done)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// FuzzAssembleSSE: arbitrary bytes never panic; and a valid stream built
// from the fuzzed pieces (split on '|', random line endings) assembles to
// their concatenation, which is the reference.
func FuzzAssembleSSE(f *testing.F) {
	fixture, err := os.ReadFile("testdata/chat-completions-stream-sse-vllm-pr19662.txt")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(fixture, "Hel|lo| wor|ld", true)
	f.Add([]byte("data: [DONE]\n\n"), "a|b|c", false)
	f.Add([]byte("data: {\"choices\":[{\"index\":3,\"delta\":{\"content\":\"x\"}}]}\n\n"), "é|\n|data: x", true)
	f.Add([]byte(": c\r\ndata:\r\n\r\n"), "||", false)
	f.Fuzz(func(t *testing.T, raw []byte, pieces string, crlf bool) {
		if len(raw) > 1<<14 || len(pieces) > 1<<12 {
			return
		}
		_, _ = shadow.AssembleSSE(raw) // must not panic

		parts := strings.Split(pieces, "|")
		eol := "\n"
		if crlf {
			eol = "\r\n"
		}
		var sb strings.Builder
		for _, p := range parts {
			b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": p}}}})
			sb.WriteString("data: " + string(b) + eol + eol)
		}
		sb.WriteString("data: [DONE]" + eol + eol)
		doc, err := shadow.AssembleSSE([]byte(sb.String()))
		if err != nil {
			t.Fatalf("valid stream refused: %v", err)
		}
		p, _ := shadow.ParsePath("choices[0].message.content")
		got, _ := p.Lookup(doc)
		// json.Marshal replaces invalid UTF-8 with U+FFFD; so does the reference.
		var want strings.Builder
		for _, part := range parts {
			b, _ := json.Marshal(part)
			var s string
			_ = json.Unmarshal(b, &s)
			want.WriteString(s)
		}
		if got != want.String() {
			t.Fatalf("assembled %q, want %q", got, want.String())
		}
	})
}
