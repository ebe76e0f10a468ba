package admin

import (
	"cmp"
	"context"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/route"
)

// Weight history defaults: a sample every 5 s for 5 minutes, for at most
// 4096 nodes (about 2 MiB).
const (
	DefaultWeightPeriod  = 5 * time.Second
	DefaultWeightSamples = 60
	DefaultWeightSeries  = 4096
)

// WeightHistory samples every node's table weight every period and keeps
// the last samples per (route, node) for the admin page's sparklines.
//
// It lives here, not in the route's owner goroutine: the request path and
// the table owners stay as they are, and the history follows a node
// across reloads that rebuild its route (it is keyed by route and node
// names). Memory is bounded: a node that is in no table at a sample
// loses its history, and at most maxSeries nodes are followed (the rest
// are counted as untracked).
//
// Run owns the sampling goroutine; Snapshot is safe for concurrent use.
type WeightHistory struct {
	// Immutable after NewWeightHistory.
	routes    func() *route.Set
	period    time.Duration
	samples   int
	maxSeries int

	mu        sync.Mutex // guards the fields below
	series    map[seriesKey]*weightRing
	round     uint64
	last      time.Time
	untracked int
}

type seriesKey struct{ route, node string }

// weightRing holds one node's last samples; all its samples are
// consecutive and end at the history's last sample.
type weightRing struct {
	w    []float64
	next int
	n    int
	seen uint64 // the round that last sampled the node
}

// NewWeightHistory follows the tables of the routing state that routes
// returns (it may return nil before the first one). It takes the first
// sample at once, so the history is never empty while routes exist.
func NewWeightHistory(routes func() *route.Set) *WeightHistory {
	h := newWeightHistory(routes, DefaultWeightPeriod, DefaultWeightSamples, DefaultWeightSeries)
	h.sample(time.Now())
	return h
}

func newWeightHistory(routes func() *route.Set, period time.Duration, samples, maxSeries int) *WeightHistory {
	return &WeightHistory{routes: routes, period: period, samples: samples, maxSeries: maxSeries, series: map[seriesKey]*weightRing{}}
}

// Run samples every period until ctx ends.
func (h *WeightHistory) Run(ctx context.Context) {
	tick := time.NewTicker(h.period)
	defer tick.Stop()
	h.run(ctx, tick.C)
}

// run samples at each tick until ctx ends.
func (h *WeightHistory) run(ctx context.Context, tick <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick:
			h.sample(now)
		}
	}
}

// sample records each node's current weight and forgets nodes that left.
func (h *WeightHistory) sample(now time.Time) {
	st := h.routes()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.round++
	h.last = now
	h.untracked = 0
	if st != nil {
		for _, r := range st.Routes() {
			t := r.Table()
			for i := 0; t != nil && i < t.Len(); i++ {
				k := seriesKey{r.Name(), t.Endpoint(i).ID()}
				s := h.series[k]
				if s == nil {
					if len(h.series) >= h.maxSeries {
						h.untracked++
						continue
					}
					s = &weightRing{w: make([]float64, h.samples)}
					h.series[k] = s
				}
				if s.seen == h.round { // the same id twice in one table: keep the first
					continue
				}
				s.w[s.next] = round4(t.Weight(i))
				s.next = (s.next + 1) % len(s.w)
				s.n = min(s.n+1, len(s.w))
				s.seen = h.round
			}
		}
	}
	for k, s := range h.series {
		if s.seen != h.round {
			delete(h.series, k)
		}
	}
}

// round4 keeps four significant digits: enough for a sparkline, and the
// JSON stays short.
func round4(v float64) float64 {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 4, 64), 64)
	return r
}

// weightsJSON is GET /admin/weights: per node, its weights at the last
// samples, oldest first; every series ends at LastSample, one sample per
// Period.
type weightsJSON struct {
	Period     string         `json:"period"`
	Samples    int            `json:"samples"` // the most a series holds
	LastSample *time.Time     `json:"last_sample"`
	Untracked  int            `json:"untracked"` // nodes beyond the history's bound
	Series     []weightSeries `json:"series"`
}

type weightSeries struct {
	Route   string    `json:"route"`
	Node    string    `json:"node"`
	Weights []float64 `json:"weights"`
}

// snapshot returns the history, sorted by route and node.
func (h *WeightHistory) snapshot() weightsJSON {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := weightsJSON{Period: dur(h.period), Samples: h.samples, Untracked: h.untracked, Series: make([]weightSeries, 0, len(h.series))}
	if !h.last.IsZero() {
		l := h.last
		out.LastSample = &l
	}
	for k, s := range h.series {
		ws := weightSeries{Route: k.route, Node: k.node, Weights: make([]float64, 0, s.n)}
		for i := s.n; i > 0; i-- {
			ws.Weights = append(ws.Weights, s.w[(s.next-i+len(s.w))%len(s.w)])
		}
		out.Series = append(out.Series, ws)
	}
	slices.SortFunc(out.Series, func(a, b weightSeries) int {
		return cmp.Or(cmp.Compare(a.Route, b.Route), cmp.Compare(a.Node, b.Node))
	})
	return out
}

func (g *server) adminWeights(w http.ResponseWriter, _ *http.Request) {
	if g.Weights == nil {
		writeJSON(w, http.StatusOK, weightsJSON{Period: dur(DefaultWeightPeriod), Series: []weightSeries{}})
		return
	}
	writeJSON(w, http.StatusOK, g.Weights.snapshot())
}
