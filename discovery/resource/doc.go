// Package resource is the Resource service: it ingests node heartbeats,
// keeps each application's online list in memory, shares what it hears with
// the other instances of its tier, and serves the list to gateways as
// snapshots, versioned deltas and long-polls.
//
// # Heartbeat transport
//
// Agents keep one persistent TCP (optionally TLS/mTLS) connection and send
// length-prefixed binary frames (discovery/wire.go); the instance answers
// each burst it read with one Ack. The preamble names the wire version
// ("SYD1", or "SYD2\r\n" for unknown-aware loads with readiness); an
// instance serves both, and a version-2 client redials an old instance with
// version 1. We chose a compact framed protocol over
// HTTP/2 streams for throughput: a heartbeat is ~100 bytes and one frame,
// decoded with a handful of allocations and no per-beat request/response
// machinery (HPACK, stream state, flow-control windows, a goroutine per
// stream), so one 2-core instance ingests well over 100,000 beats/s with its
// load generator running beside it. One connection may carry many nodes'
// heartbeats, so a load generator or a host agent simulates many nodes on
// one connection. The same port also speaks HTTP/1.1 (the first four bytes
// tell the framed protocol's magic from an HTTP method): JSON heartbeats
// (POST /v1/heartbeat) for people and tools, the list API, /metrics and
// /healthz.
//
// # Credentials and limits
//
// Everything but /healthz needs a credential (issue 12, item 9): the shared
// token (Config.Token, full access, for quick starts) and/or the scoped
// credentials of a YAML file ([CredentialsFile]): agent credentials bound to
// apps, node id prefixes and address CIDRs, peer and reader credentials,
// identified by a token (stored as its SHA-256) or a verified client
// certificate's SAN; apps carry capacity caps and node limits. The file is
// reloaded when it changes and by [Server.ReloadCredentials]. Nodes per app,
// apps and subscribers per app are bounded (Config.MaxNodesPerApp, MaxApps,
// MaxSubscribersPerApp); empty apps are freed. Every refusal names its
// reason and field (a Reject frame, or 401/403/409/429 with a JSON body), is
// counted by reason and logged, rate limited, without the secret.
//
// # States
//
// ready ⇄ draining → offline when the node says so; ready → suspect after
// SuspectAfter of silence → offline after MissedBeats × Period. An offline
// node is removed from the list; its tombstone orders later reports for
// TombstoneTTL only (issue 12, item 10). An incarnation more than
// MaxClockSkew ahead of the instance's clock is refused, and so is a report
// older than the one applied; both Rejects tell the agent the incarnation to
// adopt, so an agent whose clock stepped back recovers by itself. Draining and offline changes are committed
// and sent to peers at once; other changes (new nodes, load moves above
// LoadEpsilon, recoveries) wait for the batching Window (≤ 100 ms). A beat
// that changes nothing only refreshes liveness and costs no version.
//
// # Tier
//
// Every instance owns the nodes whose agents beat to it and decides their
// liveness; it sends its changes (not raw beats) to every peer over one
// outbound framed link per peer, and a full dump of its own nodes whenever a
// link (re)connects, so a restarted instance is whole again within one
// heartbeat period (its own agents beat within one period, peers dump at
// once). Reports of one node are ordered by the agent's (incarnation, seq),
// so when an agent re-homes, the newer owner wins everywhere. When a peer's
// link drops, its nodes stay listed for ReHomeGrace while their agents
// reconnect elsewhere; then each instance expires the ones that did not. A
// per-app guard refuses to expire more than MaxExpireShare of an app's nodes
// within GuardWindow.
//
// # Versions and acknowledgements
//
// Each instance numbers its list versions per app in its own epoch (its
// random instance id); a subscriber asking with another epoch or a version
// older than the change log gets a reset (the whole list). Every list read
// carrying subscriber=ID and since=V acknowledges V; the drain endpoint asks
// every instance whether all its active subscribers acknowledged a version
// in which the node is not a target.
//
// # Metrics
//
// /metrics is served from an OTel meter provider through the OTel
// Prometheus exporter into a private registry (as the gateway does), with
// the Go runtime and process collectors and switchyard_build_info
// (Config.Version, Config.Revision); every value is read at scrape time.
//
// A Server is safe for concurrent use. It must never import gateway,
// balancer, bench or engines.
package resource
