package forward

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// h2Exchange is an Exchange holding an HTTP/2 request as the frontend
// sets it, for writeH1Head.
func h2Exchange(method, target, host string, fields []hpack.HeaderField, body string) *Exchange {
	x := &Exchange{core: &Core{via: []byte("1.1 switchyard-t")}}
	r := &x.Req
	r.Method, r.URI, r.Path, r.Host = []byte(method), []byte(target), []byte(target), []byte(host)
	r.fields, r.Body = fields, []byte(body)
	r.ipText = []byte("10.0.0.9")
	return x
}

// TestWriteH1Head: what an HTTP/1.1 node reads for an HTTP/2 request.
func TestWriteH1Head(t *testing.T) {
	fields := []hpack.HeaderField{
		{Name: "content-type", Value: "application/json"},
		{Name: "x-custom-thing", Value: "a b"},
		{Name: "cookie", Value: "a=1"}, {Name: "cookie", Value: "b=2"},
		{Name: "x-forwarded-for", Value: "192.0.2.1"},
		{Name: "via", Value: "2 edge"},
		{Name: "te", Value: "trailers"}, {Name: "trailer", Value: "x-sum"},
		{Name: "host", Value: "other.example"},
		{Name: "content-length", Value: "999"},
		{Name: "x-switchyard-tenant", Value: "forged"},
		{Name: "x-multi", Value: "1"}, {Name: "x-multi", Value: "2"},
	}
	x := h2Exchange("POST", "/v1/chat/completions?a=1 2", "gw.example", fields, `{"model":"m"}`)
	head := x.writeH1Head(nil)
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(append(head, x.Req.Body...))))
	if err != nil {
		t.Fatalf("%v in %q", err, head)
	}
	if req.Method != "POST" || req.RequestURI != "/v1/chat/completions?a=1%202" || req.Host != "gw.example" || req.ContentLength != 13 {
		t.Errorf("request line and host: %s %s, Host %s, length %d", req.Method, req.RequestURI, req.Host, req.ContentLength)
	}
	want := http.Header{
		"Content-Type":    {"application/json"},
		"X-Custom-Thing":  {"a b"},
		"Cookie":          {"a=1; b=2"},
		"X-Forwarded-For": {"192.0.2.1, 10.0.0.9"},
		"Via":             {"2 edge, 1.1 switchyard-t"},
		"X-Multi":         {"1", "2"},
		"Content-Length":  {"13"},
	}
	if len(req.Header) != len(want) {
		t.Errorf("header %v, want %v", req.Header, want)
	}
	for k, v := range want {
		if !slices.Equal(req.Header[k], v) {
			t.Errorf("%s: %q, want %q", k, req.Header[k], v)
		}
	}
	// Names in canonical form on the wire, as HTTP/1.1 clients send them.
	if !bytes.Contains(head, []byte("\r\nX-Custom-Thing: a b\r\n")) {
		t.Errorf("head %q: want the canonical X-Custom-Thing", head)
	}

	// A GET without a body gets no Content-Length; a POST with none gets 0.
	for method, want := range map[string]string{"GET": "", "POST": "0"} {
		x := h2Exchange(method, "/v1/models", "gw", nil, "")
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(x.writeH1Head(nil))))
		if err != nil {
			t.Fatal(err)
		}
		if got := req.Header.Get("Content-Length"); got != want {
			t.Errorf("%s without a body: Content-Length %q, want %q", method, got, want)
		}
	}
}

// FuzzWriteH1Head: for any request the HTTP/2 server lets through (a
// token method, fields with lower-case token names and values without
// CR, LF or NUL), the head is one request line, one line per field the
// node gets, and the empty line: no field can add a line of its own.
func FuzzWriteH1Head(f *testing.F) {
	f.Add("POST", "/v1/completions", "gw", "x-a\x00v\x00cookie\x00c=1\x00via\x001.0 a", "{}")
	f.Add("GET", "/x?y=\x7f\xff z", "h:1", "x-forwarded-for\x00\x00te\x00trailers", "")
	f.Fuzz(func(t *testing.T, method, target, host, packed, body string) {
		if !httpguts.ValidHeaderFieldName(method) || !httpguts.ValidHeaderFieldValue(target) ||
			!httpguts.ValidHeaderFieldValue(host) || !strings.HasPrefix(target, "/") {
			return
		}
		parts := strings.Split(packed, "\x00")
		var fields []hpack.HeaderField
		for i := 0; i+1 < len(parts); i += 2 {
			name, value := parts[i], parts[i+1]
			if name == "" || strings.ToLower(name) != name || !httpguts.ValidHeaderFieldName(name) || !httpguts.ValidHeaderFieldValue(value) {
				return
			}
			fields = append(fields, hpack.HeaderField{Name: name, Value: value})
		}
		x := h2Exchange(method, target, host, fields, body)
		head := string(x.writeH1Head(nil))
		if !strings.HasSuffix(head, "\r\n\r\n") {
			t.Fatalf("head %q does not end with an empty line", head)
		}
		lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
		if line := lines[0]; strings.Count(line, " ") != 2 || !strings.HasPrefix(line, method+" /") || !strings.HasSuffix(line, " HTTP/1.1") {
			t.Fatalf("request line %q", line)
		}
		for _, l := range lines[1:] {
			name, _, ok := strings.Cut(l, ": ")
			if !ok || !httpguts.ValidHeaderFieldName(name) || strings.ContainsAny(l, "\r\n\x00") {
				t.Fatalf("field line %q in %q", l, head)
			}
		}
		if _, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head + body))); err != nil && host != "" && !strings.ContainsAny(host, " \t") {
			t.Fatalf("%v reading %q", err, head)
		}
	})
}
