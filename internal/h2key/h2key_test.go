package h2key

import (
	"fmt"
	"testing"
)

func TestCanonicalAndWire(t *testing.T) {
	cache := map[string]string{}
	for _, tc := range []struct{ wire, canon string }{
		{"content-type", "Content-Type"},
		{"grpc-status", "Grpc-Status"},
		{"x-custom-thing", "X-Custom-Thing"},
		{"x-a", "X-A"},
	} {
		if got := Canonical(tc.wire, cache); got != tc.canon {
			t.Errorf("Canonical(%q) = %q, want %q", tc.wire, got, tc.canon)
		}
		if got := Wire(tc.canon, cache); got != tc.wire {
			t.Errorf("Wire(%q) = %q, want %q", tc.canon, got, tc.wire)
		}
		if got := Wire(tc.wire, nil); got != tc.wire {
			t.Errorf("Wire(%q, nil) = %q", tc.wire, got)
		}
	}
	for _, bad := range []string{"", "Bad Name", "x:y", "é"} {
		if got := Wire(bad, cache); got != "" {
			t.Errorf("Wire(%q) = %q, want \"\" (invalid field name)", bad, got)
		}
	}
}

// A peer sending endless distinct names cannot grow a connection's cache.
func TestCacheIsBounded(t *testing.T) {
	cache := map[string]string{}
	for i := range 1000 {
		Canonical(fmt.Sprintf("x-name-%d", i), cache)
		Wire(fmt.Sprintf("X-Name-%d", i), cache)
	}
	if len(cache) > cacheSize {
		t.Fatalf("cache holds %d names, bound %d", len(cache), cacheSize)
	}
}

func BenchmarkCanonicalCommon(b *testing.B) {
	b.ReportAllocs()
	cache := map[string]string{}
	for b.Loop() {
		Canonical("grpc-timeout", cache)
	}
}
