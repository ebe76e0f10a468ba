package demo

import (
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/switchyard-dev/switchyard/bench/chart"
)

// MaxEjection is the seed's bound: an evicted node receives no traffic
// within 4 s.
const MaxEjection = 4 * time.Second

// ShareTolerance is how far a node's share of requests may be from its
// share of capacity (relative) while the nodes are equally loaded.
const ShareTolerance = 0.15

// Report is what a demo run measured.
type Report struct {
	Duration  float64      `json:"duration_seconds"`
	OfferedRS float64      `json:"offered_requests_per_second"`
	Nodes     []NodeReport `json:"nodes"`
	// ShareWindow is the interval (seconds from the start) over which
	// shares and utilisation were measured: after warm-up, before the
	// drain, while every node was up.
	ShareWindow [2]float64 `json:"share_window_seconds"`
	SharesOK    bool       `json:"shares_within_tolerance"`
	// DrainAt and CrashAt are when the drain and the kill happened,
	// seconds from the start.
	DrainAt float64 `json:"drain_at_seconds"`
	CrashAt float64 `json:"crash_at_seconds"`

	Drained      Ejection `json:"drained"`
	Crashed      Ejection `json:"crashed"`
	Requests     int      `json:"requests"`
	Succeeded    int      `json:"succeeded"`
	ClientErrors int      `json:"client_errors"`
	// LostInCrash counts requests whose answer had already started on the
	// crashed node when it was killed: no proxy can finish them. They are
	// reported, not counted as client errors (issue 4: no failure for a
	// request that had not yet started).
	LostInCrash  int            `json:"lost_in_crash"`
	ErrorSamples []string       `json:"error_samples,omitempty"`
	Latency      LatencySummary `json:"latency_ms"`
	// Ray is the traffic to the Ray Serve application (its requests and
	// errors are also in Requests, Succeeded and ClientErrors; the
	// per-node shares and Latency are the fleet's alone).
	Ray RayReport `json:"ray"`

	latencies map[string][]float64 // successful requests' ms, per node and "all"
}

// NodeReport is one node's line of the report.
type NodeReport struct {
	ID            string  `json:"id"`
	Profile       string  `json:"profile"`
	Capacity      float64 `json:"capacity"`
	CapacityShare float64 `json:"capacity_share"`
	RequestShare  float64 `json:"request_share"`
	ShareOK       bool    `json:"share_ok"`
	Utilisation   float64 `json:"utilisation"`
	Requests      int     `json:"requests"`
	P50ms         float64 `json:"p50_ms"`
	P99ms         float64 `json:"p99_ms"`
}

// Ejection is how long a node took to leave the gateway's eligible set.
type Ejection struct {
	Node    string  `json:"node"`
	Event   string  `json:"event"`
	Seconds float64 `json:"seconds"` // -1: never
	OK      bool    `json:"ok"`
}

