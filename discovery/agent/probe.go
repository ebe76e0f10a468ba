package agent

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/engines/probe"
)

// ProbeSource is a LoadSource backed by the engines probe (engine metrics,
// accelerator and CPU telemetry): utilisation is the mean accelerator
// utilisation (else the CPU's), or with UtilFromKVCache the engine's
// KV-cache usage; concurrency is the engine's running requests.
// Unknown values are sent as 0; values outside their range are clamped, so
// a misreporting exporter cannot get the heartbeat rejected.
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
}

var _ LoadSource = ProbeSource{}

// Load implements LoadSource.
func (s ProbeSource) Load(ctx context.Context) (discovery.Load, error) {
	r, err := s.Prober.Sample(ctx)
	if err != nil {
		return discovery.Load{}, fmt.Errorf("agent: probe: %w", err)
	}
	l := discovery.Load{
		Utilisation: clamp(r.Utilization.Or(0), 0, 1),
		Concurrency: clamp(r.Concurrency.Or(0), 0, discovery.MaxConcurrency),
		SampledAt:   time.Now(),
	}
	if r.Engine != nil && r.Engine.Load != nil {
		el := r.Engine.Load
		l.Running = int(clamp(el.Running.Or(0), 0, discovery.MaxQueue))
		l.Waiting = int(clamp(el.Waiting.Or(0), 0, discovery.MaxQueue))
		l.KVCacheUsage = clamp(el.KVCache.Or(0), 0, 1)
		if kv, ok := el.KVCache.Get(); ok && s.UtilFromKVCache {
			l.Utilisation = clamp(kv, 0, 1)
		}
	}
	return l, nil
}

func clamp(v, lo, hi float64) float64 {
	if math.IsNaN(v) {
		return lo
	}
	return math.Min(math.Max(v, lo), hi)
}
