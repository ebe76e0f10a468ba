package live

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/switchyard-dev/switchyard/bench/affinity"
	"github.com/switchyard-dev/switchyard/bench/gwproc"
)

// Result is one run: one policy, one repetition.
type Result struct {
	Policy string `json:"policy"`
	Rep    int    `json:"rep"`
	Seed   uint64 `json:"seed"`
	// Offered is the offered request rate (a second); Sent the requests
	// sent in all, Measured those started in the measured window.
	Offered  float64 `json:"offered_rps"`
	Sent     int     `json:"sent"`
	Measured int     `json:"measured"`
	// Lost counts requests (of the whole run) without a complete answer,
	// by reason in Failures.
	Lost     int            `json:"lost"`
	Failures map[string]int `json:"failures,omitempty"`
	// TTFT quantiles over the measured requests, seconds: all of them and
	// the interactive (chat) ones.
	TTFTP50  float64 `json:"ttft_p50_s"`
	TTFTP90  float64 `json:"ttft_p90_s"`
	TTFTP99  float64 `json:"ttft_p99_s"`
	ITTFTP50 float64 `json:"interactive_ttft_p50_s"`
	ITTFTP99 float64 `json:"interactive_ttft_p99_s"`
	// HitRate is the engines' prefix-cache hits over queries (tokens) in
	// the measured window, from their /metrics.
	HitRate float64 `json:"prefix_hit_rate"`
	// PerCard is the share of measured requests each card served and its
	// TTFT p50.
	PerCard []CardShare `json:"per_card"`
	// ttfts are the measured TTFTs, sorted (for the CDF chart).
	ttfts []float64
}

// CardShare is one card's part of a run.
type CardShare struct {
	Card    string  `json:"card"`
	Share   float64 `json:"share"`
	TTFTP50 float64 `json:"ttft_p50_s"`
}

// Report is a live benchmark's outcome.
type Report struct {
	Config   Config        `json:"-"`
	Capacity float64       `json:"capacity_rps"` // decode capacity, requests a second
	MeanOut  float64       `json:"mean_output_tokens"`
	Turns    float64       `json:"mean_turns"`
	Runs     []Result      `json:"runs"`
	Elapsed  time.Duration `json:"-"`
}

// Run runs every repetition of both policies, interleaved.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logw := cfg.Log
	if logw == nil {
		logw = io.Discard
	}
	rep := &Report{Config: cfg}
	rep.Turns, rep.MeanOut = workloadMeans(&cfg.Workload)
	for _, k := range cfg.Cards {
		rep.Capacity += float64(k.Count*k.Slots) / (k.PerToken.Seconds() * rep.MeanOut)
	}
	start := time.Now()
	for i := range cfg.Reps {
		for _, pol := range []string{PolicyDefault, PolicyLoadOnly} {
			r, err := runOne(ctx, &cfg, pol, i, cfg.Seed+uint64(i), rep)
			if err != nil {
				return nil, fmt.Errorf("live: %s, repetition %d: %w", pol, i+1, err)
			}
			fmt.Fprintf(logw, "live: %-9s rep %d: %d measured of %d sent, TTFT p50 %.3fs p99 %.3fs, hit rate %.3f, lost %d\n",
				pol, i+1, r.Measured, r.Sent, r.TTFTP50, r.TTFTP99, r.HitRate, r.Lost)
			rep.Runs = append(rep.Runs, r)
		}
	}
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// workloadMeans estimates the mean turns of a conversation and the mean
// output tokens of a request (BatchShare of them batch jobs) from 20,000
// draws of each.
func workloadMeans(w *affinity.Workload) (turns, out float64) {
	rng := rand.New(rand.NewPCG(0x5eed, 1))
	const n = 20000
	var nTurns, chatOut, batchOut float64
	for i := range n {
		for _, t := range affinity.DrawConversation(rng, w, uint64(i)).Turns {
			chatOut += float64(t.Out)
			nTurns++
		}
		batchOut += float64(affinity.DrawBatchJob(rng, w).Out)
	}
	return nTurns / n, (1-w.BatchShare)*chatOut/nTurns + w.BatchShare*batchOut/n
}

