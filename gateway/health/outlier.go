package health

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
)

// Outlier detection constants.
const (
	// statsHalfLife is the half-life of the answers' decayed counts and
	// times: recent enough to follow a node that turns slow, long enough
	// to hold more than a second's answers.
	statsHalfLife = 10 * time.Second
	// minLatencySamples is the decayed answers a node needs before its
	// mean time to first byte counts, its own or as a reference.
	minLatencySamples = 3
)

// nodeState is the checker's loop's view of one node. Loop only.
type nodeState struct {
	ep     *balancer.Endpoint
	node   *upstream.Node
	id     string
	engine string
	target *target
	attrs  nodeAttrs
	ready  bool
	gone   bool // left the route (or changed target); results are dropped

	// Active health checks.
	next      time.Time // next probe
	probing   bool
	failures  int // in a row
	successes int // in a row
	unhealthy bool
	none      string // why the node has no health endpoint; "" if it has
	lastProbe string

	// Outlier detection: decayed answers.
	okW, failW   float64 // successes and failures
	ttfbW, ttfbN float64 // summed time to first byte of the successes (s), and their count
	silent       time.Duration
	waiting      int64
	quietFrom    time.Time // silence counts from here at the earliest
	ejected      bool
	until        time.Time
	ejections    int       // ejections not yet forgiven (the multiplier)
	forgiveAt    time.Time // when the next one is forgiven
	held         bool      // wanted out, kept as the last pickable node
	wasOut       bool      // the bit was set; a recovery is logged
	capped       string    // an outlier kept by max_ejection_percent, why
	lastMean     time.Duration

	healthDetail             string // why the health check holds it failing
	ejectReason, ejectDetail string // why outlier detection ejected it
}

// reason is why the node is out, the health check first.
func (st *nodeState) reason() (reason, detail string) {
	if st.unhealthy {
		return reasonHealth, st.healthDetail
	}
	return st.ejectReason, st.ejectDetail
}

// mean is the node's decayed mean time to first byte; ok is false with
// fewer than minLatencySamples answers.
func (st *nodeState) mean() (time.Duration, bool) {
	if st.ttfbN < minLatencySamples {
		return 0, false
	}
	return time.Duration(st.ttfbW / st.ttfbN * float64(time.Second)), true
}

// out reports whether the checker wants the node out.
func (st *nodeState) out() bool { return st.unhealthy || st.ejected }

// evaluate runs outlier detection once: it folds what the forwarding
// core saw since the last run into each node's decayed counts, ends
// ejections that are over, and ejects the outliers the caps allow.
func (c *Checker) evaluate(now time.Time) {
	dt := now.Sub(c.lastEval)
	c.lastEval = now
	decay := math.Exp2(-dt.Seconds() / statsHalfLife.Seconds())
	for _, st := range c.order {
		s := st.node.TakeFirstByte(now, st.ep.InFlight())
		st.okW = st.okW*decay + float64(s.OK)
		st.failW = st.failW*decay + float64(s.Failed)
		st.ttfbW = st.ttfbW*decay + s.SumOK.Seconds()
		st.ttfbN = st.ttfbN*decay + float64(s.OK)
		st.waiting = s.Waiting
		st.silent = min(s.Silent, max(now.Sub(st.quietFrom), 0))
		st.lastMean, _ = st.mean()
	}
	if !c.detect {
		c.publish()
		return
	}
	for _, st := range c.order {
		switch {
		case st.ejected && !now.Before(st.until):
			st.ejected = false
			st.forgiveAt = now.Add(c.oc.BaseEjectionTime)
			c.recovered(st, now, "ejection over")
		case !st.ejected && st.ejections > 0 && !now.Before(st.forgiveAt):
			st.ejections--
			st.forgiveAt = now.Add(c.oc.BaseEjectionTime)
		}
	}
	wasCapped := make(map[*nodeState]bool)
	for _, st := range c.order {
		if st.capped != "" {
			wasCapped[st] = true
			st.capped = ""
		}
	}
	for _, o := range c.outliers() {
		c.eject(o, now, wasCapped[o.st])
	}
	for _, st := range c.order {
		if st.ready && st.out() && st.held {
			c.apply(st, now, "", "") // a held node goes out once another can take its place
		}
	}
	c.publish()
}

// outlier is one node found to be an outlier, and why.
type outlier struct {
	st       *nodeState
	reason   string
	detail   string
	severity float64 // how far past the threshold; the worst go first
}

