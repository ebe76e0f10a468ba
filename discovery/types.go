package discovery

import (
	"fmt"
	"time"
)

// State is a node's lifecycle state in the online list.
//
// Transitions (issue 3):
//
//	ready ⇄ draining → offline   when the node says so (its agent);
//	ready → suspect → offline    when Resource misses its heartbeats.
//
// A suspect node that beats again returns to ready. An offline node is
// removed from the list: deltas carry it in [Delta.Removes].
type State uint8

// Node states. The zero value is StateUnknown, which is never valid on the
// wire.
const (
	StateUnknown  State = iota
	StateReady          // serving, a routing target
	StateDraining       // finishing in-flight work, not a target
	StateSuspect        // missed heartbeats; still listed, not yet expired
	StateOffline        // gone; removed from the list
)

var stateNames = [...]string{"unknown", "ready", "draining", "suspect", "offline"}

// String returns the lower-case wire name of s.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// ParseState parses a wire name ("ready", "draining", "suspect", "offline").
func ParseState(s string) (State, error) {
	for i, n := range stateNames {
		if i > 0 && n == s {
			return State(i), nil
		}
	}
	return StateUnknown, fmt.Errorf("discovery: unknown state %q", s)
}

// MarshalText implements encoding.TextMarshaler.
func (s State) MarshalText() ([]byte, error) {
	if s == StateUnknown || int(s) >= len(stateNames) {
		return nil, fmt.Errorf("discovery: cannot encode state %d", uint8(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return inputErr(ReasonInvalid, "state", "%q is not a state", b)
	}
	*s = v
	return nil
}

// Target reports whether a node in state s receives traffic. Ready and
// suspect nodes are targets (a suspect node has only missed a beat or two;
// ejecting it at once would flap on every GC pause or network blip); draining
// and offline nodes are not. Gateways may weight suspect nodes down.
func (s State) Target() bool { return s == StateReady || s == StateSuspect }

// Accelerator describes the cards a node serves with.
type Accelerator struct {
	// Model is the card model, e.g. "H100-SXM" or "Ascend910B"; empty for CPU
	// nodes.
	Model string `json:"model,omitempty"`
	// Count is the number of cards, 0..MaxCards.
	Count int `json:"count"`
}

// Load is the latest load a node reported. All fields are sampled together
// at SampledAt. Every quantity is a [Value]: unknown (the engine does not
// report it, the probe failed, or an old agent sent none) is distinct from 0
// (idle) on every encoding (issue 13).
type Load struct {
	// Utilisation of the node's accelerators (or cores), 0..1.
	Utilisation Value `json:"utilisation"`
	// Concurrency is the number of requests in flight (may be an average),
	// 0..MaxConcurrency.
	Concurrency Value `json:"concurrency"`
	// Running and Waiting are the engine's running and queued requests,
	// 0..MaxQueue.
	Running Value `json:"running"`
	Waiting Value `json:"waiting"`
	// KVCacheUsage is the engine's KV-cache occupancy, 0..1.
	KVCacheUsage Value `json:"kv_cache_usage"`
	// PrefixCacheHits and PrefixCacheQueries are the engine's cumulative
	// prefix-cache hit and query counts (vLLM: tokens, summed over its
	// engines), 0..MaxCounter. They are counters: the difference of two
	// loads is the recent rate; a restarted engine starts them over.
	// Gateways calibrate prefix affinity with them (issue 14).
	PrefixCacheHits    Value `json:"prefix_cache_hits"`
	PrefixCacheQueries Value `json:"prefix_cache_queries"`
	// PrefixCacheHitRate is the prefix-cache hit rate 0..1 of an engine
	// that reports a rate instead of counts (SGLang cache_hit_rate).
	PrefixCacheHitRate Value `json:"prefix_cache_hit_rate"`
	// LoRA is the LoRA adapters the engine has running or waiting (omitted
	// in JSON when unknown).
	LoRA Adapters `json:"lora,omitzero"`
	// Readiness is the engine's readiness as the agent probed it (omitted
	// in JSON when unknown).
	Readiness Readiness `json:"readiness,omitempty"`
	// SampledAt is when the probe sampled this load (zero if unknown).
	SampledAt time.Time `json:"sampled_at"`
}

// Node is one serving replica in an application's online list, as Resource
// serves it to gateways. A Node inside an [OnlineList] or [Delta] is an
// immutable snapshot: its Addresses map must not be modified.
type Node struct {
	// ID is unique within the app (typically pod name or host:port).
	ID string `json:"id"`
	// App is the application (model service) the node serves.
	App string `json:"app"`
	// Addresses maps an engine protocol ("http", "grpc", ...) to host:port.
	Addresses map[string]string `json:"addresses"`
	// Engine names the inference engine (e.g. "vllm", "triton").
	Engine string `json:"engine,omitempty"`
	// Accelerator is the node's card model and count.
	Accelerator Accelerator `json:"accelerator"`
	// Capacity is the node's relative capacity (cards × per-model
	// coefficient, or cores), >= 0.
	Capacity float64 `json:"capacity"`
	// State is the node's lifecycle state.
	State State `json:"state"`
	// Load is the latest significant load Resource propagated for the node.
	// Resource forwards a load change when it moves by more than its
	// configured epsilon or when the propagated load grows old, not on every
	// beat, so Load may lag the node by up to that refresh period.
	Load Load `json:"load"`
	// LastHeard is when Resource last heard the node, as of Version (it is
	// not refreshed on every beat, only with changes).
	LastHeard time.Time `json:"last_heard"`
	// Version is the list version at which this record last changed.
	Version uint64 `json:"version"`
}

// Eligible reports whether the node is a routing target (see [State.Target]).
func (n *Node) Eligible() bool { return n.State.Target() }

// Heartbeat is what a node's agent sends Resource about once a second. It
// carries the node's identity, addresses, capacity, self-declared state
// (ready, draining or offline; never suspect) and latest load.
type Heartbeat struct {
	ID          string            `json:"id"`
	App         string            `json:"app"`
	Addresses   map[string]string `json:"addresses"`
	Engine      string            `json:"engine,omitempty"`
	Accelerator Accelerator       `json:"accelerator"`
	Capacity    float64           `json:"capacity"`
	State       State             `json:"state"`
	Load        Load              `json:"load"`
	// Incarnation identifies one run of the agent (its start time in unix
	// nanoseconds); a restarted agent has a larger one.
	Incarnation uint64 `json:"incarnation"`
	// Seq increases by one per heartbeat within an incarnation. Resource
	// orders reports of the same node by (Incarnation, Seq).
	Seq uint64 `json:"seq"`
}

// OnlineList is a snapshot of one app's online list at one version. Nodes are
// in no particular order and must not be modified. They are pointers so that
// a new version shares the nodes that did not change with the old one: with
// 100,000 nodes, copying values on every change was most of the client's
// propagation time.
type OnlineList struct {
	App string `json:"app"`
	// Epoch identifies the Resource instance (and its run) whose version
	// space Version belongs to. Versions of different epochs are not
	// comparable.
	Epoch   uint64  `json:"epoch"`
	Version uint64  `json:"version"`
	Nodes   []*Node `json:"nodes"`
}

// Eligible returns the nodes that are routing targets, in list order. The
// returned slice is new; the nodes are shared and must not be modified.
func (l *OnlineList) Eligible() []*Node {
	out := make([]*Node, 0, len(l.Nodes))
	for _, n := range l.Nodes {
		if n.Eligible() {
			out = append(out, n)
		}
	}
	return out
}

// Delta is the set of changes to one app's list between two versions of one
// epoch. When Reset is true the subscriber's view is stale or of another
// epoch: Upserts is then the whole list and replaces the view.
type Delta struct {
	App   string `json:"app"`
	Epoch uint64 `json:"epoch"`
	// From is the version the delta applies to (the subscriber's "since");
	// To is the version after applying it. From == To means no change
	// (a long-poll that timed out).
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
	Reset bool   `json:"reset,omitempty"`
	// Upserts are nodes added or changed after From, as of To.
	Upserts []Node `json:"upserts,omitempty"`
	// Removes are IDs of nodes that went offline after From.
	Removes []string `json:"removes,omitempty"`
}

// DrainStatus answers a draining node's question "has every gateway watching
// my app acknowledged a list version in which I am not a target?" across the
// whole Resource tier (GET /v1/apps/{app}/drain?node=ID).
type DrainStatus struct {
	App       string          `json:"app"`
	Node      string          `json:"node"`
	Done      bool            `json:"done"`
	Instances []InstanceDrain `json:"instances"`
}

// InstanceDrain is one Resource instance's part of a [DrainStatus].
type InstanceDrain struct {
	Instance uint64 `json:"instance"`
	Done     bool   `json:"done"`
	// Version is the list version (of this instance's epoch) from which the
	// node is not a target; 0 while it still is one.
	Version uint64 `json:"version"`
	// Pending lists watching subscribers that have not acknowledged Version.
	Pending []string `json:"pending,omitempty"`
	// Reason explains why the instance is not done.
	Reason string `json:"reason,omitempty"`
	// Unreachable marks a peer that did not answer; it does not hold the
	// drain back (its subscribers are failing over to live instances).
	Unreachable bool `json:"unreachable,omitempty"`
}
