package chaos

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"
)

// reloadLines counts the gateway's "reloaded" log records so far.
func (t *topology) reloadLines() int {
	b, err := os.ReadFile(t.gw.p.log)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte(`"msg":"gateway: reloaded"`))
}

// askModel sends one small request for m and returns its status (and
// the error code of a gateway's refusal).
func (t *topology) askModel(m string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+t.gw.addr+"/v1/chat/completions", bytes.NewReader(chatBody(m, 1, false, "")))
	req.Header.Set("Content-Type", "application/json")
	status, _, body, _ := exchange(t.ctl, req)
	return status, errorCode(body)
}

// caseSIGHUP: under load, the config gains a route and the gateway gets
// SIGHUP; then SIGHUP with the file unchanged (so the reload is the
// signal's, not the file watcher's); then the route goes and comes back.
// The load (on the engines' route) must not notice any of it.
func caseSIGHUP(ctx context.Context, t *topology, c *caseRun) {
	l := startLoad(loadSpec{target: t.gw.addr, model: model, limit: time.Minute})
	c.check(l.waitOK(ctx, 50, 20*time.Second), "the load got no answers")
	st, code := t.askModel(reloadModel)
	c.one(st, st == 404 && code == "model_not_found", fmt.Sprintf("model %s before the reload: %d %s, want 404 model_not_found", reloadModel, st, code))
	pid := t.gw.p.pid()
	var took time.Duration
	for i, step := range []struct {
		write, route bool
		what         string
	}{{true, true, "route added"}, {false, true, "file unchanged"}, {true, false, "route removed"}, {true, true, "route added again"}} {
		if step.write {
			tmp := t.gwConfig + ".new"
			c.check(writeFile(tmp, t.gatewayYAML(t.gw.addr, t.admin, resAddrs(t), step.route)) == nil && os.Rename(tmp, t.gwConfig) == nil, "writing the new config failed")
		}
		lines := t.reloadLines()
		hup := time.Now()
		c.check(t.gw.p.signal(syscall.SIGHUP) == nil, "SIGHUP failed")
		c.check(waitUntil(ctx, 10*time.Second, func() bool { return t.reloadLines() > lines }), "SIGHUP %d (%s): no reload logged within 10 s", i+1, step.what)
		want, wantCode := 404, "model_not_found"
		if step.route {
			want, wantCode = 200, ""
		}
		var seen []string
		ok := waitUntil(ctx, 10*time.Second, func() bool {
			st, code = t.askModel(reloadModel)
			if s := fmt.Sprint(st, " ", code); len(seen) == 0 || seen[len(seen)-1] != s {
				seen = append(seen, s)
			}
			return st == want && code == wantCode
		})
		if i == 0 {
			took = time.Since(hup)
		}
		c.check(ok, "SIGHUP %d (%s): model %s did not answer %d within 10 s: it answered %v", i+1, step.what, reloadModel, want, seen)
		st, code = t.askModel(reloadModel)
		c.one(st, st == want && code == wantCode, fmt.Sprintf("SIGHUP %d (%s): model %s answered %d %s, want %d", i+1, step.what, reloadModel, st, code, want))
		c.check(l.waitOK(ctx, 60, 20*time.Second), "the load stalled after SIGHUP %d", i+1)
	}
	c.check(t.gw.p.running() && t.gw.p.pid() == pid, "the gateway exited")
	c.account(l.finish(), strict)
	c.observe("4 SIGHUPs (route added, file unchanged, route removed, added again) each took effect; the new route served %.1f s after the first; same process throughout", secs(took))
}

func resAddrs(t *topology) []string {
	var out []string
	for _, r := range t.res {
		out = append(out, r.addr)
	}
	return out
}

