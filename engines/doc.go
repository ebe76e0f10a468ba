// Package engines describes the inference engines Switchyard fronts: how a
// request reaches them (paths, how the model is named, the streaming
// format), what their health and readiness probes mean, and how to turn
// their metrics into a common [Load].
//
// Every engine is a [Dialect]: one entry of the table in dialects.go
// saying, as data, which metric families hold running and waiting
// requests, KV-cache usage, prefix-cache and LoRA state and sleep state
// (with the alternative names seen across versions and wrappers such as
// Ray), which labels name the model and which only repeat one batch, how
// ranks combine, what the probes mean and where a JSON fallback lives.
// One parser reads them all ([Dialect.ParseLoad]); a new engine is a
// table entry plus fixtures. The dialects register themselves as
// [Adapter]s at init; callers use [Lookup] (or [LookupDialect]). The
// per-engine packages (vllm, sglang, tgi, triton, mindie, rayserve) keep
// Name, Spec and ParseLoad for existing callers; engines/all remains for
// callers that blank-import it.
//
// Accelerator telemetry lives under engines/telemetry, card performance
// coefficients under engines/capacity, the agent-side sampling under
// engines/probe and a simulated engine under engines/sim.
//
// This package and its subpackages import nothing of Switchyard outside
// engines/. They never panic on malformed input: every parser returns an
// error that names the line or field and the problem, and a value the
// source did not report is [Unknown], never a zero that looks valid. One
// value out of range does not discard a scrape: it is dropped, counted in
// [Load].Anomalies and described in [Load].Notes (see [Load] for the rule
// per field).
//
// The registry and the dialect table are safe for concurrent use;
// registration happens in init only.
package engines
