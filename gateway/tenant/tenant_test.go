package tenant

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestRequestsPerMinute(t *testing.T) {
	ten := newTenant("a", Limits{RequestsPerMinute: 60}, t0)
	// A full bucket: a minute's requests at once.
	for i := range 60 {
		if ok, _ := ten.Admit(t0); !ok {
			t.Fatalf("request %d refused", i)
		}
	}
	ok, wait := ten.Admit(t0)
	if ok || wait != time.Second {
		t.Fatalf("61st request: ok %v, retry after %v; want refused, 1s", ok, wait)
	}
	// Refill at 60 a minute: one more each second, not before.
	if ok, wait := ten.Admit(t0.Add(999 * time.Millisecond)); ok || wait != time.Millisecond {
		t.Errorf("at 999 ms: ok %v, retry after %v", ok, wait)
	}
	if ok, _ := ten.Admit(t0.Add(time.Second)); !ok {
		t.Error("refused at 1 s")
	}
	if ok, _ := ten.Admit(t0.Add(time.Second)); ok {
		t.Error("two admitted at 1 s")
	}
	// After a quiet minute the bucket is full again, and no fuller.
	later := t0.Add(5 * time.Minute)
	n := 0
	for {
		if ok, _ := ten.Admit(later); !ok {
			break
		}
		n++
	}
	if n != 60 {
		t.Errorf("%d admitted after a quiet period, want 60", n)
	}
	u := ten.Usage()
	if u.Admitted != 121 || u.RefusedRequests != 4 || u.RefusedTokens != 0 {
		t.Errorf("usage %+v", u)
	}
}

