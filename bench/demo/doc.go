// Package demo runs Switchyard's main job on loopback and reports on it:
// a Resource instance, a gateway fed by it, and a heterogeneous simulated
// fleet (H100-, A10-, Ascend 910B- and CPU-class nodes) whose agents run as
// child processes, plus a stand-in Ray Serve cluster (engines/sim's Ray
// mode: a dashboard and two nodes' proxies in front of three replicas)
// that the gateway discovers from its dashboard alone. It drives a mixed
// workload of streaming chat completions and KServe v2 infer calls to the
// fleet and streaming chat completions to the Ray application's route
// prefix, drains one fleet node and kill -9's another midway, and reports
// per-node shares, utilisation and latency, the ejection times, the Ray
// application's requests, errors and latency by proxy, and the client
// errors.
//
// It is what `switchyard demo` (and `make demo`) runs. Every goroutine it
// starts stops when Run returns; every child process is killed.
package demo
