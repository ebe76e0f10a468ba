package reqkey

import (
	"net"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// testRequest is a Request over plain maps.
type testRequest struct {
	headers map[string]string
	cookies map[string]string
	ip      []byte
}

func (r testRequest) Header(name []byte) []byte {
	if v, ok := r.headers[string(name)]; ok {
		return []byte(v)
	}
	return nil
}

func (r testRequest) Cookie(name []byte) []byte {
	if v, ok := r.cookies[string(name)]; ok {
		return []byte(v)
	}
	return nil
}

func (r testRequest) ClientIP() []byte { return r.ip }

func TestKeyPrecedence(t *testing.T) {
	x := New(Config{Header: "X-User", Cookie: "uid"})
	ip := []byte(net.IPv4(10, 1, 2, 3).To4())
	cases := []struct {
		name string
		req  testRequest
		key  string
		src  Source
	}{
		{"header wins", testRequest{map[string]string{"X-User": "alice"}, map[string]string{"uid": "bob"}, ip}, "alice", Header},
		{"then cookie", testRequest{nil, map[string]string{"uid": "bob"}, ip}, "bob", Cookie},
		{"then address", testRequest{nil, nil, ip}, string(ip), Addr},
		{"nothing", testRequest{}, "", None},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, src := x.Key(c.req)
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
