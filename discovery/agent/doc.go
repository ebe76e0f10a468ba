// Package agent is Switchyard's node agent library: it heartbeats one
// node's identity, engine addresses, capacity and load to the Resource tier
// about once a second, fails over between Resource instances, and drains the
// node gracefully (for Kubernetes PreStop hooks and SIGTERM).
//
// The load comes from a [LoadSource]. Until the engines' probes land, the
// agent uses a [StaticLoad]; an engines-backed source only has to implement
// the one-method LoadSource interface and be set in Config.Load (see
// cmd/switchyard/agent.go, where the source is chosen).
//
// This package may import engines (to read telemetry) but never gateway,
// balancer or bench. An [Agent] is safe for concurrent use: Run beats in one
// goroutine while Drain, Undrain and State may be called from others.
package agent
