// Package scrape reads the load of inference engines without an agent
// beside them: a [Scraper] GETs each target's Prometheus metrics itself,
// about once a second, and parses them with the engine's adapter
// (engines.Adapter.ParseLoad, looked up by name), the way the Gateway API
// Inference Extension's endpoint picker reads its model servers.
//
// It owns the scrape schedule (one loop per target, jittered so that
// targets do not fire together), the bound on concurrent scrapes, the
// per-scrape timeout and the last result of every target. A target that
// hangs or fails gets an error result (its load is then unknown to the
// caller) without delaying any other target.
//
// It never decides what a load means for routing and never publishes node
// lists: discovery sources (discovery/kubernetes) own their nodes and read
// results from here. It may import engines and nothing else of ours.
//
// A Scraper is safe for concurrent use: Set, Result and Targets may be
// called from any goroutine while Run runs.
package scrape
