package engines

// Load is an engine's instantaneous load as read from its metrics.
//
// How ranks and models combine (the same rule for every dialect, see
// Dialect):
//   - Running and Waiting are request counts summed over every engine
//     the scrape covers: data-parallel engines (vLLM's `engine` label,
//     SGLang's `dp_rank`), Ray Serve replicas and models. Series that
//     repeat the same batch (SGLang's TP/PP/EP ranks with
//     --enable-metrics-for-all-schedulers) count once.
//   - KVCache is the KV-cache usage 0..1: the MEAN over the engines of
//     one model, then the MAXIMUM over models. Mean, because the engines
//     of one server sit behind that server's own load balancer (vLLM's
//     DP coordinator, SGLang's DP controller), which sends the next
//     request to the emptier engine: the server as a whole is as full as
//     its engines on average, which is also what vLLM itself logs for a
//     data-parallel server (AggregatedLoggingStatLogger in
//     vllm/v1/metrics/loggers.py averages kv_cache_usage over engines).
//     Max over models, because each model has its own cache and the
//     fullest one is the one that stops admitting requests.
//
// A field the engine does not report is Unknown. A reported value out of
// its range is an anomaly: it is dropped (the field reads Unknown unless
// other ranks give valid values), Anomalies counts it and Notes says what
// it was; the rest of the scrape is kept. Per field:
//   - counts (Running, Waiting, prefix-cache counters): negative, +Inf or
//     above MaxCount → dropped;
//   - fractions (KVCache, PrefixCacheHitRate): outside 0..1 by more than
//     1e-6 → dropped (a KV of 1.2 says the exporter is wrong, e.g. a
//     percentage; clamping it to 1 would make the node look full and
//     starve it, while Unknown lets the balancer fall back to its
//     default). Within 1e-6 of the range the value is clamped silently
//     (float noise).
type Load struct {
	// Engine is the dialect name that produced the load ("vllm", ...).
	Engine string `json:"engine"`
	// Source says where the numbers came from: "metrics" (Prometheus
	// text) or the path of a JSON fallback such as "/v1/loads".
	Source string `json:"source,omitempty"`
	// Models lists the model names seen in the metrics' labels, sorted.
	Models []string `json:"models,omitempty"`
	// Running is the number of requests being processed (in the batch).
	Running Value `json:"running"`
	// Waiting is the number of requests queued and not yet scheduled.
	Waiting Value `json:"waiting"`
	// KVCache is the KV-cache usage fraction 0..1.
	KVCache Value `json:"kv_cache_usage"`
	// Sleep is the engine's sleep state (vLLM sleep mode). A sleeping
	// engine reports running=waiting=0 but serves nothing: it is not
	// idle, it is unavailable until woken.
	Sleep SleepState `json:"sleep,omitempty"`
	// PrefixCacheHits and PrefixCacheQueries are the engine's lifetime
	// prefix-cache counters (vLLM: tokens; summed over engines). They are
	// counters: take the difference of two samples for a recent rate.
	PrefixCacheHits    Value `json:"prefix_cache_hits"`
	PrefixCacheQueries Value `json:"prefix_cache_queries"`
	// PrefixCacheHitRate is a hit rate 0..1 the engine computes itself
	// (SGLang cache_hit_rate, MindIE npu_prefix_cache_hit_rate,
	// trtllm-serve kv_cache_hit_rate); mean over engines.
	PrefixCacheHitRate Value `json:"prefix_cache_hit_rate"`
	// LoRA is the adapters state (vLLM lora_requests_info); nil when the
	// engine does not report one. Copies of a Load share it: read-only.
	LoRA *LoRA `json:"lora,omitempty"`
	// Anomalies counts values dropped as out of range; Notes describes
	// them (at most MaxNotes).
	Anomalies int      `json:"anomalies,omitempty"`
	Notes     []string `json:"notes,omitempty"`
}

// MaxCount is the largest request count or counter value accepted; a
// larger one is an anomaly.
const MaxCount = 1e15

// MaxNotes caps Load.Notes.
const MaxNotes = 8

// SleepState is an engine's sleep state.
type SleepState string

const (
	// SleepUnknown: the engine does not report a sleep state.
	SleepUnknown SleepState = ""
	// SleepAwake: every engine reports awake.
	SleepAwake SleepState = "awake"
	// SleepAsleep: at least one engine reports it is sleeping (vLLM puts
	// all engines of a server to sleep together).
	SleepAsleep SleepState = "asleep"
)

// LoRA is the LoRA adapters state an engine reports.
type LoRA struct {
	// Running lists the adapters loaded and serving, Waiting those with
	// queued requests; both sorted as reported.
	Running []string `json:"running"`
	Waiting []string `json:"waiting"`
	// Max is the number of adapters that fit in a batch (max_lora).
	Max Value `json:"max"`
}

// Concurrency returns Running+Waiting when both are known, Running when
// only it is known, and Unknown otherwise.
func (l Load) Concurrency() Value {
	r, ok := l.Running.Get()
	if !ok {
		return Unknown
	}
	if w, ok := l.Waiting.Get(); ok {
		return Known(r + w)
	}
	return Known(r)
}

// note records one anomaly.
func (l *Load) note(s string) {
	l.Anomalies++
	if len(l.Notes) < MaxNotes {
		l.Notes = append(l.Notes, s)
	}
}
