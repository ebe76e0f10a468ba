// Package agent is Switchyard's node agent library: it heartbeats one
// node's identity, engine addresses, capacity and load to the Resource tier
// about once a second, fails over between Resource instances, and drains the
// node gracefully (for Kubernetes PreStop hooks and SIGTERM).
//
// The load comes from a [LoadSource]: a [StaticLoad], or [ProbeSource] over
// the engines probes, which sends what the engine did not report as
// unknown (never 0) and, with [EngineReadiness], the engine's readiness from
// its live and ready probes (MindIE's 503 while alive reads as busy), or
// asleep when the engine's metrics say it sleeps; [AnomalyLog] logs the
// sample's out-of-range values (rate-limited; the agent has no metrics
// registry). Any
// other implementation of the one-method interface may be set in
// Config.Load (cmd/switchyard/agent.go chooses the source). probe.go is the
// package's only use of engines; [EngineURLs] says where an engine is
// probed by default (MindIE: its HTTPS management listener).
//
// The agent speaks the newest wire version and falls back to version 1 with
// an older Resource. When Resource refuses a heartbeat's incarnation (stale
// after a clock step back, or too far ahead of its clock), the agent adopts
// the incarnation the Reject names and beats again at once.
//
// This package may import engines (to read telemetry) but never gateway,
// balancer or bench. An [Agent] is safe for concurrent use: Run beats in one
// goroutine while Drain, Undrain and State may be called from others.
package agent
