package chaos

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// outAfter waits until the gateway may no longer pick engine node
// (excluded or gone) and returns how long that took from since.
func (t *topology) outAfter(ctx context.Context, node string, since time.Time, d time.Duration) (time.Duration, bool) {
	ok := waitUntil(ctx, d, func() bool {
		ns, err := t.nodes(model)
		if err != nil {
			return false
		}
		n, found := ns[node]
		return !found || !n.eligible()
	})
	return time.Since(since), ok
}

// backAfter waits until the gateway may pick engine node again.
func (t *topology) backAfter(ctx context.Context, node string, since time.Time, d time.Duration) (time.Duration, bool) {
	ok := waitUntil(ctx, d, func() bool {
		ns, err := t.nodes(model)
		return err == nil && ns[node].eligible()
	})
	return time.Since(since), ok
}

// cuts counts the records of outcome outCut, and those by node.
func cuts(recs []record, node string) (all, byNode, clean int) {
	for _, r := range recs {
		switch r.outcome {
		case outCut:
			all++
			if r.node == node {
				byNode++
			}
		case outCleanCut:
			clean++
		}
	}
	return all, byNode, clean
}

// caseKillEngine: kill -9 of e1 under mixed load. Its streams in flight
// are cut (by a FIN, mostly: the kernel closes the dead process's
// sockets) and must reach their clients as errors; buffered requests
// are retried on other nodes.
func caseKillEngine(ctx context.Context, t *topology, c *caseRun) {
	const victim = 0
	name := t.sims[victim].name
	l := startLoad(loadSpec{target: t.gw.addr, model: model, maxTokens: 100, limit: time.Minute})
	c.check(l.waitServed(ctx, name, 3, 20*time.Second), "%s served nothing before the kill", name)
	c.check(waitUntil(ctx, 10*time.Second, func() bool { return l.streaming(name) >= 1 }), "no stream relayed from %s before the kill", name)
	killed := time.Now()
	c.check(t.sims[victim].p.kill9() == nil, "kill -9 failed")
	took, ok := t.outAfter(ctx, name, killed, 10*time.Second)
	c.check(ok && took < 5*time.Second, "%s out of the route after %.1f s (out: %v), want < 5 s", name, secs(took), ok)
	c.check(l.waitOK(ctx, 40, 20*time.Second), "the load stalled after the kill")
	restarted := time.Now()
	c.check(t.run(ctx, t.sims[victim]) == nil, "restart of %s failed", name)
	back, okb := t.backAfter(ctx, name, restarted, 20*time.Second)
	c.check(okb && l.waitServed(ctx, name, 3, 15*time.Second), "%s did not serve again after its restart", name)
	recs := l.finish()
	all, mine, clean := cuts(recs, name)
	c.check(mine > 0, "the kill cut no stream of %s: the fault missed", name)
	c.account(recs, allowCut(name, killed, killed.Add(50*time.Millisecond)))
	c.observe("out after %.1f s; streams cut by the kill: %d, all errors at the client (%d via %s, %d ended cleanly); back %.1f s after restart", secs(took), all, mine, name, clean, secs(back))
}

// caseKillAgent: kill -9 of e2's agent. The engine runs on: requests in
// flight on it finish; the node leaves the lists (missed heartbeats) and
// the gateway, and comes back with the restarted agent.
func caseKillAgent(ctx context.Context, t *topology, c *caseRun) {
	const victim = 1
	name := t.sims[victim].name
	l := startLoad(loadSpec{target: t.gw.addr, model: model, limit: time.Minute})
	c.check(l.waitServed(ctx, name, 5, 20*time.Second), "%s served nothing before the kill", name)
	killed := time.Now()
	c.check(t.agents[victim].p.kill9() == nil, "kill -9 failed")
	took, ok := t.outAfter(ctx, name, killed, 15*time.Second)
	c.check(ok && took < 6*time.Second, "%s left the gateway after %.1f s (left: %v), want < 6 s (3 missed beats)", name, secs(took), ok)
	c.check(l.waitOK(ctx, 100, 20*time.Second), "the load stalled after the kill")
	restarted := time.Now()
	c.check(t.run(ctx, t.agents[victim]) == nil, "restart of the agent failed")
	back, okb := t.backAfter(ctx, name, restarted, 20*time.Second)
	c.check(okb && l.waitServed(ctx, name, 5, 15*time.Second), "%s did not serve again after its agent restarted", name)
	c.account(l.finish(), strict)
	c.observe("node left the gateway %.1f s after the kill; back %.1f s after the agent restarted", secs(took), secs(back))
}

