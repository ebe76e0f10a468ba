// Package policysim is a discrete-event simulation of a large heterogeneous
// inference fleet behind one gateway route, used to compare balancing
// policies. Picking is done by the real balancer package: tables are built
// with balancer.NewBuilder from the nodes' latest load samples every 3 s of
// simulated time, and requests hold balancer.Endpoint in-flight counts
// (Acquire/Release) from pick to completion, so p2c and ring-hash see live
// load exactly as in the gateway.
//
// The fleet, the workload and the noise are fixed by DefaultConfig and were
// chosen before any policy was compared (see the model in config.go); only
// Nodes, Duration, Warmup, Load, Policy and Seed are meant to vary.
//
// The simulated clock is a float64 of seconds from the start, turned into a
// time.Time for the balancer. Runs are deterministic given Seed in
// everything the simulation itself draws (fleet, arrivals, request sizes,
// keys, noise, churn), and every policy sees the same draws (common random
// numbers). The balancer's own randomness (table counter offsets, p2c's and
// random's choices) comes from math/rand/v2's global source, which cannot be
// seeded from outside the package, so two runs of those differ slightly.
//
// Run is safe to call from several goroutines at once; each run owns its
// state.
package policysim
