package agent

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/probe"
)

// This file is the agent's only use of engines: ProbeSource (load) and
// EngineReadiness (readiness).

// ProbeSource is a LoadSource backed by the engines probe (engine metrics,
// accelerator and CPU telemetry): utilisation is the mean accelerator
// utilisation (else the CPU's), or with UtilFromKVCache the engine's
// KV-cache usage; concurrency is the engine's running requests; running,
// waiting, KV-cache usage, the prefix-cache counters and hit rate and the
// LoRA adapters are the engine's (issue 14). A quantity the probe could
// not read is sent as unknown, never as 0 (issue 13); known values outside
// their range are clamped, and adapter names beyond the limits dropped
// (discovery.AdaptersOf), so a misreporting exporter cannot get the
// heartbeat rejected. Anomalies (values engines dropped, values clamped
// here) are logged through Anomalies.
type ProbeSource struct {
	Prober *probe.Prober
	// UtilFromKVCache reports the engine's KV-cache usage as utilisation.
	// For LLM engines with continuous batching it tracks load better than
	// accelerator busy time, which reads near 100 % whenever any sequence
	// runs; it is also the only engine-side signal on a host whose
	// accelerators the agent cannot see (simulated engines, containers
	// without the vendor tools). When the engine does not report it, the
	// accelerator or CPU utilisation is used.
	UtilFromKVCache bool
	// Ready, when set, is asked for the engine's readiness on every beat,
	// alongside the sample (see EngineReadiness). Nil: readiness unknown.
	// An engine whose metrics say it sleeps (engines.SleepAsleep) is
	// reported asleep either way.
	Ready func(ctx context.Context) discovery.Readiness
	// Anomalies, when set, logs each sample's anomalies (engine values
	// out of range, values clamped here); nil: not logged.
	Anomalies *AnomalyLog
}

var _ LoadSource = ProbeSource{}

// Load implements LoadSource.
func (s ProbeSource) Load(ctx context.Context) (discovery.Load, error) {
	var ready discovery.Readiness
	var wg sync.WaitGroup
	if s.Ready != nil {
		wg.Go(func() { ready = s.Ready(ctx) })
	}
	r, err := s.Prober.Sample(ctx)
	wg.Wait()
	if err != nil {
		return discovery.Load{}, fmt.Errorf("agent: probe: %w", err)
	}
	l := discovery.Load{
		Utilisation: s.value("utilisation", r.Utilization, 0, 1),
		Concurrency: s.value("concurrency", r.Concurrency, 0, discovery.MaxConcurrency),
		Readiness:   ready,
		SampledAt:   time.Now(),
	}
	if r.Engine != nil && r.Engine.Load != nil {
		el := r.Engine.Load
		for _, n := range el.Notes {
			s.Anomalies.engineNote(el.Engine, n)
		}
		l.Running = s.value("running", el.Running, 0, discovery.MaxQueue)
		l.Waiting = s.value("waiting", el.Waiting, 0, discovery.MaxQueue)
		l.KVCacheUsage = s.value("kv_cache_usage", el.KVCache, 0, 1)
		l.PrefixCacheHits = s.value("prefix_cache_hits", el.PrefixCacheHits, 0, discovery.MaxCounter)
		l.PrefixCacheQueries = s.value("prefix_cache_queries", el.PrefixCacheQueries, 0, discovery.MaxCounter)
		l.PrefixCacheHitRate = s.value("prefix_cache_hit_rate", el.PrefixCacheHitRate, 0, 1)
		if el.LoRA != nil {
			l.LoRA, _ = discovery.AdaptersOf(el.LoRA.Running, el.LoRA.Waiting)
		}
		if s.UtilFromKVCache && l.KVCacheUsage.IsKnown() {
			l.Utilisation = l.KVCacheUsage
		}
		// A sleeping engine (vLLM's sleep mode) still answers its
		// health probe and reports no load: only its metrics say it
		// serves nothing until woken (as discovery/kubernetes maps it).
		if el.Sleep == engines.SleepAsleep {
			l.Readiness = discovery.ReadinessAsleep
		}
	}
	return l, nil
}