// caseKillResource: kill -9 of r1 (the gateway's first Resource server
// and the first instance of e1's and e4's agents).
func caseKillResource(ctx context.Context, t *topology, c *caseRun) {
	l := startLoad(loadSpec{target: t.gw.addr, model: model, limit: time.Minute})
	c.check(l.waitOK(ctx, 100, 20*time.Second), "the load got no answers")
	c.check(t.res[0].p.kill9() == nil, "kill -9 failed")
	// Watch past the tier's re-home grace (5 s) and an expiry (3 beats):
	// a node whose agent did not fail over would be gone by then.
	least := engines
	waitUntil(ctx, 10*time.Second, func() bool { least = min(least, t.eligibleEngines()); return false })
	c.check(least == engines, "only %d of %d engines routable at some point after the kill", least, engines)
	restarted := time.Now()
	c.check(t.run(ctx, t.res[0]) == nil, "restart of r1 failed")
	listed := waitUntil(ctx, 20*time.Second, func() bool {
		var ol discovery.OnlineList
		return t.getJSON(resURL(t.res[0].addr, "/v1/apps/"+model+"/list"), t.readerTok, &ol) == nil && len(ol.Eligible()) == engines
	})
	c.check(listed, "the restarted r1 does not list the %d engines", engines)
	took := time.Since(restarted)
	c.account(l.finish(), strict)
	c.observe("every engine stayed routable (at least %d of %d in every sample); the restarted r1 listed all %d after %.1f s", least, engines, engines, secs(took))
}

// routeStale reports whether the gateway says route's discovery view is
// stale (its Resource servers unreachable).
func (t *topology) routeStale(route string) bool {
	var out struct {
		Routes []struct {
			Name  string
			Stale bool
		}
	}
	if t.getJSON("http://"+t.admin+"/admin/routes", "", &out) != nil {
		return false
	}
	for _, r := range out.Routes {
		if r.Name == route {
			return r.Stale
		}
	}
	return false
}

// caseAllResourcesDown: the whole tier killed for 10 s.
func caseAllResourcesDown(ctx context.Context, t *topology, c *caseRun) {
	l := startLoad(loadSpec{target: t.gw.addr, model: model, limit: time.Minute})
	c.check(l.waitOK(ctx, 100, 20*time.Second), "the load got no answers")
	down := time.Now()
	for _, r := range t.res {
		c.check(r.p.kill9() == nil, "kill -9 of %s failed", r.name)
	}
	least, stale := engines, false
	waitUntil(ctx, 10*time.Second, func() bool {
		least = min(least, t.eligibleEngines())
		stale = stale || t.routeStale(model)
		return false
	})
	okDuring := l.ok.Load()
	c.check(stale, "the gateway never said its view was stale: was the tier really down?")
	c.check(least == engines, "only %d of %d engines routable during the outage", least, engines)
	for _, r := range t.res {
		c.check(t.run(ctx, r) == nil, "restart of %s failed", r.name)
	}
	up := time.Now()
	recovered := waitUntil(ctx, 30*time.Second, func() bool {
		for _, r := range t.res {
			var ol discovery.OnlineList
			if t.getJSON(resURL(r.addr, "/v1/apps/"+model+"/list"), t.readerTok, &ol) != nil || len(ol.Eligible()) != engines {
				return false
			}
		}
		return !t.routeStale(model)
	})
	c.check(recovered, "after the restart, the instances did not all list the %d engines or the gateway stayed stale", engines)
	took := time.Since(up)
	recs := l.finish()
	c.account(recs, strict)
	c.observe("gateway stale during the %.0f s outage and routed to all %d engines; after the restart every instance listed them and the gateway was current again in %.1f s; %d answers before the restart", secs(up.Sub(down)), least, secs(took), okDuring)
}