// runOne is one run on a fresh fleet and gateway.
func runOne(ctx context.Context, cfg *Config, policy string, rep int, seed uint64, r *Report) (Result, error) {
	res := Result{Policy: policy, Rep: rep + 1, Seed: seed, Offered: cfg.Load * r.Capacity, Failures: map[string]int{}}
	f, err := startFleet(ctx, cfg.Cards)
	if err != nil {
		return res, err
	}
	defer f.stop()
	g, err := startGateway(ctx, cfg, f.resource, policy == PolicyDefault)
	if err != nil {
		return res, err
	}
	defer g.Stop()
	if err := waitNodes(ctx, g, len(f.nodes)); err != nil {
		return res, err
	}
	d := newDriver(cfg, "http://"+g.Client+"/v1/chat/completions", res.Offered, r.Turns)
	mc := &http.Client{Timeout: 5 * time.Second}
	var h0, q0 float64
	ready := make(chan error, 1)
	// The engines' counters at the start and the end of the window.
	go func() {
		t := time.NewTimer(cfg.Warmup)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			ready <- ctx.Err()
			return
		}
		var err error
		h0, q0, err = f.prefixCounts(ctx, mc)
		ready <- err
	}()
	endCounts := make(chan [2]float64, 1)
	go func() {
		t := time.NewTimer(cfg.Warmup + cfg.Measure)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			endCounts <- [2]float64{math.NaN(), math.NaN()}
			return
		}
		h, q, err := f.prefixCounts(ctx, mc)
		if err != nil {
			h, q = math.NaN(), math.NaN()
		}
		endCounts <- [2]float64{h, q}
	}()
	d.run(ctx, seed)
	if err := <-ready; err != nil {
		return res, err
	}
	end := <-endCounts
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.HitRate = (end[0] - h0) / (end[1] - q0)
	summarise(&res, d.records(), f)
	return res, nil
}

// waitNodes waits until the gateway's route lists n nodes.
func waitNodes(ctx context.Context, g *gwproc.Proc, n int) error {
	c := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		if resp, err := c.Get("http://" + g.Admin + "/admin/nodes"); err == nil {
			var v struct {
				Nodes []struct {
					State string `json:"state"`
				} `json:"nodes"`
			}
			err := json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			ready := 0
			for _, nd := range v.Nodes {
				if nd.State == "ready" {
					ready++
				}
			}
			if err == nil && ready == n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("the gateway did not list the %d engines within 30s", n)
		case <-tick.C:
		}
	}
}

// summarise fills res from the run's records.
func summarise(res *Result, recs []record, f *fleet) {
	var all, inter []float64
	cardOf := map[string]string{}
	for i, n := range f.nodes {
		cardOf[n.ID()] = f.cards[i]
	}
	byCard := map[string][]float64{}
	for _, r := range recs {
		res.Sent++
		if !r.ok {
			res.Lost++
			res.Failures[r.fail]++
			continue
		}
		if !r.measured {
			continue
		}
		res.Measured++
		s := r.ttft.Seconds()
		all = append(all, s)
		if !r.batch {
			inter = append(inter, s)
		}
		byCard[cardOf[r.node]] = append(byCard[cardOf[r.node]], s)
	}
	slices.Sort(all)
	slices.Sort(inter)
	res.ttfts = all
	res.TTFTP50, res.TTFTP90, res.TTFTP99 = quantile(all, 0.5), quantile(all, 0.9), quantile(all, 0.99)
	res.ITTFTP50, res.ITTFTP99 = quantile(inter, 0.5), quantile(inter, 0.99)
	cards := make([]string, 0, len(byCard))
	for k := range byCard {
		cards = append(cards, k)
	}
	sort.Strings(cards)
	for _, k := range cards {
		v := byCard[k]
		slices.Sort(v)
		res.PerCard = append(res.PerCard, CardShare{Card: k, Share: float64(len(v)) / float64(max(res.Measured, 1)), TTFTP50: quantile(v, 0.5)})
	}
}

// quantile of sorted values (nearest rank); NaN when empty.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
