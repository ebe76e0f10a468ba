package tenant

import (
	"testing"
	"time"
)

func benchSet(b *testing.B) *Set {
	s, err := Parse([]byte("keys:\n  - key: " + secret + "\n    tenant: a\n    requests_per_minute: 1000000000\n    tokens_per_minute: 1000000000\n    max_concurrent: 1000000\n    models: [m1, m2]\n"))
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkAdmitPath is one request's tenant work: lookup, Admit,
// Acquire, Allows, Charge, Release.
func BenchmarkAdmitPath(b *testing.B) {
	s := benchSet(b)
	auth, model := []byte("Bearer "+secret), []byte("m2")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		ten, _ := s.LookupHeaders(auth, nil)
		ten.Admit(now)
		ten.Acquire()
		ten.Allows(model)
		ten.Charge(now, 10)
		ten.Release()
	}
}

// BenchmarkAdmitPathParallel: every goroutine on the same tenant, the
// worst case for its atomics.
func BenchmarkAdmitPathParallel(b *testing.B) {
	for _, p := range []int{1, 4, 16} {
		b.Run("p"+itoa(p), func(b *testing.B) {
			s := benchSet(b)
			auth, model := []byte("Bearer "+secret), []byte("m2")
			now := time.Now()
			b.ReportAllocs()
			b.SetParallelism(p)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ten, _ := s.LookupHeaders(auth, nil)
					ten.Admit(now)
					ten.Acquire()
					ten.Allows(model)
					ten.Charge(now, 10)
					ten.Release()
				}
			})
		})
	}
}

// BenchmarkLookup is the key lookup alone (SHA-256 of the key, a map
// access, a constant-time compare).
func BenchmarkLookup(b *testing.B) {
	s := benchSet(b)
	key := []byte(secret)
	b.ReportAllocs()
	for b.Loop() {
		s.Lookup(key)
	}
}
