package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/switchyard-dev/switchyard/engines/kserve"
	"github.com/switchyard-dev/switchyard/gateway/tenant"
)

// h2Answer is what a raw HTTP/2 exchange got on its stream.
type h2Answer struct {
	status string
	header http.Header // the response's fields exactly as sent, names canonical
	body   string
	reset  http2.ErrCode // non-zero when the stream was reset
}

// rawH2 sends one request over a new h2c connection with exactly the
// given fields (lower-case names; no client library filters them) and
// reads its answer frame by frame, so a test sees what is on the wire.
func rawH2(t *testing.T, addr, path string, fields [][2]string, body string) h2Answer {
	t.Helper()
	h := dialH2c(t, addr, 10*time.Second)
	defer h.c.Close()
	h.headers(t, 1, path, fields)
	if err := h.fr.WriteData(1, true, []byte(body)); err != nil {
		t.Fatal(err)
	}
	return readH2Answer(t, h.fr, 1)
}

// h2cConn is a raw h2c client connection for tests that write frames
// themselves: the preface and SETTINGS are sent, fr reads and writes.
type h2cConn struct {
	c    net.Conn
	fr   *http2.Framer
	addr string
	hb   bytes.Buffer
	enc  *hpack.Encoder
}

// dialH2c opens an h2c connection to addr with a deadline of timeout for
// everything on it; the caller closes h.c.
func dialH2c(t *testing.T, addr string, timeout time.Duration) *h2cConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		c.Close()
		t.Fatal(err)
	}
	h := &h2cConn{c: c, fr: http2.NewFramer(c, c), addr: addr}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.hb)
	if err := h.fr.WriteSettings(); err != nil {
		c.Close()
		t.Fatal(err)
	}
	return h
}

// headers writes stream id's HEADERS (END_HEADERS, not END_STREAM): a
// POST to path with exactly the given further fields (lower-case names).
func (h *h2cConn) headers(t *testing.T, id uint32, path string, fields [][2]string) {
	t.Helper()
	h.hb.Reset()
	for _, f := range append([][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", h.addr}, {":path", path}}, fields...) {
		_ = h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.hb.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
}

// readH2Answer reads frames until stream id's answer is complete (or the
// stream is reset), answering the server's SETTINGS and PINGs meanwhile.
func readH2Answer(t *testing.T, fr *http2.Framer, id uint32) h2Answer {
	t.Helper()
	a := h2Answer{header: http.Header{}}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading the answer: %v (so far %+v)", err, a)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				_ = fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != id {
				continue
			}
			for _, hf := range f.Fields {
				if hf.Name == ":status" {
					a.status = hf.Value
				} else {
					a.header.Add(hf.Name, hf.Value)
				}
			}
			if f.StreamEnded() {
				return a
			}
		case *http2.DataFrame:
			if f.StreamID != id {
				continue
			}
			a.body += string(f.Data())
			if len(f.Data()) > 0 {
				_ = fr.WriteWindowUpdate(0, uint32(len(f.Data())))
			}
			if f.StreamEnded() {
				return a
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				a.reset = f.ErrCode
				return a
			}
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY %v before the answer (so far %+v)", f.ErrCode, a)
		}
	}
}

