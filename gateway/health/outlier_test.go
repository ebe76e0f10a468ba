package health

import (
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/balancer"
)

// outlierRoute is a route over addrs with health checks off (outlier
// detection alone, with its defaults).
func outlierFleet(t *testing.T, addrs ...string) *fleet {
	t.Helper()
	rc := testRoute(addrs...)
	rc.HealthCheck.Disable = true
	return newFleet(t, rc, addrs)
}

func excluded(f *fleet, i int) bool {
	return f.tb.Endpoint(i).Exclusions()&balancer.ExcludeHealth != 0
}

func status(t *testing.T, f *fleet, i int) Status {
	t.Helper()
	s, ok := f.c.Status(f.tb.Endpoint(i).ID())
	if !ok {
		t.Fatalf("no status for node %d", i)
	}
	return s
}

// TestOutlierHungNode: a node that accepts a request and never answers is
// ejected once it has been silent longer than the latency floor (2 s)
// while the others answer in 10 ms — judged on the waiting request, not
// on its end. Its ejection lasts the base time; the next one, while it is
// still hung, twice that.
func TestOutlierHungNode(t *testing.T) {
	hung := hangServer(t)
	f := outlierFleet(t, "127.0.0.1:9", "127.0.0.1:9", hung)
	t0 := f.hang(t, 2) // node 2 silent since t0
	for i := range 2 { // answers must pair with exchanges: none for the hung one
		f.answer(i, 5, 10*time.Millisecond, 200)
	}
	f.c.evaluate(t0.Add(time.Second))
	if excluded(f, 2) {
		t.Fatal("ejected after 1 s of silence, under the 2 s floor")
	}
	for i := range 2 {
		f.answer(i, 2, 10*time.Millisecond, 200)
	}
	f.c.evaluate(t0.Add(2500 * time.Millisecond))
	if !excluded(f, 2) || excluded(f, 0) || excluded(f, 1) {
		t.Fatalf("after 2.5 s of silence: excluded %v %v %v, want only node 2", excluded(f, 0), excluded(f, 1), excluded(f, 2))
	}
	s := status(t, f, 2)
	if !s.Ejected || s.Reason != reasonLatency || !strings.Contains(s.Detail, "silent") || s.Watch != "outliers only" {
		t.Fatalf("status %+v", s)
	}
	if got := s.EjectedUntil.Sub(t0.Add(2500 * time.Millisecond)); got != 30*time.Second {
		t.Fatalf("first ejection for %v, want the base 30s", got)
	}
	if _, ok := f.log.find("gateway: node excluded", "node", "n2", "reason", reasonLatency); !ok {
		t.Fatalf("no warning logged:\n%s", f.log.dump())
	}

	// The ejection ends; the node, still hung, is let back and judged
	// afresh: silent again past the floor, it goes out for 60 s.
	end := t0.Add(2500*time.Millisecond + 30*time.Second)
	for i := range 2 {
		f.answer(i, 5, 10*time.Millisecond, 200)
	}
	f.c.evaluate(end)
	if excluded(f, 2) {
		t.Fatal("still out when its ejection ended")
	}
	if _, ok := f.log.find("gateway: node back", "node", "n2"); !ok {
		t.Fatalf("no recovery logged:\n%s", f.log.dump())
	}
	f.answer(0, 5, 10*time.Millisecond, 200)
	f.c.evaluate(end.Add(3 * time.Second))
	s = status(t, f, 2)
	if !s.Ejected || s.EjectedUntil.Sub(end.Add(3*time.Second)) != 60*time.Second {
		t.Fatalf("second ejection: %+v, want 60 s", s)
	}
}

// TestOutlierSlowAndUniform: a node whose answers take 3 s while the
// others take 100 ms is ejected; a route where every node takes 5 s
// ejects nobody (the other nodes are the reference, not a fixed bound).
func TestOutlierSlowAndUniform(t *testing.T) {
	f := outlierFleet(t, "127.0.0.1:9", "127.0.0.1:9", "127.0.0.1:9")
	t0 := time.Now()
	f.answer(0, 5, 100*time.Millisecond, 200)
	f.answer(1, 5, 100*time.Millisecond, 200)
	f.answer(2, 5, 3*time.Second, 200)
	f.c.evaluate(t0.Add(time.Second))
	if !excluded(f, 2) || excluded(f, 0) || excluded(f, 1) {
		t.Fatalf("slow node: excluded %v %v %v, want only node 2\n%s", excluded(f, 0), excluded(f, 1), excluded(f, 2), f.log.dump())
	}

	g := outlierFleet(t, "127.0.0.1:9", "127.0.0.1:9", "127.0.0.1:9")
	for i := range 3 {
		g.answer(i, 5, 5*time.Second, 200)
	}
	g.answer(2, 5, 9*time.Second, 200) // a little slower than the rest: 7 s mean
	g.c.evaluate(t0.Add(time.Second))
	for i := range 3 {
		if excluded(g, i) {
			t.Fatalf("uniformly slow route: node %d ejected\n%s", i, g.log.dump())
		}
	}
}

