//go:build !race

package tenant

import (
	"testing"
	"time"
)

// TestAdmitPathAlloc: what the gateway calls per request allocates
// nothing: the key lookup from the headers, Admit, Acquire, Allows, Charge
// and Release.
func TestAdmitPathAlloc(t *testing.T) {
	s, err := Parse([]byte("keys:\n  - key: " + secret + "\n    tenant: a\n    requests_per_minute: 1000000000\n    tokens_per_minute: 1000000000\n    max_concurrent: 8\n    models: [m1, m2]\n"))
	if err != nil {
		t.Fatal(err)
	}
	auth := []byte("Bearer " + secret)
	model := []byte("m2")
	now := time.Now()
	allocs := testing.AllocsPerRun(1000, func() {
		ten, ok := s.LookupHeaders(auth, nil)
		if !ok {
			t.Fatal("lookup failed")
		}
		if ok, _ := ten.Admit(now); !ok {
			t.Fatal("refused")
		}
		if !ten.Acquire() || !ten.Allows(model) {
			t.Fatal("refused")
		}
		ten.Charge(now, 10)
		ten.Release()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
	// A refusal allocates nothing either.
	unknown := []byte("Bearer sk-unknown-0123456789")
	if allocs := testing.AllocsPerRun(1000, func() { s.LookupHeaders(unknown, nil) }); allocs != 0 {
		t.Errorf("%v allocations per unknown key, want 0", allocs)
	}
}
