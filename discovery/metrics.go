package discovery

import (
	"fmt"
	"io"
	"sync/atomic"
)

// Rejections counts rejected inputs by reason. The zero value is ready; it is
// safe for concurrent use and must not be copied after first use.
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

// WritePrometheus writes the counters in the Prometheus text exposition
// format as metric name with a "reason" label.
func (c *Rejections) WritePrometheus(w io.Writer, name, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
	for i := range c.n {
		fmt.Fprintf(w, "%s{reason=%q} %d\n", name, Reason(i).String(), c.n[i].Load())
	}
}