// TestOutlierAllSilent: when every node is silent (the whole route
// stalls), there is no reference and nobody is ejected.
func TestOutlierAllSilent(t *testing.T) {
	a, b := hangServer(t), hangServer(t)
	f := outlierFleet(t, a, b)
	t0 := time.Now()
	f.answer(0, 5, 10*time.Millisecond, 200) // fast before they stalled
	f.answer(1, 5, 10*time.Millisecond, 200)
	f.c.evaluate(t0)
	f.hang(t, 0)
	f.hang(t, 1)
	f.c.evaluate(t0.Add(10 * time.Second))
	if excluded(f, 0) || excluded(f, 1) {
		t.Fatalf("every node silent: excluded %v %v\n%s", excluded(f, 0), excluded(f, 1), f.log.dump())
	}
}

// TestOutlierMaxEjectionPercent: with four nodes, three hung, at most 50 %
// (two) are ejected; the third is reported capped.
func TestOutlierMaxEjectionPercent(t *testing.T) {
	f := outlierFleet(t, "127.0.0.1:9", hangServer(t), hangServer(t), hangServer(t))
	for i := 1; i < 4; i++ {
		f.hang(t, i)
	}
	t0 := time.Now()
	f.answer(0, 5, 10*time.Millisecond, 200)
	f.c.evaluate(t0.Add(5 * time.Second))
	out, capped := 0, 0
	for i := 1; i < 4; i++ {
		if excluded(f, i) {
			out++
		}
		if status(t, f, i).Capped != "" {
			capped++
		}
	}
	if out != 2 || capped != 1 || excluded(f, 0) {
		t.Fatalf("ejected %d and capped %d of the 3 hung nodes, want 2 and 1\n%s", out, capped, f.log.dump())
	}
	if f.log.count("gateway: outlier kept in: max_ejection_percent reached") != 1 {
		t.Fatalf("want one warning for the capped node\n%s", f.log.dump())
	}
}

// TestOutlierNeverTheLastNode: a hung node stays pickable while it is the
// only one left (the other is excluded by an operator), and goes out as
// soon as the other is back.
func TestOutlierNeverTheLastNode(t *testing.T) {
	f := outlierFleet(t, "127.0.0.1:9", hangServer(t))
	f.hang(t, 1)
	t0 := time.Now()
	f.answer(0, 5, 10*time.Millisecond, 200)
	f.tb.Endpoint(0).Exclude(balancer.ExcludeAdmin)
	f.c.evaluate(t0.Add(5 * time.Second))
	if excluded(f, 1) || !status(t, f, 1).Held {
		t.Fatalf("the last pickable node: excluded %v, status %+v", excluded(f, 1), status(t, f, 1))
	}
	f.tb.Endpoint(0).Include(balancer.ExcludeAdmin)
	f.answer(0, 5, 10*time.Millisecond, 200)
	f.c.evaluate(t0.Add(6 * time.Second))
	if !excluded(f, 1) {
		t.Fatalf("the other node is back: the hung one should go out\n%s", f.log.dump())
	}
}

// TestOutlierSuccessRate: five nodes with 200 requests each; the one that
// fails half of them is ejected for its success rate, the others (1 %
// failures) are not.
func TestOutlierSuccessRate(t *testing.T) {
	f := outlierFleet(t, "127.0.0.1:9", "127.0.0.1:9", "127.0.0.1:9", "127.0.0.1:9", "127.0.0.1:9")
	for i := range 5 {
		bad := 2
		if i == 4 {
			bad = 100
		}
		f.answer(i, 200-bad, 10*time.Millisecond, 200)
		f.answer(i, bad, 10*time.Millisecond, 503)
	}
	f.c.evaluate(time.Now().Add(time.Second))
	for i := range 5 {
		if excluded(f, i) != (i == 4) {
			t.Fatalf("node %d: excluded %v\n%s", i, excluded(f, i), f.log.dump())
		}
	}
	if s := status(t, f, 4); s.Reason != reasonSuccessRate {
		t.Fatalf("status %+v", s)
	}
}

