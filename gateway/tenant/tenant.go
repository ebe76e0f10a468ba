package tenant

import (
	"math"
	"sync/atomic"
	"time"
)

// window is the period of the per-minute limits.
const window = time.Minute

// Tenant is one tenant: its name, its current limits and the state of
// those limits. A Tenant lives as long as its name is in the key file; a
// reload swaps its limits and keeps its state.
//
// Safe for concurrent use; must not be copied.
type Tenant struct {
	_ noCopy

	// Immutable.
	name  string
	epoch time.Time // times are kept as nanoseconds since epoch

	// Atomic.
	rules atomic.Pointer[rules]
	// reqTAT and tokTAT are the GCRA "theoretical arrival times" of the
	// request and token buckets, in nanoseconds since epoch: the bucket is
	// full when TAT ≤ now, and each request (token) moves TAT on by the
	// emission interval 1 min / limit.
	reqTAT, tokTAT atomic.Int64
	inFlight       atomic.Int64

	admitted, refusedRequests, refusedTokens, refusedConcurrency atomic.Uint64
	tokens                                                       atomic.Uint64
}

// rules is a tenant's limits in the form the hot path uses.
type rules struct {
	Limits
	reqInterval, tokInterval int64 // nanoseconds per request or token; 0: unlimited
	models                   map[string]struct{}
}

func newRules(l Limits) *rules {
	r := &rules{Limits: l}
	if l.RequestsPerMinute > 0 {
		r.reqInterval = max(1, int64(window)/l.RequestsPerMinute)
	}
	if l.TokensPerMinute > 0 {
		r.tokInterval = max(1, int64(window)/l.TokensPerMinute)
	}
	if len(l.Models) > 0 {
		r.models = make(map[string]struct{}, len(l.Models))
		for _, m := range l.Models {
			r.models[m] = struct{}{}
		}
	}
	return r
}

func newTenant(name string, l Limits, now time.Time) *Tenant {
	t := &Tenant{name: name, epoch: now}
	t.rules.Store(newRules(l))
	return t
}

// setLimits replaces the tenant's limits at now (a reload). What the
// tenant has used of each bucket is kept in requests and tokens: a tenant
// that had taken 2 of 2 requests has taken 2 of 3 after the limit grows
// to 3.
func (t *Tenant) setLimits(l Limits, now time.Time) {
	old := t.rules.Load()
	r := newRules(l)
	t.rules.Store(r)
	at := int64(now.Sub(t.epoch))
	rescale(&t.reqTAT, at, old.reqInterval, r.reqInterval)
	rescale(&t.tokTAT, at, old.tokInterval, r.tokInterval)
}

// rescale converts a bucket's debt (TAT beyond at) from one emission
// interval to another; a bucket that was unlimited starts full.
func rescale(tat *atomic.Int64, at, from, to int64) {
	if from == to || to == 0 {
		return
	}
	for {
		old := tat.Load()
		next := at // an unlimited bucket becomes a full one
		if from > 0 {
			if old <= at {
				return // full, and stays full
			}
			next = at + int64(float64(old-at)*float64(to)/float64(from))
		}
		if tat.CompareAndSwap(old, next) {
			return
		}
	}
}

// Name returns the tenant's name, the one logs, metrics and the upstream
// header carry.
func (t *Tenant) Name() string { return t.name }

// Limits returns the tenant's current limits. Models must not be
// modified.
func (t *Tenant) Limits() Limits { return t.rules.Load().Limits }

// Priority returns the tenant's priority class.
func (t *Tenant) Priority() Priority { return t.rules.Load().Priority }