// RayReport is what the Ray Serve application's traffic saw: streaming
// chat completions under its route prefix, routed by the gateway's Ray
// source to the Ray nodes' proxies.
type RayReport struct {
	App         string  `json:"app"`
	RoutePrefix string  `json:"route_prefix"`
	Route       string  `json:"route"`
	Requests    int     `json:"requests"`
	Succeeded   int     `json:"succeeded"`
	Errors      int     `json:"errors"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	// ByProxy counts the successful requests by the Ray node whose proxy
	// answered; Replicas the application's replicas by node.
	ByProxy  map[string]int `json:"requests_by_proxy"`
	Replicas map[string]int `json:"replicas_by_node"`
}

// LatencySummary is the whole run's client latency.
type LatencySummary struct {
	P50      float64 `json:"p50"`
	P99      float64 `json:"p99"`
	ChatTTFT float64 `json:"chat_ttft_p50"`
}

// Passed reports whether the run met the demo's exit criteria: no client
// errors and both ejections within MaxEjection.
func (r *Report) Passed() bool {
	return r.ClientErrors == 0 && r.Drained.OK && r.Crashed.OK
}

func buildReport(cfg Config, nodes []*node, recs []record, util *utilSampler, watch *adminWatch,
	events map[string]time.Time, start time.Time, drainAt time.Duration, end time.Time,
	drainedID, crashedID string, totalCap float64) *Report {
	rep := &Report{Duration: end.Sub(start).Seconds(), Requests: len(recs)}
	crashTime := events["crash"]
	from, to := 2.0, drainAt.Seconds()
	rep.ShareWindow = [2]float64{from, to}
	rep.DrainAt = events["drain"].Sub(start).Seconds()
	rep.CrashAt = crashTime.Sub(start).Seconds()

	inWindow := make(map[string]int)
	windowTotal := 0
	perNode := make(map[string][]float64)
	var all, ttft, rayMs []float64
	rep.Ray = RayReport{App: rayApp, RoutePrefix: rayPrefix, Route: rayRoute, ByProxy: map[string]int{}}
	for _, r := range recs {
		at := r.start.Sub(start).Seconds()
		if r.kind == "ray" {
			rep.Ray.Requests++
			if r.err == "" {
				rep.Succeeded++
				rep.Ray.Succeeded++
				rep.Ray.ByProxy[r.node]++
				rayMs = append(rayMs, float64(r.latency)/1e6)
				continue
			}
			rep.Ray.Errors++
			rep.ClientErrors++
			if len(rep.ErrorSamples) < 10 {
				rep.ErrorSamples = append(rep.ErrorSamples, fmt.Sprintf("%s at %.2fs via Ray proxy %q: %s", r.kind, at, r.node, r.err))
			}
			continue
		}
		if r.err == "" {
			rep.Succeeded++
			ms := float64(r.latency) / 1e6
			all = append(all, ms)
			perNode[r.node] = append(perNode[r.node], ms)
			if r.kind == "chat" {
				ttft = append(ttft, float64(r.ttft)/1e6)
			}
			if at >= from && at < to {
				inWindow[r.node]++
				windowTotal++
			}
			continue
		}
		if r.node == crashedID && r.started && r.start.Before(events["crashed"]) {
			rep.LostInCrash++
			continue
		}
		rep.ClientErrors++
		if len(rep.ErrorSamples) < 10 {
			rep.ErrorSamples = append(rep.ErrorSamples, fmt.Sprintf("%s at %.2fs via %q: %s", r.kind, at, r.node, r.err))
		}
	}
	rep.OfferedRS = float64(len(recs)) / cfg.Duration.Seconds()
	rep.latencies = perNode
	perNode["all"] = all
	rep.Latency = LatencySummary{P50: quantile(all, 0.5), P99: quantile(all, 0.99), ChatTTFT: quantile(ttft, 0.5)}
	rep.Ray.P50ms, rep.Ray.P99ms = quantile(rayMs, 0.5), quantile(rayMs, 0.99)

	rep.SharesOK = true
	for i, n := range nodes {
		nr := NodeReport{
			ID: n.id, Profile: n.profile.Name, Capacity: n.capacity,
			CapacityShare: n.capacity / totalCap,
			Utilisation:   util.mean(i, from, to),
			Requests:      len(perNode[n.id]),
			P50ms:         quantile(perNode[n.id], 0.5),
			P99ms:         quantile(perNode[n.id], 0.99),
		}
		if windowTotal > 0 {
			nr.RequestShare = float64(inWindow[n.id]) / float64(windowTotal)
		}
		nr.ShareOK = math.Abs(nr.RequestShare-nr.CapacityShare) <= ShareTolerance*nr.CapacityShare
		rep.SharesOK = rep.SharesOK && nr.ShareOK
		rep.Nodes = append(rep.Nodes, nr)
	}
	rep.Drained = ejection(watch, drainedID, "drain (SIGTERM to the agent)", events["drain"])
	rep.Crashed = ejection(watch, crashedID, "kill -9 of the agent and engine crash", crashTime)
	return rep
}

func ejection(w *adminWatch, id, event string, at time.Time) Ejection {
	e := Ejection{Node: id, Event: event, Seconds: -1}
	if t, ok := w.ejectedAt(id); ok && !at.IsZero() {
		e.Seconds = math.Max(t.Sub(at).Seconds(), 0)
		e.OK = t.Sub(at) <= MaxEjection
	}
	return e
}

// quantile returns the q-quantile of xs (sorted in place), or NaN.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	sort.Float64s(xs)
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "\nSwitchyard demo: %.1f s, %d requests (%.0f req/s offered), %d succeeded\n\n",
		r.Duration, r.Requests, r.OfferedRS, r.Succeeded)
	fmt.Fprintf(w, "Per node (shares and utilisation over %.0f–%.0f s, all nodes up; latency over the whole run):\n", r.ShareWindow[0], r.ShareWindow[1])
	fmt.Fprintf(w, "  %-8s %-8s %8s %10s %10s %6s %7s %9s %9s %9s\n", "node", "profile", "capacity", "cap share", "req share", "", "util", "requests", "p50 ms", "p99 ms")
	for _, n := range r.Nodes {
		mark := "ok"
		if !n.ShareOK {
			mark = "OFF"
		}
		fmt.Fprintf(w, "  %-8s %-8s %8.2f %9.1f%% %9.1f%% %6s %6.0f%% %9d %9.0f %9.0f\n",
			n.ID, n.Profile, n.Capacity, 100*n.CapacityShare, 100*n.RequestShare, mark, 100*n.Utilisation, n.Requests, n.P50ms, n.P99ms)
	}
	verdict := "every node within"
	if !r.SharesOK {
		verdict = "NOT every node within"
	}
	fmt.Fprintf(w, "  shares: %s %.0f%% of its share of capacity\n\n", verdict, 100*ShareTolerance)
	for _, e := range []Ejection{r.Drained, r.Crashed} {
		status := "ok"
		if !e.OK {
			status = fmt.Sprintf("FAIL (limit %v)", MaxEjection)
		}
		if e.Seconds < 0 {
			fmt.Fprintf(w, "Ejection of %s after %s: never seen  %s\n", e.Node, e.Event, status)
			continue
		}
		fmt.Fprintf(w, "Ejection of %s after %s: %.0f ms  %s\n", e.Node, e.Event, 1000*e.Seconds, status)
	}
	fmt.Fprintf(w, "\nClient latency (fleet): p50 %.0f ms, p99 %.0f ms; chat time to first token p50 %.0f ms\n", r.Latency.P50, r.Latency.P99, r.Latency.ChatTTFT)
	ray := r.Ray
	fmt.Fprintf(w, "\nRay Serve application %s (prefix %s, route %s fed by the Ray dashboard): %d requests, %d errors; p50 %.0f ms, p99 %.0f ms\n",
		ray.App, ray.RoutePrefix, ray.Route, ray.Requests, ray.Errors, ray.P50ms, ray.P99ms)
	for _, n := range slices.Sorted(maps.Keys(ray.Replicas)) {
		share := 0.0
		if ray.Succeeded > 0 {
			share = 100 * float64(ray.ByProxy[n]) / float64(ray.Succeeded)
		}
		noun := "replicas,"
		if ray.Replicas[n] == 1 {
			noun = "replica,"
		}
		fmt.Fprintf(w, "  Ray node %-9s %d %-9s its proxy answered %5.1f%% of them (%d)\n", n, ray.Replicas[n], noun, share, ray.ByProxy[n])
	}
	fmt.Fprintf(w, "Client errors: %d", r.ClientErrors)
	if r.LostInCrash > 0 {
		noun := "answers"
		if r.LostInCrash == 1 {
			noun = "answer"
		}
		fmt.Fprintf(w, " (plus %d %s already streaming from the crashed node when it died, which no proxy can finish)", r.LostInCrash, noun)
	}
	fmt.Fprintln(w)
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(w, "  %s\n", s)
	}
	if r.Passed() {
		fmt.Fprintln(w, "\nPASS: no client errors, both ejections within 4 s")
	} else {
		fmt.Fprintln(w, "\nFAIL: see above")
	}
}

// WriteJSON writes the report as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// SmoothWindow is the width of the trailing rolling mean drawn over each
// node's utilisation samples (taken every 250 ms): wide enough to hide the
// sampling noise of nodes with a few slots, narrow enough that a drained
// or killed node reaches zero within 2 s of the event. Trailing, not
// centred, so that no line moves before the event that moved it.
const SmoothWindow = 2 * time.Second

// Chart files written into Config.OutDir, one per question.
const (
	SharesChart      = "shares.png"      // does each node get its share of capacity?
	UtilisationChart = "utilisation.png" // how busy is each node over time, across the drain and the kill?
	LatencyChart     = "latency-cdf.png" // what latency do clients see, per card class?
)

// charts writes the three charts into dir.
func (r *Report) charts(dir string, util *utilSampler) error {
	if err := r.sharesChart(filepath.Join(dir, SharesChart)); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := r.utilisationChart(filepath.Join(dir, UtilisationChart), util); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := r.latencyChart(filepath.Join(dir, LatencyChart)); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

func (r *Report) sharesChart(path string) error {
	c := chart.BarChart{
		Title: fmt.Sprintf("Share of requests vs share of capacity, per node\nrequests started %.0f–%.0f s, all nodes up; a node passes within ±%.0f %% of its capacity share",
			r.ShareWindow[0], r.ShareWindow[1], 100*ShareTolerance),
		YLabel:      "% of the fleet",
		ValueFormat: "%.1f",
		Series:      []chart.Bars{{Name: "capacity share"}, {Name: "request share"}},
	}
	for _, n := range r.Nodes {
		c.Categories = append(c.Categories, n.ID)
		c.Series[0].Values = append(c.Series[0].Values, 100*n.CapacityShare)
		c.Series[1].Values = append(c.Series[1].Values, 100*n.RequestShare)
	}
	return c.Save(path)
}

func (r *Report) utilisationChart(path string, util *utilSampler) error {
	at, samples := util.snapshot()
	c := chart.Lines{
		Title:  fmt.Sprintf("Per-node utilisation (running / slots), mean over the previous %.0f s", SmoothWindow.Seconds()),
		XLabel: "seconds since the workload started",
		YLabel: "utilisation",
		YMin:   0, YMax: 1,
		Markers: []chart.Marker{
			{X: r.DrainAt, Label: "drain " + r.Drained.Node},
			{X: r.CrashAt, Label: "kill -9 " + r.Crashed.Node},
		},
	}
	window := 1
	if len(at) > 1 {
		step := (at[len(at)-1] - at[0]) / float64(len(at)-1)
		window = max(1, int(math.Round(SmoothWindow.Seconds()/step)))
	}
	classes := profileClasses(r.Nodes)
	seen := make(map[string]bool)
	for i, n := range r.Nodes {
		c.Series = append(c.Series, chart.Series{
			Name:   n.ID,
			X:      at,
			Y:      rollingMean(samples[i], window),
			Colour: chart.Colour(classes[n.Profile]),
			Dashed: seen[n.Profile], // the second node of a class
		})
		seen[n.Profile] = true
	}
	return c.Save(path)
}

func (r *Report) latencyChart(path string) error {
	c := chart.Lines{
		Title:  "Client latency, cumulative distribution, per card class of the serving node",
		XLabel: "latency, ms (log scale)",
		YLabel: "share of successful requests at or below",
		LogX:   true,
		YMin:   0, YMax: 1,
	}
	byClass := make(map[string][]float64)
	for _, n := range r.Nodes {
		byClass[n.Profile] = append(byClass[n.Profile], r.latencies[n.ID]...)
	}
	classes := profileClasses(r.Nodes)
	names := slices.SortedFunc(maps.Keys(classes), func(a, b string) int { return classes[a] - classes[b] })
	for _, name := range names {
		x, y := cdf(byClass[name])
		c.Series = append(c.Series, chart.Series{Name: name, X: x, Y: y, Colour: chart.Colour(classes[name])})
	}
	x, y := cdf(r.latencies["all"])
	c.Series = append(c.Series, chart.Series{Name: "all", X: x, Y: y, Colour: color.RGBA{A: 0xff}, Dashed: true})
	return c.Save(path)
}

// profileClasses numbers the nodes' profiles in their order of appearance.
func profileClasses(nodes []NodeReport) map[string]int {
	out := make(map[string]int)
	for _, n := range nodes {
		if _, ok := out[n.Profile]; !ok {
			out[n.Profile] = len(out)
		}
	}
	return out
}

// rollingMean returns the trailing rolling mean of y over window samples
// (fewer at the start): out[i] is the mean of y[i-window+1 … i].
func rollingMean(y []float64, window int) []float64 {
	window = max(window, 1)
	out := make([]float64, len(y))
	var sum float64
	for i, v := range y {
		sum += v
		if i >= window {
			sum -= y[i-window]
		}
		out[i] = sum / float64(min(i+1, window))
	}
	return out
}

// cdf returns the empirical distribution of xs as points (x, share of xs
// at or below x), thinned to at most 1000 points; xs is sorted in place.
func cdf(xs []float64) (x, y []float64) {
	if len(xs) == 0 {
		return nil, nil
	}
	sort.Float64s(xs)
	n := len(xs)
	step := max(1, n/1000)
	for i := 0; i < n; i += step {
		x = append(x, xs[i])
		y = append(y, float64(i+1)/float64(n))
	}
	if x[len(x)-1] != xs[n-1] || y[len(y)-1] != 1 {
		x, y = append(x, xs[n-1]), append(y, 1)
	}
	return x, y
}