// TestOutlierOneFailure (found by the chaos suite): five nodes that never
// fail and one that failed once in 200 requests: the others' stdev is
// ~0, so its 99.5 % is below their mean − 1.9 × stdev, but one failure is
// no outlier: it stays (success_rate_min_failure_percent, default 5 %).
func TestOutlierOneFailure(t *testing.T) {
	f := outlierFleet(t, "127.0.0.1:9", "127.0.0.1:9", "127.0.0.1:9", "127.0.0.1:9", "127.0.0.1:9")
	for i := range 5 {
		f.answer(i, 199, 10*time.Millisecond, 200)
	}
	f.answer(4, 1, 10*time.Millisecond, 500)
	f.c.evaluate(time.Now().Add(time.Second))
	for i := range 5 {
		if excluded(f, i) {
			t.Fatalf("node %d ejected\n%s", i, f.log.dump())
		}
	}
	// Ten failures in 200 (5 %) are.
	f.answer(4, 9, 10*time.Millisecond, 500)
	f.c.evaluate(time.Now().Add(2 * time.Second))
	if !excluded(f, 4) {
		t.Fatalf("node 4 with 5 %% failures not ejected\n%s", f.log.dump())
	}
}

// TestOutlierRecoveryNotPoisoned: once a node is let back, the answers to
// requests sent before (stuck in its outage, their times to first byte
// full of it) do not count: it is not ejected again for them.
func TestOutlierRecoveryNotPoisoned(t *testing.T) {
	f := outlierFleet(t, "127.0.0.1:9", "127.0.0.1:9", "127.0.0.1:9")
	t0 := time.Now()
	f.answer(0, 5, 100*time.Millisecond, 200)
	f.answer(1, 5, 100*time.Millisecond, 200)
	f.answer(2, 5, 3*time.Second, 200)
	f.c.evaluate(t0.Add(time.Second))
	if !excluded(f, 2) {
		t.Fatal("the slow node was not ejected")
	}
	back := t0.Add(31 * time.Second)
	f.c.evaluate(back)
	if excluded(f, 2) {
		t.Fatal("still out after its ejection time")
	}
	// Requests stuck during the ejection answer now, after 20 s.
	f.answer(0, 5, 100*time.Millisecond, 200)
	f.answer(1, 5, 100*time.Millisecond, 200)
	f.answer(2, 10, 20*time.Second, 200)
	f.c.evaluate(back.Add(time.Second))
	if excluded(f, 2) {
		t.Fatalf("ejected again for answers sent before it came back\n%s", f.log.dump())
	}
}

// TestOutlierLiftedWhenEngineReadyAgain: a node ejected as an outlier
// whose engine is then reported not ready (its agent saw it down) and
// ready again is let back at once: not ready, it was not probed, so no
// health check could lift the ejection. A node that stays ready keeps
// its ejection.
func TestOutlierLiftedWhenEngineReadyAgain(t *testing.T) {
	f := outlierFleet(t, "127.0.0.1:9", "127.0.0.1:9", "127.0.0.1:9")
	t0 := time.Now()
	f.answer(0, 5, 100*time.Millisecond, 200)
	f.answer(1, 5, 100*time.Millisecond, 200)
	f.answer(2, 5, 3*time.Second, 200)
	f.c.evaluate(t0.Add(time.Second))
	if !excluded(f, 2) {
		t.Fatal("the slow node was not ejected")
	}
	members := func(ready2 bool) {
		var ms []Member
		for i := 0; i < f.tb.Len(); i++ {
			ms = append(ms, Member{Endpoint: f.tb.Endpoint(i), Node: f.nodes[i], Ready: i != 2 || ready2})
		}
		f.c.SetMembers(ms)
	}
	members(true) // still ready: nothing changes
	f.c.sync(t0.Add(2 * time.Second))
	if !excluded(f, 2) {
		t.Fatal("lifted without a readiness change")
	}
	members(false) // its agent reports it not ready
	f.c.sync(t0.Add(3 * time.Second))
	members(true) // and ready again, long before its 30 s are over
	f.c.sync(t0.Add(5 * time.Second))
	if excluded(f, 2) || status(t, f, 2).Ejected {
		t.Fatalf("still out after its engine was ready again: %+v", status(t, f, 2))
	}
	if _, ok := f.log.find("gateway: node back", "node", "n2"); !ok {
		t.Fatalf("no recovery logged:\n%s", f.log.dump())
	}
}
