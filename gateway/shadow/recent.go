package shadow

import (
	"slices"
	"sync"
)

// RecentSize is how many difference reports a Mirror keeps for the admin
// API (Mirror.Recent).
const RecentSize = 20

// recent keeps the last RecentSize difference reports: a ring written by
// the workers (after a comparison, off the request path) and read by the
// admin API. Its memory is bounded: each report's field values are
// already cut to Log.MaxValueBytes.
type recent struct {
	mu   sync.Mutex // guards the fields below
	ring [RecentSize]Report
	next int // where the next report goes
	n    int // reports held, <= RecentSize
}

// add keeps a copy of rep (the report hook may change rep afterwards).
func (r *recent) add(rep *Report) {
	cp := *rep
	cp.Fields = slices.Clone(rep.Fields)
	r.mu.Lock()
	r.ring[r.next] = cp
	r.next = (r.next + 1) % RecentSize
	r.n = min(r.n+1, RecentSize)
	r.mu.Unlock()
}

// list returns the reports held, oldest first.
func (r *recent) list() []Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Report, 0, r.n)
	for i := r.n; i > 0; i-- {
		out = append(out, r.ring[(r.next-i+RecentSize)%RecentSize])
	}
	return out
}

// Recent returns the last RecentSize reports that showed a difference
// (Report.Different), oldest first, whether or not the difference log is
// on. The reports are copies; their Fields must not be modified.
func (m *Mirror) Recent() []Report { return m.recent.list() }