// value converts an engines value, clamping a known one into [lo, hi]
// (an anomaly, logged as field).
func (s ProbeSource) value(field string, v engines.Value, lo, hi float64) discovery.Value {
	f, ok := v.Get()
	if !ok || math.IsNaN(f) {
		return discovery.Unknown
	}
	c := math.Min(math.Max(f, lo), hi)
	if c != f {
		s.Anomalies.clamped(field, f, lo, hi)
	}
	return discovery.Known(c)
}

// EngineReadiness returns a readiness probe for an engine (an engines
// adapter name, e.g. "vllm", "mindie") serving at baseURL (e.g.
// "http://127.0.0.1:8000"): each call GETs the engine's live and ready
// paths (engines.ProbeHealth) within ctx and maps the answer: ready →
// ready; MindIE's 503 while alive → busy; alive but not ready, or no answer
// → not_ready, an engine that was serving only after downAfter probes in
// a row found it down. client nil uses a client without keep-alives shared by
// nothing else.
//
// The engine's sleep state is not probed here: ProbeSource reads it from
// the metrics and reports asleep whatever the health probe says.
func EngineReadiness(engine, baseURL string, client *http.Client) (func(ctx context.Context) discovery.Readiness, error) {
	a, err := engines.Lookup(engine)
	if err != nil {
		return nil, fmt.Errorf("agent: readiness: %w", err)
	}
	spec := a.Spec()
	if spec.ReadyPath == "" {
		return nil, fmt.Errorf("agent: readiness: engine %q has no ready probe", engine)
	}
	if !strings.HasPrefix(baseURL, "http://") && !strings.HasPrefix(baseURL, "https://") {
		return nil, fmt.Errorf("agent: readiness: engine URL %q must start with http:// or https://", baseURL)
	}
	baseURL = strings.TrimSuffix(baseURL, "/")
	if client == nil {
		client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	var mu sync.Mutex
	last, downs := discovery.ReadinessNotReady, 0
	return func(ctx context.Context) discovery.Readiness {
		h := engines.ProbeHealth(ctx, client, baseURL, spec)
		mu.Lock()
		defer mu.Unlock()
		switch h {
		case engines.HealthReady:
			last, downs = discovery.ReadinessReady, 0
		case engines.HealthBusy:
			last, downs = discovery.ReadinessBusy, 0
		case engines.HealthNotReady: // the engine says so: at once
			last, downs = discovery.ReadinessNotReady, 0
		default: // no answer, or a server error
			downs++
			if downs >= downAfter {
				last = discovery.ReadinessNotReady
			}
		}
		return last
	}, nil
}

// downAfter is how many probes in a row must find an engine that was
// serving down (no answer, or a server error) before it is reported not
// ready: one probe lost on a loaded host is not an outage. Kubernetes'
// readiness probes default to 3 failures; the gateway's own health checks
// and outlier detection see a hung engine within seconds anyway, and a
// dead agent's heartbeats stop.
const downAfter = 2

// EngineURLs returns where to probe an engine on this host by default:
// the base URL of its live and ready probes and its metrics URL, given
// the engine's serving address (host:port; "" if not known).
//
// An engine with a management listener of its own (Spec.HealthPort set)
// is probed there, by Spec.HealthBase and Spec.MetricsURL: MindIE at
// https://127.0.0.2:1026 (managementIpAddress, managementPort, HTTPS on
// by default) with metrics at https://127.0.0.2:1027/metrics. Any other
// engine answers its probes on the serving address
// (http://servingAddr; "" without one) and has no default metrics URL.
func EngineURLs(engine, servingAddr string) (healthBase, metricsURL string, err error) {
	a, err := engines.Lookup(engine)
	if err != nil {
		return "", "", fmt.Errorf("agent: engine URLs: %w", err)
	}
	spec := a.Spec()
	if spec.HealthPort != 0 {
		return spec.HealthBase(""), spec.MetricsURL(""), nil
	}
	if servingAddr == "" {
		return "", "", nil
	}
	return "http://" + servingAddr, "", nil
}