// caseSIGSTOP: e3 stopped under load: its kernel still completes TCP
// handshakes, nothing answers.
func caseSIGSTOP(ctx context.Context, t *topology, c *caseRun) {
	const victim = 2
	name := t.sims[victim].name
	l := startLoad(loadSpec{target: t.gw.addr, model: model, limit: time.Minute})
	c.check(l.waitServed(ctx, name, 5, 20*time.Second), "%s served nothing before the stop", name)
	stopped := time.Now()
	c.check(t.sims[victim].p.signal(syscall.SIGSTOP) == nil, "SIGSTOP failed")
	took, ok := t.outAfter(ctx, name, stopped, 10*time.Second)
	c.check(ok && took < 5*time.Second, "%s out of the route after %.1f s (out: %v), want < 5 s", name, secs(took), ok)
	c.check(l.waitOK(ctx, 100, 20*time.Second), "the load stalled while the engine was stopped")
	cont := time.Now()
	c.check(t.sims[victim].p.signal(syscall.SIGCONT) == nil, "SIGCONT failed")
	back, okb := t.backAfter(ctx, name, cont, 20*time.Second)
	c.check(okb && l.waitServed(ctx, name, 5, 15*time.Second), "%s did not serve again after SIGCONT", name)
	c.account(l.finish(), strict)
	c.observe("out %.1f s after SIGSTOP; back %.1f s after SIGCONT; held requests finished", secs(took), secs(back))
}

// caseHung: e4 accepts and never answers, its health endpoint included.
func caseHung(ctx context.Context, t *topology, c *caseRun) {
	const victim = 3
	name := t.sims[victim].name
	l := startLoad(loadSpec{target: t.gw.addr, model: model, limit: time.Minute})
	c.check(l.waitServed(ctx, name, 5, 20*time.Second), "%s served nothing before the hang", name)
	hung := time.Now()
	c.check(t.simControl(victim, "fail?mode=hang") == nil, "hang failed")
	took, ok := t.outAfter(ctx, name, hung, 10*time.Second)
	c.check(ok && took < 5*time.Second, "%s out of the route after %.1f s (out: %v), want < 5 s", name, secs(took), ok)
	c.check(l.waitOK(ctx, 100, 20*time.Second), "the load stalled while the engine hung")
	healed := time.Now()
	c.check(t.simControl(victim, "fail?mode=healthy") == nil, "recovery failed")
	back, okb := t.backAfter(ctx, name, healed, 20*time.Second)
	c.check(okb && l.waitServed(ctx, name, 5, 15*time.Second), "%s did not serve again after recovering", name)
	c.account(l.finish(), strict)
	c.observe("out %.1f s after the hang; back %.1f s after recovery; held requests finished", secs(took), secs(back))
}

// caseEngine500: e4 fails every inference request with 500 (health
// stays 200: a grey failure). A node's answer is passed on, never retried
// once it began; the breaker opens after breaker.failures (5) failures
// in a row, so at most that many plus the requests already sent to the
// node may reach clients.
func caseEngine500(ctx context.Context, t *topology, c *caseRun) {
	const victim, breakerFailures = 3, 5
	name := t.sims[victim].name
	spec := loadSpec{target: t.gw.addr, model: model, limit: time.Minute}
	l := startLoad(spec)
	c.check(l.waitServed(ctx, name, 5, 20*time.Second), "%s served nothing before failing", name)
	before, _ := t.simStats(victim)
	failing := time.Now()
	c.check(t.simControl(victim, "error-rate?p=1") == nil, "error-rate failed")
	took, ok := t.outAfter(ctx, name, failing, 10*time.Second)
	c.check(ok && took < 5*time.Second, "%s out of the route after %.1f s (out: %v), want < 5 s", name, secs(took), ok)
	c.check(l.waitOK(ctx, 150, 20*time.Second), "the load stalled")
	ns, _ := t.nodes(model)
	c.check(t.simControl(victim, "error-rate?p=0") == nil, "recovery failed")
	recs := l.finish()
	after, _ := t.simStats(victim)
	c.check(after.Errors > before.Errors, "the engine answered no 500: the fault missed")
	passed := 0
	c.account(recs, func(r record) (verdict, string) {
		if r.outcome == outStatus && r.status == 500 && r.node == name {
			passed++
			return expected, "500 of the failing engine"
		}
		return strict(r)
	})
	bound := breakerFailures + len(allKinds)*3 // the failures that open the breaker, plus one request per load worker already sent
	c.check(passed <= bound, "%d of the engine's 500s reached clients, more than the %d before its breaker opens", passed, bound)
	c.observe("%d 500s from %s, %d passed on before its breaker opened (bound %d); out after %.1f s (%v, breaker %s)", after.Errors-before.Errors, name, passed, bound, secs(took), ns[name].Excluded, ns[name].Breaker)
}

