// Package telemetry holds the accelerator report type that every
// telemetry parser returns: card model, card count, per-card utilisation
// (a fraction 0..1 whatever unit the source used) and memory in bytes.
//
// The parsers live in subpackages, one per vendor: nvidia (nvidia-smi
// --query-gpu CSV, DCGM exporter), ascend (npu-smi info, npu-smi info -t
// usages, npu-exporter), amd (amd-smi metric --json, rocm-smi --json)
// and cpu (/proc/stat, cgroup v2 cpu.max). They never panic on bad input; errors wrap
// engines.ErrMalformed or ErrNoDevices and name the line or field. A
// value the source did not give (N/A, blank sentinels, a zero total) is
// engines.Unknown, never 0.
//
// Everything here is stateless and safe for concurrent use.
package telemetry
