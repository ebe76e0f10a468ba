// Package frontend is the client port: one listener whose connections are
// sniffed (listener.go) and served by fasthttp for HTTP/1.1 (h1.go) or by
// internal/h2server for h2c, TLS with ALPN h2 and gRPC (h2.go).
// Each translates its request into the forwarding core's view
// (forward.Request), calls the core once, and writes the core's answer
// back: a buffered answer in place, a streamed one as it arrives — over
// HTTP/1.1 on the hijacked connection (stream.go), so that an open stream
// holds no serving goroutine of fasthttp's and no buffer while it waits.
// HTTP/2 connections write through internal/writebatch, which gathers the
// frames of many streams into one system call.
//
// It never routes, retries or maps errors to statuses (the core does),
// and it keeps nothing of a request after its Exchange finished.
//
// A Server is safe for concurrent use; Serve and Shutdown are called once.
package frontend
