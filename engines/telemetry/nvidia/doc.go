// Package nvidia parses NVIDIA GPU telemetry: the output of
// `nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]` and the
// DCGM exporter's Prometheus metrics.
//
// nvidia-smi: with a header (--format=csv) the field names come from it
// and values may carry units ("100 %", "81559 MiB"); with noheader the
// caller must pass the field list it queried. "[N/A]" and other bracketed
// answers are Unknown.
//
// DCGM: utilisation is DCGM_FI_PROF_GR_ENGINE_ACTIVE (a ratio 0..1, the
// profiling metric, closer to real SM occupancy) when present, else
// DCGM_FI_DEV_GPU_UTIL (percent). DCGM's "blank" sentinels (values near
// 2^31 or 2^63) are Unknown.
//
// Stateless and safe for concurrent use.
package nvidia