// TestRequestsPerMinuteConcurrent: the compare-and-swap loop admits
// exactly the bucket, however many goroutines ask at once.
func TestRequestsPerMinuteConcurrent(t *testing.T) {
	ten := newTenant("a", Limits{RequestsPerMinute: 500}, t0)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if ok, _ := ten.Admit(t0); ok {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != 500 {
		t.Errorf("admitted %d of 1600 at one instant, want 500", admitted.Load())
	}
}

func TestTokensPerMinute(t *testing.T) {
	ten := newTenant("a", Limits{TokensPerMinute: 600}, t0)
	if ok, _ := ten.Admit(t0); !ok {
		t.Fatal("refused before any charge")
	}
	// Within the minute's budget: still admitted.
	ten.Charge(t0, 600)
	if ok, _ := ten.Admit(t0); !ok {
		t.Fatal("refused with the budget exactly spent")
	}
	// 400 tokens over: 40 s of debt at 10 tokens a second.
	ten.Charge(t0, 400)
	ok, wait := ten.Admit(t0)
	if ok || wait != 40*time.Second {
		t.Fatalf("over the budget: ok %v, retry after %v; want refused, 40s", ok, wait)
	}
	if ok, _ := ten.Admit(t0.Add(39 * time.Second)); ok {
		t.Error("admitted at 39 s")
	}
	if ok, _ := ten.Admit(t0.Add(40 * time.Second)); !ok {
		t.Error("refused at 40 s")
	}
	ten.Charge(t0, 0)
	ten.Charge(t0, -5)
	u := ten.Usage()
	if u.Tokens != 1000 || u.RefusedTokens != 2 || u.Admitted != 3 {
		t.Errorf("usage %+v", u)
	}
}

func TestTokensCheckedBeforeRequests(t *testing.T) {
	ten := newTenant("a", Limits{RequestsPerMinute: 1, TokensPerMinute: 60}, t0)
	ten.Charge(t0, 120)
	if ok, _ := ten.Admit(t0); ok {
		t.Fatal("admitted in token debt")
	}
	// The refusal for tokens took no request from the bucket.
	if ok, _ := ten.Admit(t0.Add(time.Minute)); !ok {
		t.Error("refused once the debt is paid")
	}
}

func TestMaxConcurrent(t *testing.T) {
	ten := newTenant("a", Limits{MaxConcurrent: 2}, t0)
	first, second := ten.Acquire(), ten.Acquire()
	if !first || !second {
		t.Fatal("refused under the limit")
	}
	if ten.Acquire() {
		t.Fatal("third acquired with max_concurrent 2")
	}
	ten.Release()
	if !ten.Acquire() {
		t.Fatal("refused after a release")
	}
	if u := ten.Usage(); u.InFlight != 2 || u.RefusedConcurrency != 1 {
		t.Errorf("usage %+v", u)
	}
}

func TestUnlimited(t *testing.T) {
	ten := newTenant("a", Limits{}, t0)
	ten.Charge(t0, 1<<40)
	for range 1000 {
		if ok, _ := ten.Admit(t0); !ok || !ten.Acquire() {
			t.Fatal("refused without limits")
		}
	}
	if !ten.Allows([]byte("anything")) {
		t.Error("no allowlist, yet a model is refused")
	}
}

func TestAllows(t *testing.T) {
	ten := newTenant("a", Limits{Models: []string{"llama-3-70b", "llama-3-8b"}}, t0)
	for model, want := range map[string]bool{"llama-3-70b": true, "llama-3-8b": true, "llama-3": false, "": false, "LLAMA-3-8B": false} {
		if got := ten.Allows([]byte(model)); got != want {
			t.Errorf("Allows(%q) = %v", model, got)
		}
	}
}

func TestChargeOverflow(t *testing.T) {
	ten := newTenant("a", Limits{TokensPerMinute: 1}, t0)
	for range 200 { // far beyond int64 nanoseconds in total
		ten.Charge(t0, 1<<62)
	}
	if ok, wait := ten.Admit(t0); ok || wait <= 0 {
		t.Errorf("after a huge charge: ok %v, retry after %v", ok, wait)
	}
}

// TestReloadKeepsState: a tenant that stays in the file keeps its buckets
// and requests in flight; its limits change.
func TestReloadKeepsState(t *testing.T) {
	v1, err := parseFile([]byte("keys:\n  - key: " + secret + "\n    tenant: a\n    requests_per_minute: 2\n    tokens_per_minute: 60\n    max_concurrent: 1\n  - key: sk-b-0123456789abcdef\n    tenant: b\n"))
	if err != nil {
		t.Fatal(err)
	}
	s1 := build(v1, nil, t0)
	a, _ := s1.Tenant("a")
	a.Admit(t0)
	a.Admit(t0)
	a.Acquire()
	a.Charge(t0, 150) // 90 tokens over: 90 s of debt at 60 a minute
	v2, err := parseFile([]byte("keys:\n  - key: sk-new-0123456789abcdef\n    tenant: a\n    requests_per_minute: 3\n    tokens_per_minute: 120\n    max_concurrent: 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	s2 := build(v2, s1, t0)
	a2, ok := s2.Lookup([]byte("sk-new-0123456789abcdef"))
	if !ok || a2 != a {
		t.Fatal("tenant a is a new object after the reload")
	}
	if _, ok := s2.Lookup([]byte(secret)); ok {
		t.Error("the removed key still works")
	}
	if _, ok := s2.Tenant("b"); ok {
		t.Error("the removed tenant is still there")
	}
	if got := a.Limits().RequestsPerMinute; got != 3 {
		t.Errorf("limit %d after the reload, want 3", got)
	}
	// Still 30 tokens over: 15 s of debt at 120 a minute.
	if ok, wait := a.Admit(t0); ok || wait != 15*time.Second {
		t.Errorf("token debt after the reload: ok %v, retry after %v; want 15s", ok, wait)
	}
	// Two of three requests taken before the reload: one left.
	t1 := t0.Add(15 * time.Second) // the token debt is paid; 0.25 request refilled
	if ok, _ := a.Admit(t1); !ok {
		t.Error("the third request refused")
	}
	if ok, _ := a.Admit(t1); ok {
		t.Error("the request bucket was reset by the reload")
	}
	if !a.Acquire() || a.Acquire() {
		t.Errorf("in flight after the reload: %d", a.Usage().InFlight)
	}
}
