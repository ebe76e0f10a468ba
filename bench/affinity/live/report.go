package live

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/bench/chart"
	"github.com/switchyard-dev/switchyard/bench/machine"
)

// Summary compares the policies over every repetition.
type Summary struct {
	// HitRateUp: the hit rate was higher with affinity on in every
	// repetition; TTFTDown: its TTFT p50 was lower in every repetition.
	HitRateUp, TTFTDown bool
	// Mean over repetitions, per policy.
	HitRate, TTFTP50, TTFTP99 map[string]float64
	// Lost requests over every run.
	Lost int
}

// Summary returns the comparison of r's runs.
func (r *Report) Summary() Summary {
	s := Summary{HitRateUp: true, TTFTDown: true, HitRate: map[string]float64{}, TTFTP50: map[string]float64{}, TTFTP99: map[string]float64{}}
	n := map[string]float64{}
	byRep := map[int]map[string]*Result{}
	for i := range r.Runs {
		x := &r.Runs[i]
		s.Lost += x.Lost
		s.HitRate[x.Policy] += x.HitRate
		s.TTFTP50[x.Policy] += x.TTFTP50
		s.TTFTP99[x.Policy] += x.TTFTP99
		n[x.Policy]++
		if byRep[x.Rep] == nil {
			byRep[x.Rep] = map[string]*Result{}
		}
		byRep[x.Rep][x.Policy] = x
	}
	for p, k := range n {
		s.HitRate[p] /= k
		s.TTFTP50[p] /= k
		s.TTFTP99[p] /= k
	}
	for _, m := range byRep {
		on, off := m[PolicyDefault], m[PolicyLoadOnly]
		if on == nil || off == nil {
			s.HitRateUp, s.TTFTDown = false, false
			continue
		}
		s.HitRateUp = s.HitRateUp && on.HitRate > off.HitRate
		s.TTFTDown = s.TTFTDown && on.TTFTP50 < off.TTFTP50
	}
	return s
}

// Table is the runs as a Markdown table.
func (r *Report) Table() string {
	var b strings.Builder
	b.WriteString("| run | policy | sent | measured | TTFT p50 s | p90 s | p99 s | interactive p50 s | interactive p99 s | prefix hit rate | lost |\n")
	b.WriteString("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for i, x := range r.Runs {
		pol := x.Policy
		if pol == PolicyDefault {
			pol = "**default** (affinity on)"
		} else {
			pol = "load-only (affinity off)"
		}
		fmt.Fprintf(&b, "| %d | %s | %d | %d | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %d |\n",
			i+1, pol, x.Sent, x.Measured, x.TTFTP50, x.TTFTP90, x.TTFTP99, x.ITTFTP50, x.ITTFTP99, x.HitRate, x.Lost)
	}
	return b.String()
}

