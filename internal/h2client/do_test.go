package h2client_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/h2client"
	"github.com/switchyard-dev/switchyard/internal/h2key"
	"golang.org/x/net/http2/hpack"
)

// TestDoFields: Do sends the request's fields as given (te only as
// "trailers", once; connection-specific fields left out) and returns the
// answer's fields as received, its trailers once the body reads io.EOF.
func TestDoFields(t *testing.T) {
	type seen struct {
		header http.Header
		host   string
		uri    string
		body   string
	}
	seenc := make(chan seen, 1)
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		signal(seenc, seen{r.Header.Clone(), r.Host, r.RequestURI, string(b)})
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Add("X-Multi", "1")
		w.Header().Add("X-Multi", "2")
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = io.WriteString(w, "answer")
		w.Header().Set("Grpc-Status", "0")
	}), nil)
	tr, _ := newTransport(t, s.addr, nil)
	req := &h2client.Request{
		Method: http.MethodPost, Scheme: "http", Authority: "virtual.example", Path: "/pkg.Svc/Call?x=1",
		Header: []hpack.HeaderField{
			{Name: "content-type", Value: "application/grpc"},
			{Name: "te", Value: "trailers"}, {Name: "te", Value: "trailers"},
			{Name: "x-custom", Value: "a"}, {Name: "x-custom", Value: "b"},
			{Name: "connection", Value: "close"}, {Name: "keep-alive", Value: "5"}, {Name: "upgrade", Value: "h2c"},
			{Name: "content-length", Value: "99"},
		},
		Body: io.NopCloser(strings.NewReader("call")), ContentLength: 4, Ctx: testContext(t),
	}
	resp, err := tr.Do(req, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := recv(t, seenc, "the handler")
	if got.host != "virtual.example" || got.uri != "/pkg.Svc/Call?x=1" || got.body != "call" {
		t.Errorf("the node got host %q, target %q, body %q", got.host, got.uri, got.body)
	}
	if v := got.header["Te"]; !slices.Equal(v, []string{"trailers"}) {
		t.Errorf("te at the node %q, want [trailers]", v)
	}
	if v := got.header["X-Custom"]; !slices.Equal(v, []string{"a", "b"}) {
		t.Errorf("x-custom at the node %q, want [a b]", v)
	}
	if resp.StatusCode != http.StatusOK || h2key.Value(resp.Header, "content-type") != "application/grpc" {
		t.Errorf("answer %d, header %v", resp.StatusCode, resp.Header)
	}
	var multi []string
	for _, f := range resp.Header {
		if f.Name == "x-multi" {
			multi = append(multi, f.Value)
		}
	}
	if !slices.Equal(multi, []string{"1", "2"}) {
		t.Errorf("x-multi in the answer %q, want [1 2]", multi)
	}
	if resp.Trailer != nil {
		t.Errorf("trailers %v before the body's end", resp.Trailer)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "answer" {
		t.Fatalf("body %q, %v", b, err)
	}
	if h2key.Value(resp.Trailer, "grpc-status") != "0" {
		t.Errorf("trailers %v, want grpc-status 0", resp.Trailer)
	}
	_ = resp.Body.Close()
}

// TestDoRefusesBadFields: a field name in upper case or not a token, or
// a value with a line break, fails the request before anything is sent,
// and the body is closed.
func TestDoRefusesBadFields(t *testing.T) {
	s := startH2C(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a request with a bad field reached the node: %v", r.Header)
	}), nil)
	tr, _ := newTransport(t, s.addr, nil)
	for _, f := range []hpack.HeaderField{
		{Name: "X-Upper", Value: "v"}, {Name: "bad name", Value: "v"}, {Name: ":path", Value: "/x"}, {Name: "", Value: "v"},
		{Name: "x-ok", Value: "line\nbreak"},
	} {
		body := &closeRecorder{Reader: strings.NewReader("x"), closed: make(chan struct{})}
		_, err := tr.Do(&h2client.Request{Method: http.MethodPost, Scheme: "http", Authority: "n", Path: "/",
			Header: []hpack.HeaderField{f}, Body: body, ContentLength: 1, Ctx: testContext(t)}, nil)
		if err == nil || !strings.Contains(err.Error(), "invalid") {
			t.Errorf("field %q: %q: error %v, want the field refused as invalid before sending", f.Name, f.Value, err)
		}
		select {
		case <-body.closed:
		default:
			t.Errorf("field %q: the body was not closed", f.Name)
		}
	}
}
