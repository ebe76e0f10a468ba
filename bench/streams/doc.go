// Package streams measures the gateway's memory with many slow streams
// open (issue 11): a real `switchyard gateway` process in front of
// simulated engines (engines/sim, in this process) that emit one token
// per TokenInterval with an output long enough that no stream ends, and a
// client (in this process) that holds N concurrent streamed chat
// completions ("stream": true, SSE) open. At idle and at each level of
// streams it reads the gateway's resident memory (VmRSS of
// /proc/PID/status) and its Go heap, stacks and goroutines (the admin
// port's /debug/pprof), and reports bytes per stream = (RSS with N
// streams − RSS at idle) / N. At each level it checks that every stream
// is still open and still receiving tokens.
//
// Levels grow in one gateway process: the streams of a level stay open
// while the next level's are added. Everything listens on 127.0.0.1; the
// harness raises its RLIMIT_NOFILE (inherited by the gateway) to hold
// two sockets per stream in each process (here: client and engine; in
// the gateway: client and upstream).
//
// Run owns the gateway process, the simulated engines and the stream
// goroutines it starts, and stops them before it returns.
package streams