// TestHTTP2HopHeaders: over h2c the node gets what the HTTP/1.1 path
// gives it — no hop-by-hop field (Te: trailers and Trailer are the only
// ones HTTP/2 lets in; Connection, Keep-Alive, Proxy-Connection, Upgrade
// and any other TE make the request malformed, answered 400 without
// reaching the node), the client's address appended to X-Forwarded-For,
// this gateway appended to Via, a request ID — and the client gets no
// hop-by-hop field of the node's answer.
func TestHTTP2HopHeaders(t *testing.T) {
	var nodeGot headerLog
	be := backend(t, "hop", func(w http.ResponseWriter, r *http.Request) {
		nodeGot.add(r)
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Connection", "keep-alive")
		h.Set("Upgrade", "h2c")
		h.Set("Te", "trailers")
		h.Set("X-Node-Kept", "yes")
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	gw := startGateway(t, testConfig(staticRoute("m", be.URL)))
	body := `{"model":"m"}`
	common := [][2]string{{"content-type", "application/json"}, {"x-kept", "yes"},
		{"x-forwarded-for", "10.1.2.3"}, {"via", "1.1 edge-proxy"}}

	// Cookie crumbs (RFC 9113 §8.2.3) must reach the HTTP/1.1 node as
	// one line.
	a := rawH2(t, gw.addr, "/v1/completions", append([][2]string{{"te", "trailers"}, {"trailer", "X-Foo"},
		{"cookie", "a=1"}, {"cookie", "b=2"}}, common...), body)
	if a.status != "200" {
		t.Fatalf("h2c request: %+v", a)
	}
	for _, h := range []string{"Keep-Alive", "Proxy-Connection", "Upgrade", "Te", "Connection", "Transfer-Encoding"} {
		if v := a.header.Get(h); v != "" {
			t.Errorf("the HTTP/2 client got the node's hop-by-hop %s: %q", h, v)
		}
	}
	if a.header.Get("X-Node-Kept") != "yes" || a.body != `{"ok":true}` {
		t.Errorf("the node's answer did not come through: %+v", a)
	}

	// The same request over HTTP/1.1, for what the node must get.
	resp, b := post(t, testClient(), gw.url("/v1/completions"), body, "X-Kept", "yes",
		"X-Forwarded-For", "10.1.2.3", "Via", "1.1 edge-proxy", "Te", "trailers", "Trailer", "X-Foo")
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP/1.1 request: %d %s", resp.StatusCode, b)
	}

	seen := nodeGot.all()
	if len(seen) != 2 {
		t.Fatalf("the node got %d requests, want 2", len(seen))
	}
	h2, h1 := seen[0], seen[1]
	for _, h := range []string{"Te", "Trailer", "Keep-Alive", "Proxy-Connection", "Upgrade"} {
		if v := h2.Get(h); v != "" {
			t.Errorf("node got hop-by-hop %s over h2c: %q", h, v)
		}
	}
	if h2.Get("X-Kept") != "yes" || h2.Get("X-Forwarded-For") != "10.1.2.3, 127.0.0.1" || h2.Get("X-Request-Id") == "" {
		t.Errorf("node headers over h2c %v: want X-Kept, X-Forwarded-For 10.1.2.3, 127.0.0.1 and X-Request-Id", h2)
	}
	if c := h2["Cookie"]; len(c) != 1 || c[0] != "a=1; b=2" {
		t.Errorf("node's Cookie over h2c %q, want one line [a=1; b=2]", c)
	}
	if via := h2.Get("Via"); !strings.HasPrefix(via, "1.1 edge-proxy, 1.1 switchyard") {
		t.Errorf("node's Via over h2c %q: want the client's, then this gateway", via)
	}
	for _, h := range []string{"X-Forwarded-For", "Via"} {
		if h2.Get(h) != h1.Get(h) {
			t.Errorf("%s: %q over h2c, %q over HTTP/1.1", h, h2.Get(h), h1.Get(h))
		}
	}

	// Connection-specific fields make an HTTP/2 request malformed (RFC
	// 9113 §8.2.2): refused, and the node never sees it.
	for _, f := range [][2]string{{"connection", "x-foo"}, {"keep-alive", "timeout=5"},
		{"proxy-connection", "keep-alive"}, {"upgrade", "websocket"}, {"te", "gzip"}} {
		a := rawH2(t, gw.addr, "/v1/completions", append([][2]string{f, {"x-foo", "bar"}}, common...), body)
		if a.status != "400" && a.reset == 0 {
			t.Errorf("request with %s: %+v, want 400 or a reset stream", f[0], a)
		}
	}
	if seen := nodeGot.all(); len(seen) != 2 {
		t.Errorf("malformed HTTP/2 requests reached the node: %v", seen[2:])
	}
}

// keysFile writes an auth.api_keys_file with two tenants: team-a by its
// key, team-b by its key's SHA-256.
func keysFile(t *testing.T, keyA, keyB string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(keyB))
	file := filepath.Join(t.TempDir(), "keys.yaml")
	body := "keys:\n" +
		"  - {key: " + keyA + ", tenant: team-a}\n" +
		"  - {key_sha256: " + hex.EncodeToString(sum[:]) + ", tenant: team-b}\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestHTTP2APIKeysStayAtGateway: with auth.api_keys_file, an h2c
// request's key (Authorization: Bearer or x-api-key) never reaches the
// node; the tenant does, and a client cannot name its own tenant.
func TestHTTP2APIKeysStayAtGateway(t *testing.T) {
	var nodeGot headerLog
	be := backend(t, "n", func(w http.ResponseWriter, r *http.Request) {
		nodeGot.add(r)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{}`)
	})
	const keyA, keyB = "sk-test-team-a-0123456789abcdef", "sk-test-team-b-0123456789abcdef"
	cfg := testConfig(staticRoute("m", be.URL))
	cfg.Auth = &tenant.Config{Path: keysFile(t, keyA, keyB), Interval: time.Minute}
	gw := startGateway(t, cfg)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2cOnly()}}
	call := func(hdr ...string) int {
		t.Helper()
		resp, _ := post(t, c, gw.url("/v1/completions"), `{"model":"m"}`, hdr...)
		if resp.ProtoMajor != 2 {
			t.Fatalf("proto %d, want h2c", resp.ProtoMajor)
		}
		return resp.StatusCode
	}
	if st := call(); st != 401 {
		t.Errorf("no key over h2c: %d, want 401", st)
	}
	if st := call("Authorization", "Bearer "+keyA, "X-Switchyard-Tenant", "team-b"); st != 200 {
		t.Fatalf("team-a over h2c: %d", st)
	}
	if st := call("X-Api-Key", keyB); st != 200 {
		t.Fatalf("team-b by x-api-key over h2c: %d", st)
	}
	seen := nodeGot.all()
	if len(seen) != 2 {
		t.Fatalf("the node got %d requests, want 2", len(seen))
	}
	for i, h := range seen {
		for k, vv := range h {
			for _, v := range vv {
				if strings.Contains(v, "sk-test") {
					t.Errorf("request %d reached the node with its key in %s", i, k)
				}
			}
		}
	}
	if a, b := seen[0].Values("X-Switchyard-Tenant"), seen[1].Values("X-Switchyard-Tenant"); len(a) != 1 || a[0] != "team-a" || len(b) != 1 || b[0] != "team-b" {
		t.Errorf("tenants at the node: %q, %q; want [team-a], [team-b]", a, b)
	}
}

// TestGRPCForwardedHeadersAndKeys: a gRPC call's node gets the client's
// address in X-Forwarded-For and this gateway in Via, as an HTTP request's
// would, and with auth.api_keys_file the tenant instead of the key.
func TestGRPCForwardedHeadersAndKeys(t *testing.T) {
	addr, nodeCalls := grpcRecorder(t)
	const keyA, keyB = "sk-test-team-a-0123456789abcdef", "sk-test-team-b-0123456789abcdef"
	cfg := testConfig(RouteConfig{Name: "m", Match: MatchConfig{Models: []string{"m"}}, Nodes: []NodeConfig{{GRPC: addr}}})
	cfg.Auth = &tenant.Config{Path: keysFile(t, keyA, keyB), Interval: time.Minute}
	gw := startGateway(t, cfg)
	cc := grpcClient(t, gw.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kserve.InferRequest{ModelName: "m"}.Marshal()
	for i, md := range []metadata.MD{
		metadata.Pairs("authorization", "Bearer "+keyA, "x-forwarded-for", "10.1.2.3", "via", "1.1 edge-proxy", "x-switchyard-tenant", "team-b", "x-request-id", "req-7"),
		metadata.Pairs("x-api-key", keyB),
	} {
		var out []byte
		if err := cc.Invoke(metadata.NewOutgoingContext(ctx, md), mInfer, req, &out); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	got := nodeCalls()
	if len(got) != 2 {
		t.Fatalf("the node got %d calls, want 2", len(got))
	}
	for i, md := range got {
		for k, vv := range md {
			if strings.Contains(fmt.Sprint(vv), "sk-test") {
				t.Errorf("call %d reached the node with its key in %s", i, k)
			}
		}
	}
	if a, b := got[0].Get("x-switchyard-tenant"), got[1].Get("x-switchyard-tenant"); len(a) != 1 || a[0] != "team-a" || len(b) != 1 || b[0] != "team-b" {
		t.Errorf("tenants at the node: %q, %q; want [team-a], [team-b]", a, b)
	}
	// The gateway sends the request ID it made itself and drops the
	// client's: each must arrive once.
	if a, b := got[0].Get("x-request-id"), got[1].Get("x-request-id"); len(a) != 1 || a[0] != "req-7" || len(b) != 1 || b[0] == "" {
		t.Errorf("request IDs at the node: %q, %q; want the client's [req-7], then one generated", a, b)
	}
	if xff := got[0].Get("x-forwarded-for"); len(xff) != 1 || xff[0] != "10.1.2.3, 127.0.0.1" {
		t.Errorf("X-Forwarded-For at the node %q, want [10.1.2.3, 127.0.0.1]", xff)
	}
	if xff := got[1].Get("x-forwarded-for"); len(xff) != 1 || xff[0] != "127.0.0.1" {
		t.Errorf("X-Forwarded-For at the node %q, want [127.0.0.1]", xff)
	}
	if via := got[0].Get("via"); len(via) != 1 || !strings.HasPrefix(via[0], "1.1 edge-proxy, 1.1 switchyard") {
		t.Errorf("Via at the node %q: want the client's, then this gateway", via)
	}
	for _, h := range []string{"connection", "keep-alive", "proxy-connection", "upgrade", "transfer-encoding"} {
		if v := got[0].Get(h); len(v) != 0 {
			t.Errorf("node got hop-by-hop %s: %q", h, v)
		}
	}
}

// grpcRecorder is a gRPC node that keeps every call's metadata and echoes
// its first message; calls returns the metadata received so far.
func grpcRecorder(t *testing.T) (addr string, calls func() []metadata.MD) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []metadata.MD // guarded by mu
	srv := grpc.NewServer(grpc.ForceServerCodecV2(kserve.Codec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		var in []byte
		if err := ss.RecvMsg(&in); err != nil {
			return err
		}
		md, _ := metadata.FromIncomingContext(ss.Context())
		mu.Lock()
		got = append(got, md.Copy())
		mu.Unlock()
		return ss.SendMsg(in)
	}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), func() []metadata.MD {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// TestHTTP2AnswerHeadersNotIndexed: the gateway encodes answer headers as
// HPACK literals, so an answer's header block does not shrink when the
// same fields come again on the connection. With the dynamic table each
// answer's unique X-Request-Id entered it and evicted an older entry, the
// table's upkeep a tenth of a proxied gRPC call's CPU (frontend's
// hpackLiterals).
func TestHTTP2AnswerHeadersNotIndexed(t *testing.T) {
	be := backend(t, "lit", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Node-Field", "the same value every time")
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	gw := startGateway(t, testConfig(staticRoute("m", be.URL)))
	h := dialH2c(t, gw.addr, 10*time.Second)
	defer h.c.Close()
	h.fr.ReadMetaHeaders = nil // see the blocks as sent
	dec := hpack.NewDecoder(4096, nil)
	var blocks [][]byte
	for id := uint32(1); id <= 3; id += 2 {
		h.headers(t, id, "/v1/completions", [][2]string{{"content-type", "application/json"}, {"x-request-id", fmt.Sprintf("req-%d", id)}})
		if err := h.fr.WriteData(id, true, []byte(`{"model":"m"}`)); err != nil {
			t.Fatal(err)
		}
		for block := []byte(nil); block == nil; {
			f, err := h.fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = h.fr.WriteSettingsAck()
				}
			case *http2.HeadersFrame:
				if f.StreamID == id && f.HeadersEnded() {
					block = append([]byte(nil), f.HeaderBlockFragment()...)
					fields, err := dec.DecodeFull(block)
					if err != nil {
						t.Fatalf("answer %d: %v", id, err)
					}
					if !slices.Contains(fields, hpack.HeaderField{Name: "x-node-field", Value: "the same value every time"}) {
						t.Fatalf("answer %d headers %v lack the node's field", id, fields)
					}
					blocks = append(blocks, block)
				}
			}
		}
	}
	// The first block may start with a one-byte table size update.
	if len(blocks[1]) < len(blocks[0])-1 {
		t.Fatalf("the second answer's header block is %d bytes, the first %d: fields were indexed", len(blocks[1]), len(blocks[0]))
	}
}

// TestTenantHeaderOnlyFromGateway: without API keys configured, a
// client's own X-Switchyard-Tenant never reaches a node, over HTTP/1.1,
// HTTP/2 or gRPC (only the gateway names a tenant, after checking a key;
// TestGRPCForwardedHeadersAndKeys and TestHTTP2APIKeysStayAtGateway cover
// that case).
func TestTenantHeaderOnlyFromGateway(t *testing.T) {
	var nodeGot headerLog
	be := backend(t, "tenant", func(w http.ResponseWriter, r *http.Request) {
		nodeGot.add(r)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	addr, nodeCalls := grpcRecorder(t)
	gw := startGateway(t, testConfig(staticRoute("m", be.URL),
		RouteConfig{Name: "g", Match: MatchConfig{Models: []string{"g"}}, Nodes: []NodeConfig{{GRPC: addr}}}))
	body := `{"model":"m"}`
	if resp, b := post(t, testClient(), gw.url("/v1/completions"), body, "X-Switchyard-Tenant", "team-spoof", "X-Kept", "yes"); resp.StatusCode != 200 {
		t.Fatalf("HTTP/1.1: %d %s", resp.StatusCode, b)
	}
	if a := rawH2(t, gw.addr, "/v1/completions", [][2]string{{"content-type", "application/json"}, {"x-switchyard-tenant", "team-spoof"}, {"x-kept", "yes"}}, body); a.status != "200" {
		t.Fatalf("h2c: %+v", a)
	}
	cc := grpcClient(t, gw.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []byte
	md := metadata.Pairs("x-switchyard-tenant", "team-spoof", "x-kept", "yes")
	if err := cc.Invoke(metadata.NewOutgoingContext(ctx, md), mInfer, kserve.InferRequest{ModelName: "g"}.Marshal(), &out); err != nil {
		t.Fatalf("gRPC: %v", err)
	}
	seen := nodeGot.all()
	mds := nodeCalls()
	if len(seen) != 2 || len(mds) != 1 {
		t.Fatalf("the nodes got %d HTTP requests and %d gRPC calls, want 2 and 1", len(seen), len(mds))
	}
	for i, h := range seen {
		if v := h.Values("X-Switchyard-Tenant"); len(v) != 0 || h.Get("X-Kept") != "yes" {
			t.Errorf("HTTP request %d reached the node with X-Switchyard-Tenant %q (X-Kept %q)", i, v, h.Get("X-Kept"))
		}
	}
	if v := mds[0].Get("x-switchyard-tenant"); len(v) != 0 || len(mds[0].Get("x-kept")) != 1 {
		t.Errorf("the gRPC call reached the node with x-switchyard-tenant %q (x-kept %q)", v, mds[0].Get("x-kept"))
	}
}

// TestHTTP2AnswerFieldsFromHTTP1Node: an HTTP/1.1 node's answer reaches an
// HTTP/2 client with each of its fields as sent, repeated ones in order,
// and one X-Request-Id, the gateway's (as on HTTP/1.1), even when the node
// sets its own.
func TestHTTP2AnswerFieldsFromHTTP1Node(t *testing.T) {
	var nodeGot headerLog
	be := backend(t, "fields", func(w http.ResponseWriter, r *http.Request) {
		nodeGot.add(r)
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("X-Request-Id", "node-made")
		h["Set-Cookie"] = []string{"a=1", "b=2", "c=3"}
		_, _ = w.Write([]byte(`{"ok":true}`))
	})
	gw := startGateway(t, testConfig(staticRoute("m", be.URL)))
	for _, clientID := range []string{"", "client-made"} {
		fields := [][2]string{{"content-type", "application/json"}}
		if clientID != "" {
			fields = append(fields, [2]string{"x-request-id", clientID})
		}
		a := rawH2(t, gw.addr, "/v1/completions", fields, `{"model":"m"}`)
		seen := nodeGot.all()
		sent := seen[len(seen)-1].Get("X-Request-Id")
		if a.status != "200" || a.body != `{"ok":true}` {
			t.Fatalf("h2c request: %+v", a)
		}
		if ids := a.header["X-Request-Id"]; len(ids) != 1 || ids[0] != sent || clientID != "" && sent != clientID {
			t.Errorf("client id %q: X-Request-Id %q, want only %q (what the node got)", clientID, ids, sent)
		}
		if c := a.header["Set-Cookie"]; !slices.Equal(c, []string{"a=1", "b=2", "c=3"}) {
			t.Errorf("Set-Cookie %q, want [a=1 b=2 c=3]", c)
		}
		if ct, cl := a.header["Content-Type"], a.header["Content-Length"]; !slices.Equal(ct, []string{"application/json"}) || !slices.Equal(cl, []string{"11"}) {
			t.Errorf("Content-Type %q, Content-Length %q: want the node's, once each", ct, cl)
		}
	}
}
