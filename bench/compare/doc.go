// Package compare is the proxy comparison of issue 7: the same fast
// loopback backends behind each contender — direct (no proxy), Switchyard's
// gateway, bench/minproxy, nginx, HAProxy and Caddy — each proxy pinned to
// one core and run single-worker, driven by the same closed-loop load from
// bench/loadgen, with the rounds interleaved to spread machine noise over
// every contender.
//
// The harness installs missing Debian packages itself (apt-get update once,
// then apt-get install -y); a contender whose package or binary is not
// available is reported as skipped with the reason, and the run goes on.
// Everything listens on 127.0.0.1.
//
// Run owns the processes and servers it starts and stops them before it
// returns.
package compare
