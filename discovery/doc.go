// Package discovery holds Switchyard's service-discovery wire types and the
// gateway-side client that keeps a live view of every application's online
// list.
//
// It owns:
//   - the wire types: [Node], [Heartbeat], [OnlineList] and [Delta], their
//     validation ([Heartbeat.Validate]) and their encodings (JSON for people
//     and tools, a compact binary framing for the heartbeat stream and the
//     Resource peer stream, see wire.go, versioned by its preamble:
//     [Version], [Handshake]);
//   - [Load], whose quantities are [Value]s (unknown is distinct from 0 on
//     every encoding; an old sender's missing fields read as unknown),
//     whose [Readiness] is the engine's own (ready, not_ready, busy,
//     asleep), and which carries what prefix and LoRA affinity use: the
//     engine's prefix-cache counters and hit rate and its [Adapters];
//   - the rejection counters ([Rejections]) that the Resource service exposes;
//   - [Client], which watches apps on a tier of Resource instances (over
//     HTTP, TLS or mTLS), applies versioned deltas, acknowledges applied
//     versions, fails over between instances and never empties its view
//     because Resource is unreachable; it logs an outage once at warning
//     level and its recovery at info, and exports its staleness through
//     the meter it is given ([ClientConfig].Meter).
//
// The Resource server lives in discovery/resource and the node agent in
// discovery/agent. This package must never import gateway, balancer or
// bench; only discovery/agent may import engines (to read telemetry).
//
// Everything here is safe for concurrent use unless a type's doc says
// otherwise. Wire values ([Node], [OnlineList], [Delta]) handed out by the
// client are immutable snapshots: callers must not modify them.
//
// The design follows WeChat Starlink (see docs/ and issue 3): nodes beat once
// a second, Resource instances share the changes they hear so each instance
// serves the whole list, and gateways watch the list and swap their tables.
package discovery
