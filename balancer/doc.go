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
// pick sequence is exactly nginx's (weights {5,1,1} give A A B A C A A); the
// sequence is worked out when the table is built, so a pick is one atomic
// add and an index. Blocks are chosen by a stride scheduler over the block
// weights (the scheme of grpc-go's weighted round robin), which keeps every
// node's share exact over a cycle while a pick stays O(1) amortised.
// Every table starts its counters at random offsets, so many gateways built
// from the same online list do not herd onto the same node.
//
// Weights come from a Weigher (DynamicWeigher by default, SeedWeigher for
// the literal Starlink formula, StaticWeigher for nginx-style fixed
// weights). Live per-node state (in-flight requests, exclusions such as an
// open circuit breaker) lives on Endpoint objects that outlive tables, so a
// rebuild does not reset it and an exclusion takes effect at once, without a
// rebuild.
//
// The package does no I/O and imports nothing else of Switchyard's.
// Table and Endpoint methods are safe for concurrent use; Builder and
// Registry belong to one owner goroutine.
package balancer
