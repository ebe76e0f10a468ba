package reqkey

import (
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
	"go.yaml.in/yaml/v3"
)

func ctxWith(headers map[string]string, addr net.Addr) *fasthttp.RequestCtx {
	var rc fasthttp.RequestCtx
	var req fasthttp.Request
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rc.Init(&req, addr, nil)
	return &rc
}

func TestKeyPrecedence(t *testing.T) {
	x := New(Config{Header: "X-User", Cookie: "uid"})
	addr := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5}
	cases := []struct {
		name    string
		headers map[string]string
		addr    net.Addr
		key     string
		src     Source
	}{
		{"header wins", map[string]string{"X-User": "alice", "Cookie": "uid=bob"}, addr, "alice", Header},
		{"then cookie", map[string]string{"Cookie": "uid=bob"}, addr, "bob", Cookie},
		{"then address", nil, addr, string(net.IPv4(10, 1, 2, 3).To4()), Addr},
		{"nothing", nil, &net.TCPAddr{IP: net.IPv4zero}, "", None},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, src := x.Key(ctxWith(c.headers, c.addr))
			if string(k) != c.key || src != c.src {
				t.Fatalf("got %q from %d, want %q from %d", k, src, c.key, c.src)
			}
		})
	}
}

func TestConfigYAML(t *testing.T) {
	cases := []struct {
		in      string
		want    Config
		wantErr string
	}{
		{"header:X-User", Config{Header: "X-User"}, ""},
		{"cookie:uid", Config{Cookie: "uid"}, ""},
		{"client_addr", Config{}, ""},
		{"{header: A, cookie: b}", Config{Header: "A", Cookie: "b"}, ""},
		{"ip", Config{}, `"ip": want header:NAME`},
		{"{hdr: A}", Config{}, `unknown field "hdr" (known: cookie, header)`},
	}
	for _, c := range cases {
		var got Config
		err := yaml.Unmarshal([]byte(c.in), &got)
		switch {
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: error %v, want %q", c.in, err, c.wantErr)
		case c.wantErr == "" && (err != nil || got != c.want):
			t.Errorf("%s: %+v, %v", c.in, got, err)
		}
	}
}