// caseEngine429: first e5 alone answers 429 with Retry-After 7 (busy):
// the gateway retries elsewhere, rests the node for its Retry-After
// (excluded "overload", gateway/forward's restBusy: 1..30 s) so that
// only the requests already on their way meet its refusal, and its
// breaker stays closed; then every engine is busy: clients get 429 with
// the engines' Retry-After (no node rests while no other can serve).
func caseEngine429(ctx context.Context, t *topology, c *caseRun) {
	const victim = 4
	name := t.sims[victim].name
	l := startLoad(loadSpec{target: t.gw.addr, model: model, limit: time.Minute})
	c.check(l.waitServed(ctx, name, 5, 20*time.Second), "%s served nothing before", name)
	before, _ := t.simStats(victim)
	busy := time.Now()
	c.check(t.simControl(victim, "fail?mode=busy") == nil, "busy failed")
	// It rests: out of picks ("overload") for about its Retry-After.
	rest, rested, _ := t.outWhy(ctx, name, busy, 5*time.Second)
	ns, _ := t.nodes(model)
	c.check(rested && contains(ns[name].Excluded, "overload"), "the busy engine did not rest: %+v after %.1f s", ns[name], secs(rest))
	firstRest, _ := t.simStats(victim)
	// Over two rest periods it is offered a request now and then.
	c.check(l.waitOK(ctx, 200, 20*time.Second), "the load stalled")
	pause(ctx, 2*sim429RetryAfter)
	after, _ := t.simStats(victim)
	ns, err := t.nodes(model)
	n := ns[name]
	c.check(err == nil && n.Breaker == "closed" && !contains(n.Excluded, "breaker"), "the busy engine's breaker: %+v (%v)", n, err)
	c.check(after.Rejected > before.Rejected, "the busy engine refused nothing: the fault missed")
	// While it rests, at most the requests of the load's workers already
	// sent to it (12) and one per rest period's end meet its refusal.
	refusedResting := after.Rejected - firstRest.Rejected
	c.check(refusedResting <= int64(len(allKinds)*3+4), "the resting engine still refused %d requests over %v", refusedResting, 2*sim429RetryAfter)
	// Refusals are retried on another node while the route's retry
	// budget (20 % of requests) allows; past it the engine's 429 is
	// passed on, with its Retry-After.
	passed := 0
	c.account(l.finish(), func(r record) (verdict, string) {
		if r.outcome == outStatus && r.status == 429 && r.node == name && r.retryAfter == "7" {
			passed++
			return expected, "429 of the busy engine, Retry-After 7"
		}
		return strict(r)
	})

	// Every engine busy: the engine's own refusal reaches the client.
	for i := range t.sims {
		c.check(t.simControl(i, "fail?mode=busy") == nil, "busy %d failed", i)
	}
	h1, h2 := clients("", 10*time.Second)
	defer h1.CloseIdleConnections()
	defer h2.CloseIdleConnections()
	url := "http://" + t.gw.addr + "/v1/chat/completions"
	var all []record
	for range 4 {
		all = append(all, do(h1, h1Buffered, url, chatBody(model, 4, false, ""), nil), do(h2, h2Buffered, url, chatBody(model, 4, false, ""), nil),
			do(h1, h1Stream, url, chatBody(model, 4, true, ""), nil))
	}
	c.account(all, func(r record) (verdict, string) {
		if r.outcome == outStatus && r.status == 429 && r.retryAfter == "7" {
			return answered, ""
		}
		if r.outcome == outNoAnswer || r.outcome == outCut {
			return lost, ""
		}
		return wrong, ""
	})
	for i := range t.sims {
		_ = t.simControl(i, "fail?mode=healthy")
	}
	ns, err = t.nodes(model)
	opened := 0
	for _, n := range ns {
		if n.Breaker != "closed" {
			opened++
		}
	}
	c.check(err == nil && opened == 0, "%d breakers opened by refusals with Retry-After", opened)
	c.observe("one busy engine: resting (overload) %.1f s after it turned busy; it refused %d requests (%d over the %v after its first rest began), %d retried elsewhere, %d passed on with its Retry-After, breaker closed; all busy: clients got 429 with Retry-After 7; no breaker opened",
		secs(rest), after.Rejected-before.Rejected, refusedResting, 2*sim429RetryAfter, after.Rejected-before.Rejected-int64(passed), passed)
}

// sim429RetryAfter is the simulated engines' busy Retry-After
// (engines/sim.BusyRetryAfter).
const sim429RetryAfter = 7 * time.Second

