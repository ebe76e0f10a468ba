package chaos

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// caseNode503 (item 7): e2 drains (the simulated engine's own drain):
// its inference answers are 503 with Retry-After 1 and its health 503.
// The gateway retries the refusals elsewhere within its retry budget
// and passes the rest on with the node's Retry-After; the node leaves
// the route (draining, health) but its breaker never opens: a refusal
// with a Retry-After is no failure.
func caseNode503(ctx context.Context, t *topology, c *caseRun) {
	const victim = 1
	name := t.sims[victim].name
	l := startLoad(loadSpec{target: t.gw.addr, model: model, limit: time.Minute})
	c.check(l.waitServed(ctx, name, 5, 20*time.Second), "%s served nothing before", name)
	drained := time.Now()
	c.check(t.simControl(victim, "drain") == nil, "drain failed")
	breakers := map[string]int{}
	var excluded []string
	took, ok := time.Duration(0), false
	waitUntil(ctx, 5*time.Second, func() bool { // the breaker, sampled while it refuses
		ns, err := t.nodes(model)
		if err != nil {
			return false
		}
		n := ns[name]
		breakers[n.Breaker]++
		if !ok && !n.eligible() {
			took, ok, excluded = time.Since(drained), true, n.Excluded
		}
		return false
	})
	c.check(ok && took < 5*time.Second, "%s still routable %.1f s after it began answering 503", name, secs(took))
	c.check(len(breakers) == 1 && breakers["closed"] > 0, "%s's breaker while it answered 503 with Retry-After: %v samples by state, want closed only", name, breakers)
	c.check(l.waitOK(ctx, 100, 20*time.Second), "the load stalled")
	undrained := time.Now()
	c.check(t.simControl(victim, "undrain") == nil, "undrain failed")
	back, okb := t.backAfter(ctx, name, undrained, 20*time.Second)
	c.check(okb && l.waitServed(ctx, name, 5, 15*time.Second), "%s did not serve again after its drain ended", name)
	passed := 0
	c.account(l.finish(), func(r record) (verdict, string) {
		if r.outcome == outStatus && r.status == 503 && r.node == name && r.retryAfter == "1" {
			passed++
			return expected, "503 of the draining engine, Retry-After 1"
		}
		return strict(r)
	})
	ns, _ := t.nodes(model)
	c.check(ns[name].Breaker == "closed", "%s's breaker after the drain: %s", name, ns[name].Breaker)
	c.observe("%s out %.1f s after it began answering 503 (excluded %v); %d of its 503s passed on with Retry-After 1, the rest retried elsewhere; breaker closed in all %d samples; back %.1f s after its drain ended",
		name, secs(took), excluded, passed, breakers["closed"], secs(back))
}

// outWhy is outAfter, also returning the node's exclusions (or state)
// when it was first seen out.
func (t *topology) outWhy(ctx context.Context, node string, since time.Time, d time.Duration) (time.Duration, bool, []string) {
	var why []string
	ok := waitUntil(ctx, d, func() bool {
		ns, err := t.nodes(model)
		if err != nil {
			return false
		}
		n, found := ns[node]
		switch {
		case !found:
			why = []string{"gone"}
		case !n.eligible():
			why = append([]string{"state " + n.State, "breaker " + n.Breaker}, n.Excluded...)
		default:
			return false
		}
		return true
	})
	return time.Since(since), ok, why
}

// agentCtl runs `switchyard agent OP --control ADDR` (drain blocks
// until every watching gateway acknowledged) and returns its exit error
// and output.
func (t *topology) agentCtl(ctx context.Context, op string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, t.cfg.Bin, "agent", op, "--control", t.drainCtl).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// caseAgentDrain (issue 12: what held, 0 errors): e3 is drained by its
// agent (`switchyard agent drain`, as a PreStop hook would) under load
// with long streams in flight; the drain returns once the gateway
// acknowledged; no request fails, none starts on e3 after that; undrain
// brings it back.
func caseAgentDrain(ctx context.Context, t *topology, c *caseRun) {
	name := t.sims[drainVictim].name
	l := startLoad(loadSpec{target: t.gw.addr, model: model, maxTokens: 100, limit: time.Minute})
	c.check(l.waitServed(ctx, name, 3, 20*time.Second), "%s served nothing before the drain", name)
	c.check(waitUntil(ctx, 10*time.Second, func() bool { return l.streaming(name) >= 1 }), "no stream relayed from %s before the drain", name)
	begin := time.Now()
	out, err := t.agentCtl(ctx, "drain")
	drained := time.Now()
	c.check(err == nil, "agent drain: %v: %s", err, out)
	ns, _ := t.nodes(model)
	c.check(!ns[name].eligible(), "%s still routable after its agent's drain returned: %+v", name, ns[name])
	// In-flight requests finish; nothing new starts on the node.
	c.check(l.waitOK(ctx, 100, 20*time.Second), "the load stalled after the drain")
	running, _ := t.simStats(drainVictim)
	undrained := time.Now()
	out2, err := t.agentCtl(ctx, "undrain")
	c.check(err == nil, "agent undrain: %v: %s", err, out2)
	back, okb := t.backAfter(ctx, name, undrained, 20*time.Second)
	c.check(okb && l.waitServed(ctx, name, 3, 15*time.Second), "%s did not serve again after undrain", name)
	recs := l.finish()
	late := 0
	for _, r := range recs {
		if r.node == name && r.start.After(drained.Add(200*time.Millisecond)) && r.start.Before(undrained) {
			late++
		}
	}
	c.check(late == 0, "%d requests started on %s after its drain was acknowledged", late, name)
	c.account(recs, strict)
	c.observe("drain acknowledged %.1f s after it began; %d requests in flight on %s finished, none started there while drained (%d running when undrained); back %.1f s after undrain",
		secs(drained.Sub(begin)), l.served(name), name, running.Running, secs(back))
}

