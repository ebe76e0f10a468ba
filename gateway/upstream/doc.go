// Package upstream is the gateway's side of one node of one route: its
// HTTP/1.1 connection pool and client (Node.Do, abortable through a Call;
// a streamed answer's body is read from the connection's own buffer
// through Call.Body, which checks its framing and lends its bytes without
// a copy), its HTTP/2 transport for gRPC (Node.H2: h2c, or h2 over TLS),
// the TLS to nodes of routes that speak it (NewTLS, from the route's tls
// block: CA bundle, client certificate, server name), certificate and key
// files re-read when they change (KeyPair, also the client listener's),
// its circuit breaker (gobreaker; Report, Probe) with the draining mark
// (MarkDraining), and its first-byte record (ObserveFirstByte, fed by the forwarding core per
// attempt; TakeFirstByte, read by gateway/health).
//
// A Node is the balancer.Endpoint's Value: the route package creates one
// per endpoint and closes it when the node leaves. Nothing here picks
// nodes or retries on another one; that is the forwarding core's.
//
// Everything is safe for concurrent use as documented; a Call belongs to
// one exchange at a time.
package upstream