// Admit decides whether the tenant may start a request at now: it is
// refused when its tokens per minute are already spent (Charge took the
// token bucket into debt) or when its requests per minute are; otherwise
// it takes one request from the request bucket. On a refusal retryAfter
// is how long until the refused limit would admit a request (at least
// 1 ms), for a Retry-After header.
//
// Admit does not count requests in flight: see Acquire.
func (t *Tenant) Admit(now time.Time) (ok bool, retryAfter time.Duration) {
	r := t.rules.Load()
	at := int64(now.Sub(t.epoch))
	if r.tokInterval > 0 {
		// Tokens are charged afterwards, so the check only reads: the
		// tenant is over while its debt exceeds a minute's budget.
		if over := t.tokTAT.Load() - at - int64(window); over > 0 {
			t.refusedTokens.Add(1)
			return false, wait(over)
		}
	}
	if r.reqInterval > 0 {
		tolerance := int64(window) - r.reqInterval // a full bucket holds a minute's requests
		for {
			old := t.reqTAT.Load()
			tat := max(old, at)
			if over := tat - at - tolerance; over > 0 {
				t.refusedRequests.Add(1)
				return false, wait(over)
			}
			if t.reqTAT.CompareAndSwap(old, tat+r.reqInterval) {
				break
			}
		}
	}
	t.admitted.Add(1)
	return true, 0
}

func wait(ns int64) time.Duration { return max(time.Duration(ns), time.Millisecond) }

// Charge takes tokens (input + output, from the response's usage) from
// the tenant's token bucket at now. It may leave the bucket in debt; Admit
// then refuses until the debt is repaid. Tokens ≤ 0 are ignored.
func (t *Tenant) Charge(now time.Time, tokens int64) {
	if tokens <= 0 {
		return
	}
	t.tokens.Add(uint64(tokens))
	r := t.rules.Load()
	if r.tokInterval == 0 {
		return
	}
	at := int64(now.Sub(t.epoch))
	cost := tokens * r.tokInterval
	if cost/r.tokInterval != tokens { // overflow: a charge beyond any budget
		cost = int64(window) * 1 << 20
	}
	for {
		old := t.tokTAT.Load()
		next := max(old, at) + cost
		if next < old {
			next = math.MaxInt64 // saturate rather than wrap into credit
		}
		if t.tokTAT.CompareAndSwap(old, next) {
			return
		}
	}
}

// Acquire counts a request in flight; it reports false, counting nothing,
// when the tenant already has MaxConcurrent in flight. Every true must be
// followed by exactly one Release.
func (t *Tenant) Acquire() bool {
	n := t.inFlight.Add(1)
	if limit := t.rules.Load().MaxConcurrent; limit > 0 && n > limit {
		t.inFlight.Add(-1)
		t.refusedConcurrency.Add(1)
		return false
	}
	return true
}

// Release ends a request counted by Acquire.
func (t *Tenant) Release() { t.inFlight.Add(-1) }

// Allows reports whether the tenant may use model: always when it has no
// allowlist.
func (t *Tenant) Allows(model []byte) bool {
	r := t.rules.Load()
	if r.models == nil {
		return true
	}
	_, ok := r.models[string(model)]
	return ok
}

// Usage is a snapshot of a tenant's counters since it first appeared in
// the file.
type Usage struct {
	Admitted uint64 `json:"admitted"`
	// Refused by each limit.
	RefusedRequests    uint64 `json:"refused_requests_per_minute"`
	RefusedTokens      uint64 `json:"refused_tokens_per_minute"`
	RefusedConcurrency uint64 `json:"refused_max_concurrent"`
	// Tokens charged (input + output).
	Tokens   uint64 `json:"tokens"`
	InFlight int64  `json:"in_flight"`
}

// Usage returns the tenant's counters.
func (t *Tenant) Usage() Usage {
	return Usage{
		Admitted:           t.admitted.Load(),
		RefusedRequests:    t.refusedRequests.Load(),
		RefusedTokens:      t.refusedTokens.Load(),
		RefusedConcurrency: t.refusedConcurrency.Load(),
		Tokens:             t.tokens.Load(),
		InFlight:           t.inFlight.Load(),
	}
}

// noCopy makes go vet's copylocks check flag copies (fasthttp's trick).
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
