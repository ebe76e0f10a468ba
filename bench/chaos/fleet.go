package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/bench/freeport"
	"github.com/switchyard-dev/switchyard/discovery"
)

// beatReply is a Resource instance's answer to a JSON heartbeat.
type beatReply struct {
	status               int
	Error, Reason, Field string
	Incarnation          uint64
}

// beat POSTs hb to a Resource instance as identity who (a certificate
// of the pki, "harness" for the harness's own) with tok (none when
// empty).
func (t *topology) beat(addr, who, tok string, hb discovery.Heartbeat) beatReply {
	b, _ := json.Marshal(hb)
	req, _ := http.NewRequest(http.MethodPost, resURL(addr, "/v1/heartbeat"), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	cl := t.ctl
	if who != "harness" {
		cl = t.as[who]
	}
	resp, err := cl.Do(req)
	if err != nil {
		return beatReply{Error: err.Error()}
	}
	defer resp.Body.Close()
	out := beatReply{status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(body, &out)
	return out
}

func heartbeat(id, app, addr string, capacity float64, state discovery.State, inc, seq uint64) discovery.Heartbeat {
	return discovery.Heartbeat{ID: id, App: app, Addresses: map[string]string{"http": addr}, Engine: "vllm",
		Capacity: capacity, State: state, Incarnation: inc, Seq: seq}
}

// caseForgedFleet (items 9, 10): an attacker holding the engines' agent
// credential (and the gateways' reader credential) tries to announce
// nodes it may not, and to take a real node offline for good; under load.
func caseForgedFleet(ctx context.Context, t *topology, c *caseRun) {
	l := startLoad(loadSpec{target: t.gw.addr, model: model, limit: time.Minute})
	c.check(l.waitOK(ctx, 50, 20*time.Second), "the load got no answers")
	rogue, rogueBefore := t.rogue.addr, len(t.rogue.requests())
	now := uint64(time.Now().UnixNano())
	forged := []struct {
		name, who, tok string
		hb             discovery.Heartbeat
		status         int
		reason, field  string
	}{
		{"another app", "llama-agent", t.agentTok, heartbeat("e9", forbidApp, rogue, 1, discovery.StateReady, now, 1), 403, "forbidden", "app"},
		{"a capacity of 10^6", "llama-agent", t.agentTok, heartbeat("e9", model, rogue, 1e6, discovery.StateReady, now, 1), 403, "forbidden", "capacity"},
		{"a node id outside the prefixes", "llama-agent", t.agentTok, heartbeat("x-evil-1", model, rogue, 1, discovery.StateReady, now, 1), 403, "forbidden", "id"},
		{"an address outside the CIDRs", "llama-agent", t.agentTok, heartbeat("e9", model, "10.9.9.9:8000", 1, discovery.StateReady, now, 1), 403, "forbidden", "addresses.http"},
		{"a beat with the reader credential", "harness", t.readerTok, heartbeat("e9", model, rogue, 1, discovery.StateReady, now, 1), 403, "forbidden", ""},
		{"a beat without a credential", "harness", "", heartbeat("e9", model, rogue, 1, discovery.StateReady, now, 1), 401, "bad_token", ""},
		{"offline e1 with incarnation 2^64−1", "llama-agent", t.agentTok, heartbeat(t.sims[0].name, model, t.sims[0].addr, 1, discovery.StateOffline, math.MaxUint64, 1), 400, "invalid_value", "incarnation"},
	}
	for _, f := range forged {
		for _, r := range t.res { // every instance
			rep := t.beat(r.addr, f.who, f.tok, f.hb)
			right := rep.status == f.status && rep.Reason == f.reason && (f.field == "" || rep.Field == f.field)
			c.one(rep.status, right, fmt.Sprintf("%s to %s: %d reason %q field %q: %s", f.name, r.name, rep.status, rep.Reason, rep.Field, rep.Error))
		}
	}
	// The agent credential may not read lists.
	for _, r := range t.res {
		st := statusAs(t.as["llama-agent"], resURL(r.addr, "/v1/apps/"+model+"/list"), t.agentTok)
		c.one(st, st == 403, fmt.Sprintf("list read with the agent credential on %s: %d", r.name, st))
	}
	// For the next 3 s: e1 never leaves the gateway, nothing forged
	// appears in any route, and e1 keeps serving.
	servedBefore := l.served(t.sims[0].name)
	e1Out, samples := 0, 0
	forgedSeen := map[string]adminNode{}
	waitUntil(ctx, 3*time.Second, func() bool {
		samples++
		all, err := t.allNodes()
		if err != nil {
			e1Out++
			return false
		}
		e1 := false
		for _, n := range all {
			if n.Route == model && n.ID == t.sims[0].name && n.eligible() {
				e1 = true
			}
			if n.HTTP == rogue || n.ID == "e9" || n.ID == "x-evil-1" {
				forgedSeen[n.Route+"/"+n.ID] = n
			}
		}
		if !e1 {
			e1Out++
		}
		return false
	})
	c.check(len(forgedSeen) == 0, "forged nodes reached the gateway: %+v", forgedSeen)
	c.check(e1Out == 0, "e1 was out of the gateway in %d of %d samples after the forged offline beat", e1Out, samples)
	c.check(l.served(t.sims[0].name) > servedBefore, "e1 served nothing in the 3 s after the forged offline beat")
	if seen := t.rogue.requests()[rogueBefore:]; len(seen) > 0 {
		c.fail("the forged address got %d requests, the first %+v", len(seen), seen[0])
	}
	c.account(l.finish(), strict)
	c.observe("%d forged beats refused with the reason and field named; e1 stayed routable and served %d answers after its forged offline beat; the forged address saw nothing", len(forged)*len(t.res), l.served(t.sims[0].name)-servedBefore)
}

// caseLimits (item 11): app limited holds at most 2 nodes (credentials
// file); beats for 4 are sent with the fixtures' agent credential.
func caseLimits(ctx context.Context, t *topology, c *caseRun) {
	inc := uint64(time.Now().UnixNano())
	ids := []string{"l1", "l2", "l3", "l4"}
	r1 := t.res[0].addr
	for i, id := range ids {
		rep := t.beat(r1, "harness", t.limitTok, heartbeat(id, limitedApp, t.rogue.addr, 1, discovery.StateReady, inc, 1))
		if i < 2 {
			c.one(rep.status, rep.status == 204, fmt.Sprintf("node %s within the limit: %d %s", id, rep.status, rep.Error))
		} else {
			c.one(rep.status, rep.status == 429 && rep.Reason == "limit", fmt.Sprintf("node %s over the limit: %d reason %q: %s", id, rep.status, rep.Reason, rep.Error))
		}
	}
	var list discovery.OnlineList
	var err error
	listed := waitUntil(ctx, 3*time.Second, func() bool { // ready beats commit within the batching window
		err = t.getJSON(resURL(r1, "/v1/apps/"+limitedApp+"/list"), t.readerTok, &list)
		return err == nil && len(list.Nodes) >= 2
	})
	c.check(listed && len(list.Nodes) == 2, "the instance lists %d nodes of app %s (%v), want 2", len(list.Nodes), limitedApp, err)
	most := 0
	got := waitUntil(ctx, 5*time.Second, func() bool {
		ns, err := t.nodes(limitedApp)
		if err != nil {
			return false
		}
		most = max(most, len(ns))
		return len(ns) == 2
	})
	c.check(got, "the gateway's route %s never had its 2 nodes", limitedApp)
	// A few more beats while watching: never more than 2.
	for seq := uint64(2); seq < 6; seq++ {
		for _, id := range ids {
			t.beat(r1, "harness", t.limitTok, heartbeat(id, limitedApp, t.rogue.addr, 1, discovery.StateReady, inc, seq))
		}
		if ns, err := t.nodes(limitedApp); err == nil {
			most = max(most, len(ns))
		}
	}
	c.check(most <= 2, "the gateway had %d nodes in route %s", most, limitedApp)
	for _, id := range ids[:2] { // leave: offline
		rep := t.beat(r1, "harness", t.limitTok, heartbeat(id, limitedApp, t.rogue.addr, 1, discovery.StateOffline, inc, 9))
		c.one(rep.status, rep.status == 204, fmt.Sprintf("offline %s: %d %s", id, rep.status, rep.Error))
	}
	c.check(waitUntil(ctx, 10*time.Second, func() bool { ns, err := t.nodes(limitedApp); return err == nil && len(ns) == 0 }),
		"the limited nodes did not leave the gateway after going offline")
	c.observe("2 nodes listed, 2 refused with reason limit; the gateway routed to at most %d", most)
}

// caseClockBack (item 10): a previous run of e5's agent, whose clock was
// 40 s ahead, went offline and left a tombstone with its incarnation;
// the agent restarts with its (correct) clock behind that and must be
// routable again by itself, long before the tombstone expires (30 s).
func caseClockBack(ctx context.Context, t *topology, c *caseRun) {
	l := startLoad(loadSpec{target: t.gw.addr, model: model, limit: 90 * time.Second})
	c.check(l.waitOK(ctx, 50, 20*time.Second), "the load got no answers")
	ag, sim := t.agents[4], t.sims[4]
	if !c.check(ag.p.kill9() == nil, "kill -9 of %s failed", ag.name) {
		c.account(l.finish(), strict)
		return
	}
	// The agent dials its servers in order: its first instance owns it.
	owner := strings.Split(ag.args[2], ",")[0]
	ahead := uint64(time.Now().Add(40 * time.Second).UnixNano())
	for seq, st := range []discovery.State{discovery.StateReady, discovery.StateOffline} {
		rep := t.beat(owner, "llama-agent", t.agentTok, heartbeat(sim.name, model, sim.addr, 1, st, ahead, uint64(seq+1)))
		c.one(rep.status, rep.status == 204, fmt.Sprintf("the ahead run's %s beat: %d %s", st, rep.status, rep.Error))
	}
	c.check(waitUntil(ctx, 10*time.Second, func() bool { ns, err := t.nodes(model); return err == nil && !ns[sim.name].eligible() }),
		"%s did not leave the gateway after its offline beat", sim.name)
	restarted := time.Now()
	if !c.check(t.run(ctx, ag) == nil, "restart of %s failed", ag.name) {
		c.account(l.finish(), strict)
		return
	}
	back := waitUntil(ctx, 20*time.Second, func() bool { ns, err := t.nodes(model); return err == nil && ns[sim.name].eligible() })
	took := time.Since(restarted)
	c.check(back && took < 10*time.Second, "%s routable again after %.1f s (back %v), want < 10 s", sim.name, secs(took), back)
	logb, _ := os.ReadFile(ag.p.log)
	c.check(bytes.Contains(logb, []byte("agent: adopting the incarnation Resource asked for")), "the agent's log does not say it adopted an incarnation:\n%s", tail(ag.p.log, 10))
	c.check(l.waitServed(ctx, sim.name, 5, 15*time.Second), "%s served nothing after it came back", sim.name)
	c.account(l.finish(), strict)
	c.observe("routable again %.1f s after the agent restarted (it adopted the incarnation it was told)", secs(took))
}

// ack POSTs a subscriber's acknowledgement of app's list to a Resource
// instance with the reader token (what a gateway does after applying a
// list) and returns the reply.
func (t *topology) ack(addr, app, sub string) beatReply {
	req, _ := http.NewRequest(http.MethodPost, resURL(addr, "/v1/apps/"+app+"/ack?subscriber="+sub+"&epoch=0&version=0"), nil)
	req.Header.Set("Authorization", "Bearer "+t.readerTok)
	resp, err := t.ctl.Do(req)
	if err != nil {
		return beatReply{Error: err.Error()}
	}
	defer resp.Body.Close()
	out := beatReply{status: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(body, &out)
	return out
}

// caseTierLimits (item 11): a Resource instance of its own (mTLS, the
// same credentials) with --max-apps 2 and --max-subscribers 2: a third
// app and a third subscriber of an app are refused (429, reason limit,
// the field named); an app whose last node left is freed once its
// tombstone expired (30 s, the default TombstoneTTL), and then a new app
// fits.
func caseTierLimits(ctx context.Context, t *topology, c *caseRun) {
	addrs, err := freeport.Loopback(1)
	if !c.check(err == nil, "ports: %v", err) {
		return
	}
	addr := addrs[0]
	p, err := t.extra("r-limits", append([]string{"resource", "--listen", addr, "--credentials", "credentials.yaml",
		"--max-apps", "2", "--max-subscribers", "2", "--log-format", "json"}, t.pki.tlsFlags("server")...)...)
	if !c.check(err == nil, "start: %v", err) {
		return
	}
	defer p.stop(5 * time.Second)
	if !c.check(waitUntil(ctx, 10*time.Second, func() bool { return t.status(resURL(addr, "/healthz"), "") == 200 }), "the instance did not come up:\n%s", tail(p.log, 5)) {
		return
	}
	inc := uint64(time.Now().UnixNano())
	beat := func(id, app string, st discovery.State, seq uint64) beatReply {
		return t.beat(addr, "harness", t.limitTok, heartbeat(id, app, t.rogue.addr, 1, st, inc, seq))
	}
	for i, app := range []string{"lim-a", "lim-b"} {
		rep := beat(fmt.Sprintf("x%d", i+1), app, discovery.StateReady, 1)
		c.one(rep.status, rep.status == 204, fmt.Sprintf("a node of app %s (within 2 apps): %d %s", app, rep.status, rep.Error))
	}
	rep := beat("x3", "lim-c", discovery.StateReady, 1)
	c.one(rep.status, rep.status == 429 && rep.Reason == "limit" && rep.Field == "app", fmt.Sprintf("a third app: %d reason %q field %q: %s", rep.status, rep.Reason, rep.Field, rep.Error))
	for i, sub := range []string{"gw-1", "gw-2", "gw-3"} {
		rep := t.ack(addr, "lim-a", sub)
		if i < 2 {
			c.one(rep.status, rep.status == 204, fmt.Sprintf("subscriber %s of lim-a (within 2): %d %s", sub, rep.status, rep.Error))
		} else {
			c.one(rep.status, rep.status == 429 && rep.Reason == "limit" && rep.Field == "subscriber", fmt.Sprintf("a third subscriber: %d reason %q field %q: %s", rep.status, rep.Reason, rep.Field, rep.Error))
		}
	}
	// lim-b's only node leaves (lim-a keeps its subscribers): the app
	// is freed with its tombstone, and lim-c fits.
	rep = beat("x2", "lim-b", discovery.StateOffline, 2)
	c.one(rep.status, rep.status == 204, fmt.Sprintf("x2 offline: %d %s", rep.status, rep.Error))
	freed := time.Now()
	var last beatReply
	seq := uint64(1)
	fits := waitUntil(ctx, 45*time.Second, func() bool {
		seq++
		last = beat("x3", "lim-c", discovery.StateReady, seq)
		return last.status == 204
	})
	took := time.Since(freed)
	c.one(last.status, fits, fmt.Sprintf("a new app after lim-b emptied: %d %s after %.1f s", last.status, last.Error, secs(took)))
	c.observe("answers: %v; a new app fitted %v, %.1f s after the last node of an app left", c.row.answered(), fits, secs(took))
}
