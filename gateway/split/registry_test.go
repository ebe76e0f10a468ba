package split_test

import (
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/gateway/split"
)

// TestRegistryKeepsStatsAcrossSplitters: Splitters built in turn for one
// route with one Registry (what reloads do) continue the per-variant
// counters and the rejected overrides (what GET /admin/splits shows) by
// route and variant name: a variant that stays keeps counting, one that
// is dropped stops and continues when it comes back, a new one starts at
// 0; another route with the same variant names and a Splitter without a
// Registry count on their own.
func TestRegistryKeepsStatsAcrossSplitters(t *testing.T) {
	reg := split.NewRegistry()
	build := func(route string, vs split.Variants, opts ...split.Option) *split.Splitter {
		t.Helper()
		cfg := split.DefaultConfig()
		cfg.Variants = vs
		s, err := split.New(cfg, append([]split.Option{split.WithRoute(route)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	record := func(s *split.Splitter, variant string, r split.Result) {
		t.Helper()
		i := s.Lookup([]byte(variant))
		if i < 0 {
			t.Fatalf("no variant %q", variant)
		}
		s.Record(i, r)
	}
	rejectOverride := func(s *split.Splitter) {
		var rc fasthttp.RequestCtx
		rc.Request.Header.Set(split.DefaultOverrideHeader, "nope")
		if a := s.AssignRequest(ctxRequest{&rc}); a.Source == split.SourceOverride {
			t.Fatalf("override of an unknown variant taken: %+v", a)
		}
	}
	type want struct {
		requests, errors, tokens int64
		latency                  time.Duration
	}
	check := func(step string, s *split.Splitter, rejected int64, w map[string]want) {
		t.Helper()
		st := s.Stats()
		if len(st) != len(w) {
			t.Fatalf("%s: %d variants, want %d", step, len(st), len(w))
		}
		for _, v := range st {
			g := want{v.Requests, v.Errors, v.Tokens, v.LatencySum}
			if g != w[v.Name] {
				t.Errorf("%s: variant %s = %+v, want %+v", step, v.Name, g, w[v.Name])
			}
		}
		if got := s.OverridesRejected(); got != rejected {
			t.Errorf("%s: overrides rejected %d, want %d", step, got, rejected)
		}
	}
	ab := split.Variants{{Name: "a", Weight: 50, Target: "m-a"}, {Name: "b", Weight: 50, Target: "m-b"}}
	ok := split.Result{Status: 200, Latency: 10 * time.Millisecond, Tokens: 5}
	fail := split.Result{Status: 502, Latency: 20 * time.Millisecond}

	s1 := build("ab", ab, split.WithRegistry(reg))
	for range 3 {
		record(s1, "a", ok)
	}
	record(s1, "b", fail)
	record(s1, "b", fail)
	rejectOverride(s1)
	check("first", s1, 1, map[string]want{"a": {3, 0, 15, 30 * time.Millisecond}, "b": {2, 2, 0, 40 * time.Millisecond}})

	s2 := build("ab", ab, split.WithRegistry(reg)) // reload, same config
	check("reloaded, before any request", s2, 1, map[string]want{"a": {3, 0, 15, 30 * time.Millisecond}, "b": {2, 2, 0, 40 * time.Millisecond}})
	record(s2, "a", ok)
	check("reloaded", s2, 1, map[string]want{"a": {4, 0, 20, 40 * time.Millisecond}, "b": {2, 2, 0, 40 * time.Millisecond}})

	// Reload with a changed split: a dropped, c added, b reweighted.
	bc := split.Variants{{Name: "b", Weight: 30, Target: "m-b"}, {Name: "c", Weight: 70, Target: "m-c"}}
	s3 := build("ab", bc, split.WithRegistry(reg))
	record(s3, "b", ok)
	rejectOverride(s3)
	check("changed", s3, 2, map[string]want{"b": {3, 2, 5, 50 * time.Millisecond}, "c": {}})

	s4 := build("ab", ab, split.WithRegistry(reg)) // a comes back
	check("a back", s4, 2, map[string]want{"a": {4, 0, 20, 40 * time.Millisecond}, "b": {3, 2, 5, 50 * time.Millisecond}})

	other := build("other", ab, split.WithRegistry(reg))
	check("another route", other, 0, map[string]want{"a": {}, "b": {}})
	record(other, "a", ok)
	check("first route after another's request", s4, 2, map[string]want{"a": {4, 0, 20, 40 * time.Millisecond}, "b": {3, 2, 5, 50 * time.Millisecond}})

	alone := build("ab", ab)
	check("without a registry", alone, 0, map[string]want{"a": {}, "b": {}})
}