// outliers finds the ready nodes that are outliers now, worst first.
func (c *Checker) outliers() []outlier {
	var found []outlier
	floor := c.oc.LatencyFloor
	// Latency: each node against the median of the other nodes that
	// answer (enough answers, not silent themselves).
	var refs []time.Duration
	for _, st := range c.order {
		if !st.ready || st.out() {
			continue
		}
		refs = refs[:0]
		for _, o := range c.order {
			if o == st || !o.ready || o.out() || o.silent > floor {
				continue
			}
			if m, ok := o.mean(); ok {
				refs = append(refs, m)
			}
		}
		if len(refs) == 0 {
			continue
		}
		ref := median(refs)
		limit := max(floor, time.Duration(c.oc.LatencyFactor*float64(ref)))
		m, ok := st.mean()
		var what string
		var eff time.Duration
		switch {
		case st.waiting > 0 && st.silent > limit && st.silent >= m:
			eff, what = st.silent, fmt.Sprintf("silent for %v with %d requests waiting", st.silent.Round(time.Millisecond), st.waiting)
		case ok && m > limit:
			eff, what = m, fmt.Sprintf("mean time to first byte %v", m.Round(time.Millisecond))
		default:
			continue
		}
		found = append(found, outlier{st: st, reason: reasonLatency, severity: float64(eff) / float64(limit),
			detail: fmt.Sprintf("%s; the other nodes' median %v, limit %v", what, ref.Round(time.Millisecond), limit.Round(time.Millisecond))})
	}
	// Success rate (Envoy's): enough nodes with enough requests.
	var rates []float64
	for _, st := range c.order {
		if st.ready && !st.out() && st.okW+st.failW >= float64(c.oc.SuccessRateRequestVolume) {
			rates = append(rates, st.okW/(st.okW+st.failW))
		}
	}
	if len(rates) >= c.oc.SuccessRateMinHosts {
		mean, sd := meanStdev(rates)
		limit := mean - c.oc.SuccessRateStdevFactor*sd
		for _, st := range c.order {
			v := st.okW + st.failW
			if !st.ready || st.out() || v < float64(c.oc.SuccessRateRequestVolume) {
				continue
			}
			if r := st.okW / v; r < limit && (1-r)*100 >= c.oc.SuccessRateMinFailurePercent {
				found = append(found, outlier{st: st, reason: reasonSuccessRate, severity: 1 + (limit - r),
					detail: fmt.Sprintf("success rate %.1f%%; the route's mean %.1f%%, limit %.1f%%", 100*r, 100*mean, 100*limit)})
			}
		}
	}
	slices.SortStableFunc(found, func(a, b outlier) int {
		switch {
		case a.severity > b.severity:
			return -1
		case a.severity < b.severity:
			return 1
		}
		return 0
	})
	return found
}

// eject takes an outlier out for its ejection time, if the cap allows;
// wasCapped says the cap already kept it at the last evaluation (it is
// logged once).
func (c *Checker) eject(o outlier, now time.Time, wasCapped bool) {
	st := o.st
	if st.out() {
		return // found twice (latency and success rate)
	}
	ready, out := 0, 0
	for _, x := range c.order {
		if x.ready {
			ready++
			if x.out() {
				out++
			}
		}
	}
	limit := max(ready*c.oc.MaxEjectionPercent/100, 1)
	if out+1 > limit || out+1 >= ready {
		st.capped = o.reason + ": " + o.detail
		if !wasCapped {
			c.log.Warn("gateway: outlier kept in: max_ejection_percent reached", "route", c.route, "node", st.id,
				"reason", o.reason, "detail", o.detail, "out", out, "ready", ready, "max_ejection_percent", c.oc.MaxEjectionPercent)
		}
		return
	}
	st.ejections++
	d := min(time.Duration(st.ejections)*c.oc.BaseEjectionTime, c.oc.MaxEjectionTime)
	st.ejected, st.until, st.forgiveAt = true, now.Add(d), now.Add(d+c.oc.BaseEjectionTime)
	st.ejectReason, st.ejectDetail = o.reason, o.detail
	c.apply(st, now, o.reason, o.detail)
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	n := len(d)
	if n%2 == 1 {
		return d[n/2]
	}
	return (d[n/2-1] + d[n/2]) / 2
}

func meanStdev(x []float64) (mean, sd float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		sd += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(sd / float64(len(x)))
}
