package engines

import (
	"fmt"
	"io"
	"sort"
)

// A Dialect describes, as data, how one engine family exposes its load:
// which metric families hold which quantity (with alternatives across
// versions and wrappers), which labels name the model and which only
// repeat the same batch, how ranks combine, what its readiness probes
// mean, and where a JSON fallback lives. One parser (Dialect.ParseLoad)
// reads every dialect, so a new engine is a table entry in dialects.go
// plus fixtures.
//
// Dialect values in the table are immutable after init and safe for
// concurrent use.
type Dialect struct {
	// Name is the registry key ("vllm"); Aliases are other keys.
	Name    string
	Aliases []string
	// Spec is the request protocol, probes and endpoints.
	Spec Spec
	// ModelLabels are label names that carry the model name.
	ModelLabels []string
	// Running, Waiting and KVCache are the load quantities. Running and
	// Waiting are request counts (summed), KVCache a fraction 0..1
	// (combined per Ranks.KV, then max over models).
	Running Signal
	Waiting Signal
	KVCache Signal
	// PrefixHits and PrefixQueries are prefix-cache counters (summed);
	// PrefixHitRate is a hit-rate gauge 0..1 (combined like KVCache).
	PrefixHits    Signal
	PrefixQueries Signal
	PrefixHitRate Signal
	// Sleep reads a sleep-state gauge (vLLM); nil when the engine has none.
	Sleep *SleepRule
	// LoRA reads adapter state from an info gauge's labels; nil when none.
	LoRA *LoRARule
	// Ranks says which series repeat one batch and how fractions combine.
	Ranks Ranks
	// Fallback is a JSON load endpoint read when the metrics endpoint is
	// not enabled (404); nil when the engine has none.
	Fallback *JSONLoads
}

// Signal lists the sources of one quantity in preference order; the
// first source with at least one sample wins. That is how renamed
// metrics (vLLM's gpu_cache_usage_perc → kv_cache_usage_perc), wrapped
// ones (Ray's ray_vllm: and sanitised ray_vllm_ names) and backends of
// one server (Triton's TensorRT-LLM metrics over its generic queue
// gauge) are accepted.
type Signal []Source

// Source is one metric family, optionally filtered by label values and
// optionally divided by another source.
type Source struct {
	// Family is the metric family name as exposed.
	Family string
	// Where keeps only samples whose labels have these values.
	Where map[string]string
	// Over, when set, makes the value Family/Over, pairing samples whose
	// other labels (all but the Where keys) are equal; a pair with a
	// denominator ≤ 0 gives no value.
	Over *Source
}

// Ranks says how the series of one quantity combine.
type Ranks struct {
	// Same lists labels whose values only tell apart ranks that report
	// the same batch (SGLang's tp_rank with
	// --enable-metrics-for-all-schedulers). Series that differ only in
	// these labels count once: the one with the lowest values is kept.
	Same []string
	// KV combines the fractions of one model's engines; the zero value
	// is Mean (see Load).
	KV Combine
}

// Combine is how fractions of several engines combine.
type Combine int

const (
	// Mean: the engines' average (the default).
	Mean Combine = iota
	// Max: the fullest engine.
	Max
)

// SleepRule reads a sleep-state gauge with one series per state, the
// state in StateLabel (vLLM: vllm:engine_sleep_state{sleep_state=...}).
// An engine whose Awake series reads 0 is asleep.
type SleepRule struct {
	Families   []string
	StateLabel string
	Awake      string
}

// LoRARule reads adapter state from the labels of an info gauge whose
// value is the time it was last updated (vLLM vllm:lora_requests_info):
// the series with the largest value is the current one. The adapter
// lists are comma-separated label values.
type LoRARule struct {
	Families []string
	Running  string
	Waiting  string
	Max      string
}

// JSONLoads describes a JSON load endpoint: an object whose List key
// holds one object per rank with numeric Running, Waiting, KVCache and
// HitRate keys (SGLang's GET /v1/loads). Counts are summed over ranks,
// fractions averaged.
type JSONLoads struct {
	Path    string
	List    string
	Running string
	Waiting string
	KVCache string
	HitRate string
}

// FallbackLoader is an optional Adapter capability: a second, JSON
// endpoint that gives the load when the metrics endpoint is disabled.
// Scrape uses it on a 404 from the metrics URL.
type FallbackLoader interface {
	// FallbackPath is the endpoint's path ("" when there is none).
	FallbackPath() string
	// ParseFallback reads one answer of that endpoint; errors as for
	// Adapter.ParseLoad.
	ParseFallback(r io.Reader) (Load, error)
}

// dialectAdapter registers a Dialect as an Adapter.
type dialectAdapter struct{ d *Dialect }

var (
	_ Adapter        = dialectAdapter{}
	_ FallbackLoader = dialectAdapter{}
)

func (a dialectAdapter) Name() string                        { return a.d.Name }
func (a dialectAdapter) Spec() Spec                          { return a.d.Spec }
func (a dialectAdapter) ParseLoad(r io.Reader) (Load, error) { return a.d.ParseLoad(r) }
func (a dialectAdapter) FallbackPath() string {
	if a.d.Fallback == nil {
		return ""
	}
	return a.d.Fallback.Path
}
func (a dialectAdapter) ParseFallback(r io.Reader) (Load, error) { return a.d.ParseFallback(r) }

// Dialects returns the built-in dialects, sorted by name. The returned
// values must not be modified.
func Dialects() []*Dialect {
	out := make([]*Dialect, len(dialects))
	copy(out, dialects)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupDialect returns the built-in dialect registered under name or an
// alias. The error wraps ErrUnknownEngine (also for an adapter that was
// registered but is not a Dialect).
func LookupDialect(name string) (*Dialect, error) {
	a, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	da, ok := a.(dialectAdapter)
	if !ok {
		return nil, fmt.Errorf("engines: %q: %w: not a built-in dialect", name, ErrUnknownEngine)
	}
	return da.d, nil
}

// MustDialect is LookupDialect for package-level initialisation of the
// per-engine packages; it panics on an unknown name, a programming error.
func MustDialect(name string) *Dialect {
	d, err := LookupDialect(name)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return d
}

func init() {
	for _, d := range dialects {
		Register(dialectAdapter{d}, d.Aliases...)
	}
}