// caseTrickle: e1 twenty times slower (a noisy neighbour): a 60-token
// answer then takes over 6 s, tokens 100 ms apart.
func caseTrickle(ctx context.Context, t *topology, c *caseRun) {
	const victim = 0
	name := t.sims[victim].name
	l := startLoad(loadSpec{target: t.gw.addr, model: model, maxTokens: 60, limit: time.Minute})
	c.check(l.waitServed(ctx, name, 5, 20*time.Second), "%s served nothing before", name)
	slowed := time.Now()
	c.check(t.simControl(victim, "slowdown?factor=20") == nil, "slowdown failed")
	c.check(l.waitOK(ctx, 150, 30*time.Second), "the load stalled")
	healed := time.Now()
	c.check(t.simControl(victim, "slowdown?factor=1") == nil, "recovery failed")
	recs := l.finish() // requests still on the slow engine finish at its pace
	var slow []time.Duration
	for _, r := range recs {
		if r.node == name && r.outcome == outOK && r.start.After(slowed) && r.start.Before(healed) {
			slow = append(slow, r.end.Sub(r.start))
		}
	}
	sort.Slice(slow, func(i, j int) bool { return slow[i] < slow[j] })
	c.check(len(slow) > 0, "no request started on the slow engine completed: the fault missed")
	longest := time.Duration(0)
	if len(slow) > 0 {
		longest = slow[len(slow)-1]
	}
	c.account(recs, strict)
	c.observe("%d answers from the slow engine, slowest %.1f s, all whole", len(slow), secs(longest))
}

// caseCrashMidStream: e2's process resets every connection (/_sim/crash:
// listeners closed, SO_LINGER 0) while streams are running on it; then
// the process is replaced.
func caseCrashMidStream(ctx context.Context, t *topology, c *caseRun) {
	const victim = 1
	name := t.sims[victim].name
	l := startLoad(loadSpec{target: t.gw.addr, model: model, kinds: []kind{h1Stream, h2Stream, h1Buffered}, workers: 4, maxTokens: 100, limit: time.Minute})
	c.check(l.waitServed(ctx, name, 3, 20*time.Second), "%s served nothing before", name)
	c.check(waitUntil(ctx, 10*time.Second, func() bool { return l.streaming(name) >= 2 }), "fewer than 2 streams relayed from %s before the crash", name)
	crashed := time.Now()
	c.check(t.simControl(victim, "crash") == nil, "crash failed")
	took, ok := t.outAfter(ctx, name, crashed, 10*time.Second)
	c.check(ok && took < 5*time.Second, "%s out of the route after %.1f s (out: %v), want < 5 s", name, secs(took), ok)
	c.check(l.waitOK(ctx, 60, 20*time.Second), "the load stalled")
	c.check(t.restart(ctx, t.sims[victim]) == nil, "restart failed")
	restarted := time.Now()
	back, okb := t.backAfter(ctx, name, restarted, 20*time.Second)
	c.check(okb && l.waitServed(ctx, name, 3, 15*time.Second), "%s did not serve again after its restart", name)
	recs := l.finish()
	all, mine, clean := cuts(recs, name)
	c.check(mine > 0, "no stream of %s was cut: the crash missed", name)
	c.account(recs, allowCut(name, crashed, crashed.Add(50*time.Millisecond)))
	c.observe("streams cut by the crash: %d, all errors at the client (%d via %s, %d clean ends); out after %.1f s, back %.1f s after restart", all, mine, name, clean, secs(took), secs(back))
}

