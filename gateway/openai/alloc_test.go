//go:build !race

package openai

import (
	"bytes"
	"io"
	"testing"
	"time"
)

func TestParseResponseAlloc(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		if r, err := ParseResponse(chatAnswer); err != nil || r.Usage.TotalTokens != 21 {
			t.Fatal(r, err)
		}
	}); n != 0 {
		t.Fatalf("ParseResponse: %v allocations", n)
	}
}

func TestStreamAlloc(t *testing.T) {
	in := usageStream(t)
	var s Stream
	var tm countTimer
	out := make([]byte, 0, len(in))
	o := StreamOptions{StripUsage: true, Timer: &tm, Start: time.Now()}
	run := func() {
		s.Reset(o)
		out = out[:0]
		now := o.Start
		for p := in; len(p) > 0; {
			n := min(37, len(p)) // events split across reads: held and joined
			now = now.Add(time.Millisecond)
			out = s.Filter(out, p[:n], now)
			p = p[n:]
		}
		out = s.Flush(out)
		if !s.Usage().Found || !s.Done() {
			t.Fatal("usage or [DONE] not seen")
		}
	}
	run() // warm: buffers grow once
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("Stream: %v allocations per stream", n)
	}
	if tm.first == 0 || tm.inter == 0 {
		t.Fatal("no timing recorded")
	}
}

func TestReaderAlloc(t *testing.T) {
	in := usageStream(t)
	var r Reader
	var src bytes.Reader
	buf := make([]byte, 100)
	run := func() {
		src.Reset(in)
		r.Reset(&src, StreamOptions{StripUsage: true}, nil)
		for {
			if _, err := r.Read(buf); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
	}
	run()
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("Reader: %v allocations per stream", n)
	}
}

func TestRewriteRequestAlloc(t *testing.T) {
	body := []byte(`{"model":"alias","messages":[{"role":"user","content":"hello"}],"stream":true,"max_tokens":64}`)
	dst := make([]byte, 0, 2*len(body))
	if n := testing.AllocsPerRun(100, func() {
		out, res, err := RewriteRequest(dst[:0], body, Rewrite{Model: "llama-3-70b", IncludeUsage: true})
		if err != nil || res.Usage != UsageAdded || len(out) <= len(body) {
			t.Fatal(res, err)
		}
	}); n != 0 {
		t.Fatalf("RewriteRequest: %v allocations", n)
	}
}