// Write writes affinity-live.md, affinity-live.json and the charts to dir.
func (r *Report) Write(dir, command string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	charts, err := r.charts(dir)
	if err != nil {
		return err
	}
	cfg := &r.Config
	s := r.Summary()
	var b strings.Builder
	b.WriteString("# Prefix affinity live: the real gateway with simulated engines (issue 14)\n\n")
	fmt.Fprintf(&b, "Produced by `%s` on %s: %d runs in %s.\n\n", command, time.Now().UTC().Format("2006-01-02 15:04 UTC"), len(r.Runs), r.Elapsed.Round(time.Second))
	fmt.Fprintf(&b, "The multi-turn chat workload of [affinity.md](affinity.md), scaled down, through a `switchyard gateway` process to %d simulated vLLM engines, with the route's affinity on (what ships) and off (load-only), at the same offered load (%.2f of the fleet's decode capacity: %.1f requests a second), each repetition with its own seed for both policies, interleaved.\n\n",
		r.nodes(), cfg.Load, cfg.Load*r.Capacity)
	verdict := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	b.WriteString("| check | holds | numbers (mean over repetitions) |\n| --- | --- | --- |\n")
	fmt.Fprintf(&b, "| prefix hit rate higher with affinity, every repetition | %s | %.3f vs %.3f |\n", verdict(s.HitRateUp), s.HitRate[PolicyDefault], s.HitRate[PolicyLoadOnly])
	fmt.Fprintf(&b, "| TTFT p50 lower with affinity, every repetition | %s | %.3f s vs %.3f s (%.2f×); p99 %.3f s vs %.3f s |\n", verdict(s.TTFTDown),
		s.TTFTP50[PolicyDefault], s.TTFTP50[PolicyLoadOnly], s.TTFTP50[PolicyDefault]/s.TTFTP50[PolicyLoadOnly], s.TTFTP99[PolicyDefault], s.TTFTP99[PolicyLoadOnly])
	fmt.Fprintf(&b, "| no request lost | %s | %d lost |\n\n", verdict(s.Lost == 0), s.Lost)
	b.WriteString("## Runs\n\n")
	fmt.Fprintf(&b, "TTFT: on the client, from sending the request to the first SSE event with content, over the requests started in the %s measured window (after %s of warm-up). Prefix hit rate: the engines' own vllm:prefix_cache_hits over vllm:prefix_cache_queries (tokens), read from their /metrics at the start and the end of the window. Lost: requests of the whole run without a complete stream.\n\n", cfg.Measure, cfg.Warmup)
	b.WriteString(r.Table())
	b.WriteString("\n" + floorNote + "\n")
	b.WriteString("\nShare of measured requests / TTFT p50 s per card:\n\n")
	for i, x := range r.Runs {
		fmt.Fprintf(&b, "- run %d (%s):", i+1, x.Policy)
		for _, c := range x.PerCard {
			fmt.Fprintf(&b, " %s %.2f / %.3f;", c.Card, c.Share, c.TTFTP50)
		}
		if len(x.Failures) > 0 {
			b.WriteString(" lost:")
			keys := make([]string, 0, len(x.Failures))
			for k := range x.Failures {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, " %d × %s;", x.Failures[k], k)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for _, c := range charts {
		fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(c, ".png"), c)
	}
	b.WriteString("## Setup\n\n")
	b.WriteString("Per run, from nothing: a Resource instance; per engine a simulated vLLM (`engines/sim`: continuous batching with a slot limit and a queue, a prefix cache of 16-token blocks named by chained hashes of the prompt text, LRU, the assistant's reply cached with the prompt so the next turn hits it, prefill time = fixed part + cost per uncached prompt token, then a fixed time per output token) and a real node agent reading the engine's /metrics (running, waiting, KV usage, prefix-cache counters) and beating to Resource every second; a `switchyard gateway` process (its own binary, `--config`) with one route over the app from Resource: default policy, weight period 1 s, affinity on or `affinity: {off: true}`. Everything on 127.0.0.1; the client (Go net/http, keep-alive) in the benchmark's process.\n\n")
	b.WriteString("| card | engines | slots | queue | prefill fixed | prefill per uncached token | per output token | prefix cache (blocks of 16 tokens) |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, k := range cfg.Cards {
		fmt.Fprintf(&b, "| %s | %d | %d | 1024 | %s | %s | %s | %d |\n", k.Name, k.Count, k.Slots, k.Prefill, k.PrefillPerToken, k.PerToken, k.CacheBlocks)
	}
	w := &cfg.Workload
	fams := make([]string, len(w.Families))
	for i, f := range w.Families {
		fams[i] = fmt.Sprintf("%d tokens (%.0f %%)", f.Tokens, 100*f.Weight)
	}
	fmt.Fprintf(&b, "\nWorkload (bench/affinity's `Workload`, text of 4 characters a token, the sim's tokenizer rule): Poisson arrivals of conversations and batch jobs; %d shared system prompts (%s); 1 + geometric turns with mean %.0f (%.2f per conversation after the context cap); user messages lognormal with mean %.1f tokens; responses lognormal with mean %.0f tokens (at most %d; the simulation's 214.5 scaled down with the decode time so that a run takes a minute); think time lognormal with mean %s (the simulation's 20 s, scaled down); a batch tenant with %.0f %% of requests (shared %d-token instruction, documents of %.0f tokens, %.0f output tokens on average, header X-Switchyard-Priority: batch). Each turn repeats the conversation so far with the assistant's streamed answers. Turns due after the arrivals stop are not sent. Offered load: %.2f × Σ slots / (per-token time × mean output tokens = %.1f) = %.1f requests a second.\n\n",
		len(w.Families), strings.Join(fams, ", "), w.MeanTurns, r.Turns, w.UserTokens, w.OutTokens, w.MaxOut, w.Think, 100*w.BatchShare, w.BatchPrefix, w.BatchDoc, w.BatchOut, cfg.Load, r.MeanOut, cfg.Load*r.Capacity)
	b.WriteString("## Machine\n\n")
	b.WriteString(machine.Describe())
	if err := os.WriteFile(filepath.Join(dir, "affinity-live.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	js, err := json.MarshalIndent(struct {
		Command string `json:"command"`
		*Report
	}{command, r}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "affinity-live.json"), append(js, '\n'), 0o644)
}

