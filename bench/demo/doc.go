// Package demo runs Switchyard's main job on loopback and reports on it:
// a Resource instance, a gateway fed by it, and a heterogeneous simulated
// fleet (H100-, A10-, Ascend 910B- and CPU-class nodes) whose agents run as
// child processes. It drives a mixed workload of streaming chat
// completions and KServe v2 infer calls, drains one node and kill -9's
// another midway, and reports per-node shares, utilisation and latency,
// the ejection times and the client errors.
//
// It is what `switchyard demo` (and `make demo`) runs. Every goroutine it
// starts stops when Run returns; every child process is killed.
package demo