// reloadGateway rewrites the gateway's config and SIGHUPs it, waiting
// for the reload to be logged.
func (t *topology) reloadGateway(ctx context.Context) error {
	tmp := t.gwConfig + ".new"
	if err := writeFile(tmp, t.gatewayYAML(t.gw.addr, t.admin, resAddrs(t), false)); err != nil {
		return err
	}
	if err := os.Rename(tmp, t.gwConfig); err != nil {
		return err
	}
	lines := t.reloadLines()
	if err := t.gw.p.signal(syscall.SIGHUP); err != nil {
		return err
	}
	if !waitUntil(ctx, 10*time.Second, func() bool { return t.reloadLines() > lines }) {
		return fmt.Errorf("chaos: no reload logged within 10 s")
	}
	return nil
}

// gatewayLogCount counts lines of the gateway's current log holding all
// of parts.
func (t *topology) gatewayLogCount(parts ...string) int {
	b, err := os.ReadFile(t.gw.p.log)
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range bytes.Split(b, []byte("\n")) {
		all := true
		for _, p := range parts {
			all = all && bytes.Contains(line, []byte(p))
		}
		if all {
			n++
		}
	}
	return n
}

// caseHealth404 (item 3): the engines' route checks a health path every
// engine answers 404 for (reloaded config; outlier ejections of 5 s so
// the case ends soon). No engine is excluded for lacking a health
// endpoint; outlier detection alone watches them, and still takes out
// an engine whose first bytes come 150 times later (3 s, over the 2 s
// latency floor) while its agent still reports it ready (a hang would
// be seen by the agent's readiness probe first).
func caseHealth404(ctx context.Context, t *topology, c *caseRun) {
	const victim = 3
	name := t.sims[victim].name
	t.llamaRoute = ", health_check: {path: /no-health-endpoint}, outlier: {base_ejection_time: 5s}"
	defer func() {
		t.llamaRoute = ""
		c.check(t.reloadGateway(context.WithoutCancel(ctx)) == nil, "restoring the gateway's config failed")
	}()
	noneLine := []string{"node has no health endpoint", `"route":"` + model + `"`}
	before := t.gatewayLogCount(noneLine...)
	if !c.check(t.reloadGateway(ctx) == nil, "the reload failed") {
		return
	}
	reloaded := time.Now()
	// Buffered answers: their first byte comes after the whole (slow)
	// generation; a stream's headers come at once.
	l := startLoad(loadSpec{target: t.gw.addr, model: model, maxTokens: 2, kinds: []kind{h1Buffered, h2Buffered}, workers: 6, limit: time.Minute})
	noEndpoint := waitUntil(ctx, 10*time.Second, func() bool { return t.gatewayLogCount(noneLine...) >= before+engines })
	c.check(noEndpoint, "the gateway did not log all %d engines as having no health endpoint (%d lines)", engines, t.gatewayLogCount(noneLine...)-before)
	loggedAfter := time.Since(reloaded)
	// 5 s of probes answered 404: every engine stays routable.
	least := engines
	waitUntil(ctx, 5*time.Second, func() bool { least = min(least, t.eligibleEngines()); return false })
	c.check(least == engines, "only %d of %d engines routable while their health path answered 404", least, engines)
	okBefore := l.ok.Load()
	hung := time.Now()
	c.check(t.simControl(victim, "slowdown?factor=150") == nil, "slowdown failed")
	servedBefore := l.served(name)
	okSlowFrom := l.ok.Load()
	took, ok, why := t.outWhy(ctx, name, hung, 25*time.Second)
	servedSlow := l.served(name) - servedBefore
	allSlow := l.ok.Load() - okSlowFrom
	// The picker's in-flight comparison may starve the slow node before
	// its answers make it a latency outlier: it is then out in effect,
	// which is what the case is about (and outlier detection itself is
	// tested in gateway/health, TestNoHealthEndpointWatchedByOutliers).
	starved := allSlow > 0 && float64(servedSlow) <= 0.05*float64(allSlow)
	c.check(ok && took < 15*time.Second || starved, "the slow %s out of the route after %.1f s (out: %v), want < 15 s, or starved (it served %d of %d)", name, secs(took), ok, servedSlow, allSlow)
	c.check(l.waitOK(ctx, 100, 20*time.Second), "the load stalled while the engine was slow")
	healed := time.Now()
	c.check(t.simControl(victim, "slowdown?factor=1") == nil, "recovery failed")
	back, okb := t.backAfter(ctx, name, healed, 30*time.Second)
	c.check(okb, "%s did not come back after recovering", name)
	var reasons []string
	for _, e := range t.exclusions(hung, time.Now()) {
		if e.Node == name {
			reasons = append(reasons, e.Reason)
		}
	}
	c.check(contains(reasons, "latency") || starved, "%s was neither ejected by outlier detection (latency) nor starved: logged exclusions %v, state %v", name, reasons, why)
	c.account(l.finish(), strict)
	c.observe("%d of %d engines logged as having no health endpoint %.1f s after the reload, at least %d routable in every sample for 5 s; the slow %s out after %.1f s (excluded %v; logged exclusions %v), back %.1f s after recovery; %d answers before the slowdown, %d of them from %s, %d of %d from it while slow",
		t.gatewayLogCount(noneLine...)-before, engines, secs(loggedAfter), least, name, secs(took), why, reasons, secs(back), okBefore, servedBefore, name, servedSlow, allSlow)
}
