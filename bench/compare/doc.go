// Package compare is the proxy comparison of issues 7 and 11: the same
// fast loopback backends behind each contender — direct (no proxy),
// Switchyard's gateway, bench/minproxy, bench/epollproxy, nginx, HAProxy and Caddy — each
// proxy pinned to one core and run single-worker, driven by the same
// closed-loop load, with the rounds interleaved to spread machine noise
// over every contender. Three sections, each round in this order:
//
//   - http1: HTTP/1.1 clients (bench/loadgen), HTTP/1.1 upstreams;
//   - h2: h2c clients (h2load from Debian's nghttp2-client), HTTP/1.1
//     upstreams (nginx cannot proxy_pass over h2c), for Switchyard, nginx
//     and HAProxy, with direct h2c to an h2c backend as the ceiling;
//   - grpc: gRPC unary KServe v2 ModelInfer (bench/loadgen, grpc-go) to
//     grpc-go backends, direct and through Switchyard, nginx (grpc_pass)
//     and HAProxy.
//
// Every row reports req/s, latency, the proxy's CPU µs per request and
// the CPU other work on the machine used meanwhile (bench/cpuload).
//
// The harness installs missing Debian packages itself (apt-get update once,
// then apt-get install -y); a contender whose package or binary is not
// available is reported as skipped with the reason, and so is the h2
// section without h2load; the run goes on. Everything listens on
// 127.0.0.1.
//
// Run owns the processes and servers it starts and stops them before it
// returns.
package compare
