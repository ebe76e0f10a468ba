package balancer

import "time"

// Observed is what a gateway saw of one node, accumulated by the route's
// Builder from table to table with exponential decay (half-life
// ObserveHalfLife), so a weigher can tell how fast the node really is:
// Completed / Busy is the requests per second it completes when fully
// busy. A node's first table starts it at zero.
type Observed struct {
	// Completed counts the node's requests that ended with
	// Endpoint.Complete.
	Completed float64
	// Busy is the node's busy time in seconds: its reported utilisation
	// times the time between builds, counted (with the completions) only
	// while its load sample is fresh (younger than observeExpiry) and not
	// idle.
	Busy float64
}

// ObserveHalfLife is the half-life of Observed: long enough that a node
// finishing one request every ten seconds still shows a rate, short enough
// that a noisy neighbour (minutes) shows within a few rebuilds.
const ObserveHalfLife = 30 * time.Second

// maxObserveGap is the longest time between two builds that still counts:
// after a longer pause the utilisation sample says little about the gap.
const maxObserveGap = time.Minute

// observeExpiry is how old a load sample may be to count as busy time.
const observeExpiry = 10 * time.Second

// observe folds the completions since the last build and dt seconds of
// busy time into e's decayed observations and returns them. It belongs to
// the builder's goroutine.
func (e *Endpoint) observe(n *Node, now time.Time, dt, decay float64) Observed {
	done := e.live.done.Load()
	k := float64(done - e.lastDone)
	e.lastDone = done
	u, ok := utilisation(n)
	if dt == 0 || !ok || u == 0 || !fresh(n, now, observeExpiry) {
		// Nothing to weigh the completions against: keep what is known.
		// An idle sample counts as nothing too, or a node whose agent
		// cannot see its utilisation (it reports 0) would seem to complete
		// requests in no time at all.
		return e.obs
	}
	e.obs.Completed = e.obs.Completed*decay + k
	e.obs.Busy = e.obs.Busy*decay + u*dt
	return e.obs
}
