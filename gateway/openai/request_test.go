package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestRewriteRequest(t *testing.T) {
	usage := Rewrite{IncludeUsage: true}
	for _, tc := range []struct {
		name string
		body string
		rw   Rewrite
		want string // "" for unchanged
		res  RewriteResult
	}{
		{"stream, no options", `{"model":"m","stream":true,"messages":[]}`, usage,
			`{"model":"m","stream":true,"messages":[],"stream_options":{"include_usage":true}}`, RewriteResult{Changed: true, Stream: true, Usage: UsageAdded}},
		{"whitespace kept", "{ \"stream\" : true }\n", usage,
			"{ \"stream\" : true ,\"stream_options\":{\"include_usage\":true}}\n", RewriteResult{Changed: true, Stream: true, Usage: UsageAdded}},
		{"not streamed", `{"model":"m","stream":false}`, usage, "", RewriteResult{}},
		{"stream absent", `{"model":"m"}`, usage, "", RewriteResult{}},
		{"stream is a string", `{"stream":"true"}`, usage, "", RewriteResult{}},
		{"repeated stream keeps the last", `{"stream":true,"stream":false}`, usage, "", RewriteResult{}},
		{"client asked", `{"stream":true,"stream_options":{"include_usage":true}}`, usage, "", RewriteResult{Stream: true, Usage: UsageByClient}},
		{"client declined", `{"stream":true,"stream_options":{"include_usage":false}}`, usage, "", RewriteResult{Stream: true, Usage: UsageRefused}},
		{"continuous stats", `{"stream":true,"stream_options":{"continuous_usage_stats":true}}`, usage, "", RewriteResult{Stream: true, Usage: UsageRefused}},
		{"continuous stats with usage", `{"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}}`, usage, "", RewriteResult{Stream: true, Usage: UsageByClient}},
		{"options not an object", `{"stream":true,"stream_options":"x"}`, usage, "", RewriteResult{Stream: true, Usage: UsageRefused}},
		{"options null", `{"stream":true,"stream_options":null,"n":1}`, usage,
			`{"stream":true,"stream_options":{"include_usage":true},"n":1}`, RewriteResult{Changed: true, Stream: true, Usage: UsageAdded}},
		{"options empty", `{"stream_options":{ },"stream":true}`, usage,
			`{"stream_options":{"include_usage":true },"stream":true}`, RewriteResult{Changed: true, Stream: true, Usage: UsageAdded}},
		{"options with another member", `{"stream":true,"stream_options":{"x":1}}`, usage,
			`{"stream":true,"stream_options":{"include_usage":true,"x":1}}`, RewriteResult{Changed: true, Stream: true, Usage: UsageAdded}},
		{"repeated options: the last is edited", `{"stream":true,"stream_options":{"include_usage":true},"stream_options":{}}`, usage,
			`{"stream":true,"stream_options":{"include_usage":true},"stream_options":{"include_usage":true}}`, RewriteResult{Changed: true, Stream: true, Usage: UsageAdded}},
		{"usage not asked", `{"stream":true}`, Rewrite{}, "", RewriteResult{Stream: true}},
		{"model", `{"model":"alias","messages":[{"role":"user","content":"model"}]}`, Rewrite{Model: "llama-3-70b"},
			`{"model":"llama-3-70b","messages":[{"role":"user","content":"model"}]}`, RewriteResult{Changed: true, Model: true}},
		{"model escaped in and out", `{"m\u006fdel" : "a\"b" }`, Rewrite{Model: "q\"\\\n\x01é\xff"},
			`{"m\u006fdel" : "q\"\\\n\u0001é` + "\ufffd" + `" }`, RewriteResult{Changed: true, Model: true}},
		{"every model replaced", `{"model":"a","x":{"model":"inner"},"model":"b"}`, Rewrite{Model: "u"},
			`{"model":"u","x":{"model":"inner"},"model":"u"}`, RewriteResult{Changed: true, Model: true}},
		{"no model", `{"prompt":"model"}`, Rewrite{Model: "u"}, "", RewriteResult{}},
		{"model and usage", `{"model":"alias","stream":true}`, Rewrite{Model: "real", IncludeUsage: true},
			`{"model":"real","stream":true,"stream_options":{"include_usage":true}}`, RewriteResult{Changed: true, Stream: true, Usage: UsageAdded, Model: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("prefix:")
			out, res, err := RewriteRequest(dst, []byte(tc.body), tc.rw)
			if err != nil {
				t.Fatal(err)
			}
			if res != tc.res {
				t.Fatalf("result %+v, want %+v", res, tc.res)
			}
			want := "prefix:" + tc.want
			if string(out) != want {
				t.Fatalf("body\n%s\nwant\n%s", out, want)
			}
			if tc.want != "" && !json.Valid(out[len("prefix:"):]) {
				t.Fatalf("rewritten body is not valid JSON: %s", out)
			}
		})
	}
}

func TestRewriteRequestErrors(t *testing.T) {
	for _, body := range []string{``, `[]`, `{"stream":true`, `{"stream":true} x`, `{"stream":tru}`, `"s"`, `{"a" 1}`} {
		out, res, err := RewriteRequest([]byte("keep"), []byte(body), Rewrite{Model: "m", IncludeUsage: true})
		if !errors.Is(err, ErrNotJSON) || string(out) != "keep" || res.Changed {
			t.Errorf("%q: %q %+v %v", body, out, res, err)
		}
	}
}

// TestRewriteModelAlias: a simulated engine answers 404 to the alias a
// route matched, and 200 to the body rewritten with the upstream name
// (issue 15: "today an alias routes but the engine answers 404").
func TestRewriteModelAlias(t *testing.T) {
	n := startSim(t, "sim-model")
	body := []byte(`{"model":"my-alias","messages":[{"role":"user","content":"hi"}]}`)
	send := func(b []byte) int {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/chat/completions", bytes.NewReader(b))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send(body); code != 404 {
		t.Fatalf("alias sent as is: %d, want 404", code)
	}
	out, res, err := RewriteRequest(nil, body, Rewrite{Model: "sim-model"})
	if err != nil || !res.Model {
		t.Fatalf("%+v %v", res, err)
	}
	if code := send(out); code != 200 {
		t.Fatalf("rewritten: %d", code)
	}
}