// floorNote explains the TTFT floor of the simulated engines and what the
// small fleet does to load-only's hit rate.
const floorNote = "The simulated engine emits its first token one per-token time after its prefill (the floor near 58 ms on the CDF: 10 ms + 48 ms); vLLM's first token comes out of the prefill itself. The differences between the policies are the same in seconds either way; as ratios they would be larger on vLLM. Against bench/affinity's simulation (hit rate 0.877 against 0.708 on 240 nodes), load-only loses less here: with 6 engines, of which the two H100s take two thirds of the traffic, a follow-up turn lands on the engine that holds its conversation by chance far more often than among 240."

func (r *Report) nodes() int {
	n := 0
	for _, k := range r.Config.Cards {
		n += k.Count
	}
	return n
}

// charts draws the TTFT CDFs of every run and the hit rate and TTFT p50
// per repetition.
func (r *Report) charts(dir string) ([]string, error) {
	cdf := chart.Lines{Title: "Time to first token, live (CDF of measured requests)", XLabel: "TTFT, seconds (log)", YLabel: "fraction of requests", LogX: true, YMin: 0, YMax: 1}
	for _, x := range r.Runs {
		if len(x.ttfts) == 0 {
			continue
		}
		s := chart.Series{Name: fmt.Sprintf("%s, rep %d", x.Policy, x.Rep), Colour: chart.Colour(0), Dashed: x.Rep > 1}
		if x.Policy == PolicyLoadOnly {
			s.Colour = chart.Colour(1)
		}
		step := max(1, len(x.ttfts)/400)
		for i := 0; i < len(x.ttfts); i += step {
			s.X = append(s.X, math.Max(x.ttfts[i], 1e-3))
			s.Y = append(s.Y, float64(i+1)/float64(len(x.ttfts)))
		}
		s.X = append(s.X, math.Max(x.ttfts[len(x.ttfts)-1], 1e-3))
		s.Y = append(s.Y, 1)
		cdf.Series = append(cdf.Series, s)
	}
	var files []string
	if len(cdf.Series) > 0 {
		if err := cdf.Save(filepath.Join(dir, "affinity-live-ttft-cdf.png")); err != nil {
			return nil, err
		}
		files = append(files, "affinity-live-ttft-cdf.png")
	}
	var cats []string
	hit := []chart.Bars{{Name: "default (affinity on)"}, {Name: "load-only"}}
	p50 := []chart.Bars{{Name: "default (affinity on)"}, {Name: "load-only"}}
	for _, x := range r.Runs {
		k := 0
		if x.Policy == PolicyLoadOnly {
			k = 1
		} else {
			cats = append(cats, fmt.Sprintf("rep %d", x.Rep))
		}
		hit[k].Values = append(hit[k].Values, x.HitRate)
		p50[k].Values = append(p50[k].Values, x.TTFTP50*1000)
	}
	if len(cats) > 0 && len(hit[0].Values) == len(hit[1].Values) {
		for _, c := range []struct {
			file string
			bc   chart.BarChart
		}{
			{"affinity-live-hit-rate.png", chart.BarChart{Title: "Prefix-cache hit rate (engines' counters), live", YLabel: "hits / queries", Categories: cats, Series: hit, ValueFormat: "%.2f"}},
			{"affinity-live-ttft-p50.png", chart.BarChart{Title: "TTFT p50, live", YLabel: "milliseconds", Categories: cats, Series: p50, ValueFormat: "%.0f"}},
		} {
			if err := c.bc.Save(filepath.Join(dir, c.file)); err != nil {
				return nil, err
			}
			files = append(files, c.file)
		}
	}
	return files, nil
}
