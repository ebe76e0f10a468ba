// Package balancer owns Switchyard's routing tables: immutable snapshots of
// one route's nodes, the weight each node gets, and the pickers that choose
// a node per request.
//
// The hot path is Table.Pick. A table is built off the hot path by one owner
// goroutine (Builder.Build) and published with an atomic.Pointer; readers
// load the pointer once per request and never take a lock. A pick is
// lock-free and allocation-free.
//
// The default picker is blocked smooth weighted round robin (SWRR) with
// nginx's semantics: inside a block of at most Config.BlockSize nodes the
// schedule is exactly nginx's (weights {5,1,1} give A A B A C A A); it is
// worked out when the table is built, so following it is one atomic add and
// an index. Blocks are chosen by a stride scheduler over the block weights
// (the scheme of grpc-go's weighted round robin), which keeps every node's
// share exact over a cycle while a pick stays O(1) amortised. Every table
// starts its counters at random offsets, so many gateways built from the
// same online list do not herd onto the same node.
//
// By default a pick weighs two candidates (Config.Choices): the node the
// schedule gives and a second one drawn in proportion to weight; the one
// with fewer requests per unit of weight wins, the scheduled one on a tie,
// counting the gateway's own in-flight requests plus the queue the node's
// engine reported (Load.Waiting), aged by the sample's age
// (Config.QueueHalfLife) and less the waiting requests that must be this
// gateway's own: the queue shows what other gateways and clients sent. With nothing in flight and no queue reported the picks are nginx's
// sequence exactly; under load a node that has fallen behind is passed
// over at once.
//
// Engine signals may be unknown (NaN in Load), which is never read as 0:
// an unknown queue or KV-cache usage leaves picks and weights exactly as
// they were before these signals existed. KV-cache usage above
// Config.KVPressure lowers a node's weight. Nodes whose engine is not
// ready or asleep (States NotReady, Asleep) stay in the table but are not
// picked; back within a minute they return at full weight, after longer
// they slow-start.
//
// Weights come from a Weigher: ThroughputWeigher by default (each node's
// completed requests per busy second, learned from Endpoint.Complete and
// its reported utilisation, with its capacity as the prior), HeadroomWeigher
// (capacity, headroom and concurrency, aiming at equal utilisation),
// SeedWeigher (the literal Starlink formula) and StaticWeigher (nginx-style
// fixed weights). bench/results/policies-analysis.md has the evidence for
// the default. Live per-node state (in-flight requests, completions,
// exclusions such as an open circuit breaker) lives on Endpoint objects that
// outlive tables, so a rebuild does not reset it and an exclusion takes
// effect at once, without a rebuild.
//
// Affinity (affinity.go, issue 14) layers prefix-cache, session and LoRA
// affinity over a table's pick: it remembers where the route sent recent
// prompts (bounded, aged, calibrated by the engines' prefix-cache hits)
// and prefers the node holding the longest prefix of a new one while that
// node's in-flight count stays within 1.25 × its weighted share (plus one);
// otherwise the table's pick decides.
//
// The package does no I/O and imports nothing else of Switchyard's.
// Table and Endpoint methods and Affinity.Pick are safe for concurrent
// use; Builder, Registry and Affinity.Update belong to one owner
// goroutine.
package balancer
