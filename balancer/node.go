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
)

func (s State) String() string {
	switch s {
	case Ready:
		return "ready"
	case Draining:
		return "draining"
	case Offline:
		return "offline"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Load is one load sample from a node.
type Load struct {
	// Utilisation is the busy fraction of the node's capacity, 0..1.
	Utilisation float64
	// Concurrency is the number of requests the node was running.
	Concurrency float64
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
	// State is the node's lifecycle state; only Ready nodes are picked.
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
