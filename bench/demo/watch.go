package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// adminWatch polls the gateway's /admin/nodes and records, per node, the
// first time it was seen not eligible (not ready, excluded, or gone).
type adminWatch struct {
	url    string
	route  string
	client *http.Client

	mu         sync.Mutex
	ineligible map[string]time.Time // first time seen ineligible
	seen       map[string]bool
}

func newAdminWatch(addr, route string) *adminWatch {
	return &adminWatch{
		url:        "http://" + addr + "/admin/nodes",
		route:      route,
		client:     &http.Client{Timeout: 2 * time.Second},
		ineligible: make(map[string]time.Time),
		seen:       make(map[string]bool),
	}
}

type adminNode struct {
	Route    string   `json:"route"`
	ID       string   `json:"id"`
	State    string   `json:"state"`
	Excluded []string `json:"excluded"`
}

// eligible returns the ids of the route's eligible nodes.
func (w *adminWatch) eligible(ctx context.Context) (map[string]bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin nodes: status %d", resp.StatusCode)
	}
	var out struct {
		Nodes []adminNode `json:"nodes"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("admin nodes: %w", err)
	}
	ok := make(map[string]bool)
	for _, n := range out.Nodes {
		if n.Route == w.route && n.State == "ready" && len(n.Excluded) == 0 {
			ok[n.ID] = true
		}
	}
	return ok, nil
}

// waitEligible waits until n nodes are eligible.
func (w *adminWatch) waitEligible(ctx context.Context, n int, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	got := 0
	for {
		if ok, err := w.eligible(ctx); err == nil {
			got = len(ok)
			if got >= n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d nodes eligible after %v", got, n, limit)
		case <-tick.C:
		}
	}
}

// run polls until ctx ends.
func (w *adminWatch) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		ok, err := w.eligible(ctx)
		now := time.Now()
		if err == nil {
			w.mu.Lock()
			for id := range ok {
				w.seen[id] = true
			}
			for id := range w.seen {
				if !ok[id] {
					if _, done := w.ineligible[id]; !done {
						w.ineligible[id] = now
					}
				}
			}
			w.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ejectedAt returns when id was first seen ineligible.
func (w *adminWatch) ejectedAt(id string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.ineligible[id]
	return t, ok
}

// utilSampler samples every engine's utilisation (running/slots).
type utilSampler struct {
	nodes []*node
	start time.Time

	mu   sync.Mutex
	at   []float64   // seconds since start
	util [][]float64 // util[node][sample]
}

func newUtilSampler(nodes []*node, start time.Time) *utilSampler {
	return &utilSampler{nodes: nodes, start: start, util: make([][]float64, len(nodes))}
}

func (s *utilSampler) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		s.at = append(s.at, time.Since(s.start).Seconds())
		for i, n := range s.nodes {
			st := n.engine.Stats()
			u := float64(st.Running) / float64(max(st.Slots, 1))
			s.util[i] = append(s.util[i], u)
		}
		s.mu.Unlock()
	}
}

// snapshot returns copies of the sample times and each node's samples.
func (s *utilSampler) snapshot() (at []float64, util [][]float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	util = make([][]float64, len(s.util))
	for i, u := range s.util {
		util[i] = slices.Clone(u)
	}
	return slices.Clone(s.at), util
}

// mean returns node i's mean utilisation over samples taken in [from, to)
// seconds.
func (s *utilSampler) mean(i int, from, to float64) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum float64
	var k int
	for j, at := range s.at {
		if at >= from && at < to {
			sum += s.util[i][j]
			k++
		}
	}
	if k == 0 {
		return 0
	}
	return sum / float64(k)
}
