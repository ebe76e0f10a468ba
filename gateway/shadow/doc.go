// Package shadow mirrors a sampled share of a route's requests to a shadow
// target, compares the shadow's answers with the primary's and reports
// what differed (issue 6).
//
// The primary is never slowed: Offer samples the request (at random or by
// key hash), refuses bodies above Config.MaxBodyBytes, reserves one of
// Config.QueueSize slots with an atomic add (a full queue drops the copy
// and counts it), copies the request with the marker header
// (X-Switchyard-Shadow: 1) and hands it to Config.Concurrency worker
// goroutines through a channel that can never be full. Workers send it
// through the Sender with Config.Timeout; the shadow's response never
// reaches the client. When both the shadow's answer and the primary's
// (handed over with Handle.Finish after the gateway captured a bounded
// copy of its body) are in, a worker compares them: status codes,
// latencies, and Config.Compare.Fields (JSON paths such as
// choices[0].message.content or outputs[0].data; numbers and arrays of
// numbers report absolute and relative differences; SSE streams are
// assembled first). Results go to metrics (see metrics.go), to an
// optional report hook, and — for differences, sampled — to a rotated,
// size-bounded JSONL log written by its own goroutine.
//
// What the package must never do: block or do I/O on the request path,
// keep a request or response after a call returns, or import the
// gateway's packages (the forwarding core imports shadow).
//
// Requests are read through Request: the sampling key (reqkey.Request)
// and CopyTo, which the core's request view implements for HTTP/1.1,
// HTTP/2 and gRPC. A Copy is protocol-neutral (method, target, host,
// headers, body, and whether it is a gRPC call); the Sender sends it over
// the matching protocol and fills an Answer (status, content type,
// bounded body).
//
// Wiring in the forwarding core (gateway/forward owns this):
//
//	// once, for the gateway's lifetime: the counters by route name
//	reg, err := shadow.NewRegistry(meter)
//	// at config load, once per route with a `shadow:` block
//	m, err := shadow.New(ctx, *route.Shadow, coreSender, shadow.WithRoute(route.Name), shadow.WithRegistry(reg))
//	// on reload: build the new Mirror, swap it in, then old.Close();
//	// the new one keeps adding to the route's counters in reg
//
//	// per request, before forwarding to the primary
//	h := m.Offer(req, requestID)          // nil when not sampled or dropped
//	// a body that is still arriving (BodyLater: a streamed request body,
//	// a gRPC stream) is teed into h.WriteBody as the primary reads it,
//	// then h.EndBody(sawEOF) — at the latest before Finish
//	... forward to the primary; tee its response body into h.Write ...
//	h.Finish(shadow.Primary{Status: st, ContentType: ct, Latency: d})
//
// Offer costs one atomic reservation and a bounded copy; sending and
// comparison run on the Mirror's workers. A copy whose body did not end
// while the primary ran (a bidirectional stream) or passed
// Config.MaxBodyBytes is not sent and counts as dropped (too large).
//
// Mirror and Handle are safe for concurrent use as documented on each
// method; a Handle belongs to one request and its Finish is called once.
package shadow