// caseStreamCut (item 2): e3 closes every stream half way, without the
// terminal chunk or [DONE], for 3 s.
func caseStreamCut(ctx context.Context, t *topology, c *caseRun) {
	const victim = 2
	name := t.sims[victim].name
	l := startLoad(loadSpec{target: t.gw.addr, model: model, kinds: []kind{h1Stream, h2Stream, h1Buffered, h2Buffered}, workers: 3, maxTokens: 40, limit: time.Minute})
	c.check(l.waitServed(ctx, name, 5, 20*time.Second), "%s served nothing before", name)
	before, _ := t.simStats(victim)
	from := time.Now()
	c.check(t.simControl(victim, "fail?mode=cut") == nil, "cut mode failed")
	pause(ctx, 3*time.Second)
	to := time.Now()
	c.check(t.simControl(victim, "fail?mode=healthy") == nil, "recovery failed")
	c.check(l.waitOK(ctx, 60, 20*time.Second), "the load stalled")
	back, okb := t.backAfter(ctx, name, to, 30*time.Second)
	c.check(okb, "%s not routable again %.1f s after it stopped cutting", name, secs(back))
	recs := l.finish()
	after, _ := t.simStats(victim) // every stream started in cut mode has ended
	all, mine, clean := cuts(recs, name)
	engineCut := after.Cut - before.Cut
	c.check(engineCut > 0, "the engine cut no stream: the fault missed")
	c.check(mine > 0, "no cut stream reached a client as an error: the fault missed")
	c.check(int64(mine) <= engineCut, "clients saw %d cut streams via %s, the engine cut only %d", mine, name, engineCut)
	var h1c, h2c int
	for _, r := range recs {
		if r.outcome == outCut && r.node == name {
			if r.kind.h2() {
				h2c++
			} else {
				h1c++
			}
		}
	}
	c.account(recs, allowCut(name, from, to.Add(100*time.Millisecond)))
	c.observe("the engine cut %d streams; %d reached clients as errors (%d HTTP/1.1, %d h2), %d of all cuts, %d ended cleanly; routable again %.1f s after", engineCut, mine, h1c, h2c, all, clean, secs(back))
}

// adminAction excludes or includes a node of the engines' route through
// the admin API (with the token).
func (t *topology) adminAction(node, action string) error {
	req, _ := http.NewRequest(http.MethodPost, "http://"+t.admin+"/admin/nodes/"+model+"/"+node+"/"+action, strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+t.adminTok)
	req.Header.Set("Content-Type", "application/json")
	status, _, body, err := exchange(t.ctl, req)
	if err != nil || status != 200 {
		return fmt.Errorf("chaos: admin %s %s: %d %s %v", action, node, status, body, err)
	}
	return nil
}

// caseOneFailure: one failed request of one engine among five healthy
// ones. Its breaker needs 5 failures in a row; outlier detection must
// not take a 0.1 % failure rate for an outlier. The failure is made
// exact: the other engines are taken out of picks (admin API) while one
// request is sent, with the engine failing every request.
func caseOneFailure(ctx context.Context, t *topology, c *caseRun) {
	const victim = 1
	name := t.sims[victim].name
	// Every node gathers the request volume outlier detection needs
	// (100 recent answers each).
	l := startLoad(loadSpec{target: t.gw.addr, model: model, limit: time.Minute})
	c.check(l.waitOK(ctx, 800, 40*time.Second), "the load stalled")
	c.account(l.finish(), strict)
	var others []string
	for i, m := range t.sims {
		if i != victim {
			others = append(others, m.name)
		}
	}
	for _, n := range others {
		c.check(t.adminAction(n, "exclude") == nil, "exclude %s failed", n)
	}
	c.check(t.simControl(victim, "error-rate?p=1") == nil, "error-rate failed")
	h1, _ := clients("", 10*time.Second)
	r := do(h1, h1Buffered, "http://"+t.gw.addr+"/v1/chat/completions", chatBody(model, 4, false, ""), nil)
	h1.CloseIdleConnections()
	c.check(t.simControl(victim, "error-rate?p=0") == nil, "error-rate failed")
	for _, n := range others {
		c.check(t.adminAction(n, "include") == nil, "include %s failed", n)
	}
	failedAt := time.Now()
	c.account([]record{r}, func(r record) (verdict, string) {
		if r.outcome == outStatus && r.status == 500 && r.node == name {
			return expected, "the one 500"
		}
		return wrong, ""
	})
	// Then 15 s of load on the five engines: nobody may be ejected.
	l = startLoad(loadSpec{target: t.gw.addr, model: model, limit: time.Minute})
	least := engines
	waitUntil(ctx, 15*time.Second, func() bool { least = min(least, t.eligibleEngines()); return false })
	c.account(l.finish(), strict)
	ex := t.exclusions(failedAt, time.Now())
	for _, e := range ex {
		c.fail("%s/%s ejected %.1f s after its one failure: %s: %s", e.Route, e.Node, secs(e.Time.Sub(failedAt)), e.Reason, e.Detail)
	}
	c.check(least == engines, "only %d of %d engines routable at some point after the one failure", least, engines)
	c.observe("one 500 from %s; ejections in the 15 s after: %d; at least %d of %d engines routable throughout", name, len(ex), least, engines)
}
