// Package probe samples what a node agent reports in its heartbeat: the
// engine's load (from its metrics URL), the accelerators found (running
// nvidia-smi / npu-smi / amd-smi (else rocm-smi) when on PATH, or scraping DCGM /
// npu-exporter URLs), CPU utilisation from /proc/stat and the cgroup
// quota, and from those a capacity (cards × coefficient, or CPU cores ×
// the core coefficient), a utilisation 0..1 and a concurrency.
//
// Use a Prober (New, then Sample once per heartbeat) so CPU utilisation is
// measured between consecutive samples without sleeping; the package
// function Sample is the one-shot form. ParseSource reads one saved
// output instead of a live source (`switchyard agent probe --source KIND
// --file PATH`).
//
// A source that fails becomes a warning in the Report, not an error: the
// agent should still heartbeat. Sample returns an error only for a bad
// Config or a cancelled context. A Prober is safe for concurrent use.
package probe
