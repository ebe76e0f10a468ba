package balancer

import (
	"fmt"
	"time"
)

// State is a node's lifecycle state as reported by discovery.
type State uint8

const (
	// Ready nodes take traffic.
	Ready State = iota
	// Draining nodes finish what they have and take nothing new.
	Draining
	// Offline nodes are gone.
	Offline
	// NotReady nodes are listed and alive, but their engine does not accept
	// requests (loading a model, restarting, failing its readiness probe).
	// Like every state but Ready they stay in the table (their endpoint,
	// in-flight count and observations are kept) and are not picked. A
	// node back to Ready within a minute (readyMemory) of leaving it
	// returns at full weight; after a longer absence it slow-starts like a
	// new node, because its caches are cold.
	NotReady
	// Asleep nodes' engines are in sleep mode (vLLM's sleep mode: weights
	// offloaded, seconds to wake): not picked, as NotReady.
	Asleep
)

func (s State) String() string {
	switch s {
	case Ready:
		return "ready"
	case Draining:
		return "draining"
	case Offline:
		return "offline"
	case NotReady:
		return "not-ready"
	case Asleep:
		return "asleep"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Load is one load sample from a node. Every quantity may be unknown: NaN
// means "not reported", distinct from 0 (an engine that reports an empty
// queue). The zero Load has SampledAt zero, which makes the whole sample
// unknown (never sampled), whatever its fields hold.
//
// What an unknown value does: Utilisation unknown, no busy time is
// observed (ThroughputWeigher keeps what it learned) and HeadroomWeigher and
// SeedWeigher give the capacity-based weight; Concurrency unknown, those
// two use the fleet's mean; Waiting unknown, picks count the gateway's own
// in-flight requests only (as before these signals existed); Running
// unknown, all of Waiting counts; KVCache unknown, no KV-pressure
// adjustment.
type Load struct {
	// Utilisation is the busy fraction of the node's capacity, 0..1; NaN
	// when unknown.
	Utilisation float64
	// Concurrency is the number of requests the node was running (an
	// average over the sampling period may be given); NaN when unknown.
	Concurrency float64
	// Running is the number of requests in the engine's batch; NaN when
	// unknown.
	Running float64
	// Waiting is the number of requests queued inside the engine, not yet
	// scheduled; NaN when unknown. Two-choice picks count it, aged by the
	// sample's age (Config.QueueHalfLife), on top of the gateway's own
	// in-flight requests, less the waiting requests that must be the
	// gateway's own (its in-flight beyond Running).
	Waiting float64
	// KVCache is the engine's KV-cache usage, 0..1; NaN when unknown. Above
	// Config.KVPressure it lowers the node's weight.
	KVCache float64
	// SampledAt is when the sample was taken; zero means never.
	SampledAt time.Time
}

// Address is where a node takes requests: its HTTP and gRPC host:port
// (either may be empty; they may be equal). The balancer only compares
// addresses.
type Address struct {
	HTTP string
	GRPC string
}

// Node is one replica as the balancer sees it. Values are copied into a
// table; the table never changes them.
type Node struct {
	// ID identifies the node across tables; it keys its Endpoint.
	ID string
	// Addr is where requests go; opaque to the balancer except as part
	// of the node's identity (a node whose address changes gets a fresh
	// Endpoint, and so fresh connection pools in the gateway).
	Addr Address
	// Capacity is the node's compute: cores, or cards × card coefficient.
	// Zero or negative counts as 1.
	Capacity float64
	// State is the node's lifecycle state, with the engine's readiness
	// folded in (NotReady, Asleep); only Ready nodes are picked.
	State State
	// Load is the latest load sample.
	Load Load
	// Since is when the node joined; zero means long ago (no slow start).
	Since time.Time
}

func (n *Node) capacity() float64 {
	if n.Capacity > 0 && n.Capacity < maxCapacity {
		return n.Capacity
	}
	if n.Capacity >= maxCapacity {
		return maxCapacity
	}
	return 1
}

// maxCapacity bounds a single node's capacity so one absurd report cannot
// swallow a route.
const maxCapacity = 1 << 20
