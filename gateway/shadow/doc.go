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
// keep a *fasthttp.RequestCtx, Request or Response after a call returns,
// or import the gateway package (the gateway imports shadow).
//
// Wiring in the gateway (the gateway owns this):
//
//	// at config load, once per route with a `shadow:` block
//	//   (route.Shadow is a *shadow.Config decoded from YAML; it starts
//	//    from DefaultConfig, then Validate + ValidateTargets)
//	m, err := shadow.New(ctx, *route.Shadow, gwSender, shadow.WithRoute(route.Name), shadow.WithMeter(meter))
//	// on reload: build the new Mirror, swap it in, then old.Close()
//
//	// per request, in the handler, before forwarding to the primary
//	h := m.Offer(rc, requestID)           // nil when not sampled or dropped
//	start := time.Now()
//	... forward to the primary; the response is in rc.Response ...
//	h.FinishResponse(&rc.Response, time.Since(start))   // bounded copy, no-op on nil
//
//	// for a streamed primary (SetBodyStreamWriter): tee each chunk the
//	// stream writer sends into h.Write(chunk), then after the last one
//	h.Finish(shadow.Primary{Status: st, ContentType: ct, Latency: d})
//
// Offering after the primary completed (Offer then FinishResponse back to
// back, while rc.Request is still intact) works too; the shadow is then
// sent later and its latency is still measured from its own send. Either
// way Offer and FinishResponse cost one atomic reservation and a bounded
// copy; comparison runs on the Mirror's workers. A streamed rc.Response
// (IsBodyStream) cannot be read by FinishResponse: without the tee its
// fields are not compared (Report.Skipped = "primary_truncated"), status
// and latency still are.
//
// gwSender implements Sender: pick a node of the target app from the
// current routing table, set req's URI host and send it with the
// gateway's upstream client and a deadline from ctx. NewHTTPSender is a
// ready Sender for a fixed base URL.
//
// Mirror and Handle are safe for concurrent use as documented on each
// method; a Handle belongs to one request and its Finish is called once.
package shadow