// caseSIGTERM: the gateway is stopped under load with long answers
// (150 tokens, about a second each) in flight, then started again. Its
// drain delay (limits.drain_delay, 1 s here) keeps it serving, answers
// with Connection: close, before its listener closes.
func caseSIGTERM(ctx context.Context, t *topology, c *caseRun) {
	l := startLoad(loadSpec{target: t.gw.addr, model: model, maxTokens: 150, limit: time.Minute})
	c.check(l.waitOK(ctx, 40, 30*time.Second), "the load got no answers")
	term := time.Now()
	c.check(t.gw.p.signal(syscall.SIGTERM) == nil, "SIGTERM failed")
	// Readiness fails at once: 503 while draining (or no answer once
	// the process is gone).
	ready := -1
	waitUntil(ctx, time.Second, func() bool { ready = t.status("http://"+t.admin+"/readyz", ""); return ready != 200 })
	c.check(ready != 200, "/readyz still 200 a second after SIGTERM")
	// During the drain delay a new connection is still served (load
	// balancers take the gateway out meanwhile); after it, refused.
	pause(ctx, 300*time.Millisecond)
	if nc, err := net.DialTimeout("tcp", t.gw.addr, time.Second); c.check(err == nil, "a new connection 0.3 s after SIGTERM, within the drain delay (%v), was refused: %v", drainDelay, err) {
		st := askOn(nc, noModel)
		nc.Close()
		c.check(st == 404, "a new connection 0.3 s after SIGTERM, within the drain delay (%v), got %d, want the gateway's 404", drainDelay, st)
	}
	pause(ctx, time.Until(term.Add(drainDelay+500*time.Millisecond)))
	if nc, err := net.DialTimeout("tcp", t.gw.addr, time.Second); err == nil {
		st := askOn(nc, noModel)
		nc.Close()
		c.check(st == 0 || !t.gw.p.running(), "a new connection %.1f s after SIGTERM, past the drain delay, was served: %d", secs(time.Since(term)), st)
	}
	c.check(t.gw.p.wait(30*time.Second) == nil, "the gateway did not exit within 30 s of SIGTERM")
	exited := time.Since(term)
	c.check(t.gw.p.exitCode() == 0, "the gateway exited with %d (%v)", t.gw.p.exitCode(), t.gw.p.err)
	recs := l.finish()
	inflight, draining, closeMissing, refused := 0, 0, 0, 0
	for _, r := range recs {
		if r.start.Before(term) && r.end.After(term) {
			inflight++
		}
		if !r.kind.h2() && r.outcome == outOK && r.head.After(term.Add(100*time.Millisecond)) {
			draining++
			if !r.close {
				closeMissing++
			}
		}
		if !r.start.Before(term) && r.outcome == outNoAnswer {
			refused++
		}
	}
	c.check(inflight > 0, "no request was in flight at SIGTERM: the case tested nothing")
	c.check(draining > 0, "no HTTP/1.1 answer was sent while draining: Connection: close went unchecked")
	c.check(closeMissing == 0, "%d of %d HTTP/1.1 answers sent while draining lacked Connection: close", closeMissing, draining)
	c.account(recs, func(r record) (verdict, string) {
		if !r.start.Before(term) && r.outcome == outNoAnswer {
			return expected, "refused after SIGTERM"
		}
		return strict(r)
	})
	restarted := time.Now()
	c.check(t.run(ctx, t.gw) == nil, "restart failed")
	c.check(t.settle(ctx, 30*time.Second) == nil, "the restarted gateway did not route to every engine")
	after := startLoad(loadSpec{target: t.gw.addr, model: model, limit: 30 * time.Second})
	c.check(after.waitOK(ctx, 50, 20*time.Second), "the restarted gateway served nothing")
	c.account(after.finish(), strict)
	c.observe("%d requests in flight at SIGTERM, all finished; %d HTTP/1.1 answers while draining, all with Connection: close; readiness %d right after; exit 0 after %.1f s; %d later requests refused; restarted and serving %.1f s later",
		inflight, draining, ready, secs(exited), refused, secs(time.Since(restarted)))
}
