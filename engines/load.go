package engines

// Load is an engine's instantaneous load as read from its metrics.
//
// Running and Waiting are request counts summed over every model the
// engine serves; KVCache is the KV-cache usage as a fraction 0..1 (the
// maximum over models/ranks, because the fullest cache is the one that
// stops admitting requests). A field the engine does not report is
// Unknown.
type Load struct {
	// Engine is the adapter name that produced the load ("vllm", ...).
	Engine string `json:"engine"`
	// Models lists the model names seen in the metrics' labels, sorted.
	Models []string `json:"models,omitempty"`
	// Running is the number of requests being processed (in the batch).
	Running Value `json:"running"`
	// Waiting is the number of requests queued and not yet scheduled.
	Waiting Value `json:"waiting"`
	// KVCache is the KV-cache usage fraction 0..1.
	KVCache Value `json:"kv_cache_usage"`
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
