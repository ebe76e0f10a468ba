package h2server

import (
	"net/url"
	"reflect"
	"testing"
)

// A plain path must give the URL that url.ParseRequestURI gives.
func checkPlainPath(t *testing.T, path string) {
	t.Helper()
	if !plainPath(path) {
		return
	}
	want, err := url.ParseRequestURI(path)
	if err != nil {
		t.Fatalf("plainPath(%q) but ParseRequestURI fails: %v", path, err)
	}
	if got := (url.URL{Path: path}); !reflect.DeepEqual(&got, want) {
		t.Fatalf("path %q: fast path gives %#v, ParseRequestURI %#v", path, got, *want)
	}
}

func TestPlainPath(t *testing.T) {
	plain := []string{"/", "/inference.GRPCInferenceService/ModelInfer", "/v1/chat/completions",
		"//double", "/a:b@c;d=e&f+g,h$i~j", "/-._~"}
	for _, p := range plain {
		if !plainPath(p) {
			t.Errorf("plainPath(%q) = false, want true", p)
		}
		checkPlainPath(t, p)
	}
	// Every byte the fast path leaves to ParseRequestURI.
	for _, p := range []string{"", "*", "x/y", "/a?b", "/a%20b", "/a#b", "/a b", "/a!b", "/a(b)", "/a*b", "/a'b", "/a\x00b", "/é"} {
		if plainPath(p) {
			t.Errorf("plainPath(%q) = true, want false", p)
		}
	}
	for c := 0; c < 256; c++ {
		checkPlainPath(t, "/a"+string(rune(c))+"b")
		checkPlainPath(t, "/"+string([]byte{byte(c)}))
	}
}

func FuzzPlainPath(f *testing.F) {
	f.Add("/v1/chat/completions")
	f.Add("/a%2Fb?c")
	f.Fuzz(checkPlainPath)
}
