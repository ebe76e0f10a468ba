// Package engines describes the inference engines Switchyard fronts: how a
// request reaches them (paths, how the model is named, the streaming
// format), what their health and readiness probes mean, and how to turn
// their Prometheus metrics into a common [Load].
//
// Each engine lives in its own subpackage (vllm, sglang, tgi, triton,
// mindie, rayserve) and registers an [Adapter] from init; callers blank
// import the subpackages they need (or engines/all) and call [Lookup].
// Accelerator telemetry lives under engines/telemetry, card performance
// coefficients under engines/capacity, the agent-side sampling under
// engines/probe and a simulated engine under engines/sim.
//
// This package and its subpackages import nothing of Switchyard outside
// engines/. They never panic on malformed input: every parser returns an
// error that names the line or field and the problem, and a value the
// source did not report is [Unknown], never a zero that looks valid.
//
// The registry is safe for concurrent use; registration happens in init
// only.
package engines
