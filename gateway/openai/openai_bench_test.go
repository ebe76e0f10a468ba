package openai

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// longStream is a chat stream of n token events as vLLM writes them,
// with the usage event and [DONE].
func longStream(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`data: {"id":"chatcmpl-a0e8d16d47a64de58a0a3083e18d432a","object":"chat.completion.chunk","created":1749994809,"model":"qwen3-8b","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}` + "\n\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `data: {"id":"chatcmpl-a0e8d16d47a64de58a0a3083e18d432a","object":"chat.completion.chunk","created":1749994809,"model":"qwen3-8b","choices":[{"index":0,"delta":{"content":" tok%d"},"logprobs":null,"finish_reason":null}]}`+"\n\n", i)
	}
	b.WriteString(`data: {"id":"chatcmpl-a0e8d16d47a64de58a0a3083e18d432a","object":"chat.completion.chunk","created":1749994809,"model":"qwen3-8b","choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"length","stop_reason":null}]}` + "\n\n")
	fmt.Fprintf(&b, `data: {"id":"chatcmpl-a0e8d16d47a64de58a0a3083e18d432a","object":"chat.completion.chunk","created":1749994809,"model":"qwen3-8b","choices":[],"usage":{"prompt_tokens":12,"total_tokens":%d,"completion_tokens":%d}}`+"\n\n", 12+n, n)
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

func BenchmarkParseResponse(b *testing.B) {
	big := bytes.Replace(chatAnswer, []byte("Hello! How can I help you today?"), []byte(strings.Repeat("A long answer, escaped \\\"quotes\\\" and all. ", 800)), 1)
	for _, bc := range []struct {
		name string
		body []byte
	}{{"chat-400B", chatAnswer}, {"chat-36KB", big}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.body)))
			for b.Loop() {
				if _, err := ParseResponse(bc.body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStreamFilter relays a 256-token stream, one event per read
// (as a node flushes them) and in 4 KiB reads; ns/op is per stream.
func BenchmarkStreamFilter(b *testing.B) {
	in := longStream(256)
	var evs [][]byte
	for _, e := range events(in) {
		evs = append(evs, []byte(e))
	}
	b.Run("event-per-read", func(b *testing.B) {
		var s Stream
		var tm countTimer
		out := make([]byte, 0, len(in))
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		now := time.Now()
		for b.Loop() {
			s.Reset(StreamOptions{StripUsage: true, Timer: &tm, Start: now})
			out = out[:0]
			for _, e := range evs {
				out = s.Filter(out, e, now)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/event")
	})
	b.Run("4KiB-reads", func(b *testing.B) {
		var s Stream
		out := make([]byte, 0, len(in))
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		now := time.Now()
		for b.Loop() {
			s.Reset(StreamOptions{StripUsage: true})
			out = out[:0]
			for p := in; len(p) > 0; {
				n := min(4096, len(p))
				out = s.Filter(out, p[:n], now)
				p = p[n:]
			}
		}
	})
}

func BenchmarkReader(b *testing.B) {
	in := longStream(256)
	var r Reader
	var src bytes.Reader
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		src.Reset(in)
		r.Reset(&src, StreamOptions{StripUsage: true}, nil)
		for {
			if _, err := r.Read(buf); err == io.EOF {
				break
			}
		}
	}
}

func BenchmarkRewriteRequest(b *testing.B) {
	msg := strings.Repeat("Tell me about the history of inference gateways. ", 40)
	body := []byte(`{"model":"alias","messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"` + msg + `"}],"stream":true,"temperature":0.7,"max_tokens":512}`)
	dst := make([]byte, 0, len(body)+128)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := RewriteRequest(dst[:0], body, Rewrite{Model: "meta-llama/Llama-3.3-70B-Instruct", IncludeUsage: true}); err != nil {
			b.Fatal(err)
		}
	}
}
