package forward

import (
	"strings"
	"testing"
)

func TestConnectionTokens(t *testing.T) {
	for conn, want := range map[string]string{
		"":                           "",
		"close":                      "",
		"Keep-Alive, close":          "",
		"X-Foo":                      "X-Foo",
		" X-Foo ,keep-alive,, X-Bar": "X-Foo|X-Bar",
		"upgrade":                    "upgrade",
	} {
		var got []string
		ConnectionTokens([]byte(conn), func(name []byte) { got = append(got, string(name)) })
		if strings.Join(got, "|") != want {
			t.Errorf("ConnectionTokens(%q) = %q, want %q", conn, got, want)
		}
	}
	if !ConnectionListed([]byte("x-foo, close"), []byte("X-Foo")) || ConnectionListed([]byte("X-Foo"), []byte("X-Fo")) {
		t.Error("ConnectionListed")
	}
}
