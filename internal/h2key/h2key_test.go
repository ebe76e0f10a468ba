package h2key

import (
	"fmt"
	"strings"
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

// Every common name is found in both directions, and only in its own
// form: a lower-case name is not taken for a canonical key, nor the
// reverse (Wire of a lower-case name is the name itself, through the
// validity check, not the table).
func TestCommonTable(t *testing.T) {
	for _, k := range commonNames {
		l := strings.ToLower(k)
		if got, ok := lookupLower(l); !ok || got != k {
			t.Errorf("lookupLower(%q) = %q, %v", l, got, ok)
		}
		if got, ok := lookupCanonical(k); !ok || got != l {
			t.Errorf("lookupCanonical(%q) = %q, %v", k, got, ok)
		}
		if l != k {
			if _, ok := lookupCanonical(l); ok {
				t.Errorf("lookupCanonical found the lower-case %q", l)
			}
			if _, ok := lookupLower(k); ok {
				t.Errorf("lookupLower found the canonical %q", k)
			}
		}
	}
	for _, miss := range []string{"", "x", "content-typ", "content-typez", "Content-type", "x-request-ie", "grpc-statuz"} {
		if got, ok := lookupLower(miss); ok {
			t.Errorf("lookupLower(%q) = %q", miss, got)
		}
	}
}

// The table's probes stay short: the longest run of occupied slots bounds
// a miss's cost.
func TestCommonTableRuns(t *testing.T) {
	longest, run := 0, 0
	for i := range 2 * tableSize {
		if common[i%tableSize].canon != "" {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if longest > 6 {
		t.Errorf("longest run of occupied slots %d, want at most 6", longest)
	}
}

func BenchmarkWireCommon(b *testing.B) {
	b.ReportAllocs()
	cache := map[string]string{}
	keys := []string{"Content-Type", "User-Agent", "Te", "Grpc-Timeout", "X-Request-Id", "Via", "X-Forwarded-For", "Grpc-Accept-Encoding"}
	for b.Loop() {
		for _, k := range keys {
			Wire(k, cache)
		}
	}
}

func BenchmarkCanonicalMix(b *testing.B) {
	b.ReportAllocs()
	cache := map[string]string{}
	names := []string{"content-type", "user-agent", "te", "grpc-timeout", "x-request-id", "grpc-status", "x-custom-thing", "grpc-message"}
	for b.Loop() {
		for _, n := range names {
			Canonical(n, cache)
		}
	}
}
