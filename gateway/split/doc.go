// Package split assigns requests of one route to weighted variants (models
// or apps) for A/B experiments (issue 6).
//
// A Splitter is built from a Config (embeddable in a route's YAML as
// `split:`). For each request it derives a key (a header, a cookie or the
// client address), hashes it with xxhash into Config.Buckets fixed buckets
// and maps the bucket to a variant through cumulative bucket ranges laid out
// in the order the variants are listed. The same key therefore always lands
// on the same variant while the weights stay the same, and changing the
// weights moves only the buckets whose range changed: going from
// `a: 90, b: 10` to `a: 80, b: 20` moves exactly 10 % of the buckets, from a
// to b, and nobody else. With three or more variants, moving weight between
// two variants that are next to each other in the list is minimal; moving it
// across a variant in the middle also shifts that variant's range (the same
// trade-off LaunchDarkly and Unleash make). Put the candidate variant last.
//
// An override header (Config.OverrideHeader) forces a variant for testing;
// Config.Overridable limits which variants may be forced. The gateway sets
// Config.VariantHeader on the response to the name of the variant that
// served.
//
// What the package owns: the config, key extraction, the bucket layout, and
// the per-variant metrics (requests, errors, latency, tokens) recorded
// through Splitter.Record. What it must never do: perform I/O, keep a
// request after the call returns, or import the gateway's packages (the
// forwarding core imports split). Requests are read through
// reqkey.Request, which every protocol's request view satisfies, so
// HTTP/1.1, HTTP/2 and gRPC requests are split alike.
//
// Wiring in the gateway (the gateway owns this; split does not import it):
//
//	// once, for the gateway's lifetime: Stats' counters by route and variant
//	reg := split.NewRegistry()
//	// at config load / reload, once per route with a `split:` block
//	s, err := split.New(route.Split, split.WithRoute(route.Name), split.WithMeter(meter), split.WithRegistry(reg))
//	// per request, before picking a node
//	a := s.AssignRequest(req)                 // no allocation
//	v := s.Variant(a.Index)                   // v.Target = app/model to route to
//	// the response carries s.VariantHeader(): v.NameBytes()
//	// after the response is done (or failed)
//	s.Record(a.Index, split.Result{Status: st, Err: err != nil, Latency: d, Tokens: n})
//
// A Splitter is immutable after New and safe for concurrent use. A new
// config builds a new Splitter that the gateway swaps in atomically;
// metrics are keyed by route and variant name, so they continue across
// reloads (the counters behind Stats too, with WithRegistry).
package split
