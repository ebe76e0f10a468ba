package discovery

import "sync/atomic"

// Rejections counts rejected inputs by reason. The zero value is ready; it is
// safe for concurrent use and must not be copied after first use. The
// Resource service exports it as switchyard_resource_rejections_total.
type Rejections struct {
	n [numReasons]atomic.Uint64
}

// Add counts one rejection of reason r.
func (c *Rejections) Add(r Reason) {
	if r < numReasons {
		c.n[r].Add(1)
	}
}

// Count returns the number of rejections of reason r so far.
func (c *Rejections) Count(r Reason) uint64 {
	if r < numReasons {
		return c.n[r].Load()
	}
	return 0
}

// Total returns the number of rejections of every reason.
func (c *Rejections) Total() uint64 {
	var t uint64
	for i := range c.n {
		t += c.n[i].Load()
	}
	return t
}

// Reasons returns every rejection reason, in order.
func Reasons() []Reason {
	out := make([]Reason, numReasons)
	for i := range out {
		out[i] = Reason(i)
	}
	return out
}
