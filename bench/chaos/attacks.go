package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// caseAllowlist (item 1): control paths and path tricks, sent as written
// over raw HTTP/1.1 and over h2c, each with a body naming the engines'
// model; then every engine must still be healthy and in its normal mode
// (a forwarded /_sim/crash or /_sim/fail?mode=hang would show).
func caseAllowlist(ctx context.Context, t *topology, c *caseRun) {
	body := string(chatBody(model, 4, false, ""))
	refused := []string{
		"/sleep", "/wake_up", "/v1/load_lora_adapter", "/v1/unload_lora_adapter", // vLLM
		"/update_weights_from_disk", "/flush_cache", // SGLang
		"/v2/repository/models/" + model + "/load", "/v2/repository/models/" + model + "/unload", // Triton
		"/_sim/crash", "/_sim/fail?mode=hang", // the sim's own
		"/v1/x/../../_sim/crash", "/v1/chat/completions/../../../_sim/fail?mode=hang",
		"/v1/%2e%2e/_sim/crash", "/v1/chat%2Fcompletions", "//_sim/crash", "/./_sim/crash",
		"/v1/../../etc/passwd", "/v1/%00/completions", "/v1/chat/completions%00/../../../_sim/crash",
	}
	refusedOK := func(status int, hdr http.Header, body string) bool {
		code := errorCode(body)
		return (status == 404 && code == "path_not_allowed" || status == 400 && code == "invalid_request") && hdr.Get("X-Sim-Node") == ""
	}
	for _, p := range refused {
		a := rawHTTP(t.gw.addr, postRaw(p, "gw", body), 5*time.Second)
		c.one(a.status, a.status != 0 && refusedOK(a.status, a.header, a.body),
			fmt.Sprintf("HTTP/1.1 POST %s: %d %q %v", p, a.status, strings.TrimSpace(a.body), a.err))
	}
	_, h2 := clients("", 5*time.Second)
	defer h2.CloseIdleConnections()
	for _, p := range []string{"/_sim/crash", "/v1/x/../../_sim/crash", "/v1/%2e%2e/_sim/fail?mode=hang", "/sleep"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+t.gw.addr+"/", strings.NewReader(body))
		req.URL.Opaque = p // sent as written
		req.Header.Set("Content-Type", "application/json")
		status, hdr, b, err := exchange(h2, req)
		c.one(status, status != 0 && refusedOK(status, hdr, b), fmt.Sprintf("h2 POST %s: %d %q %v", p, status, strings.TrimSpace(b), err))
	}
	// An allowed path with a doubled slash is normalised and served: the
	// refusals above are not a gateway that refuses everything.
	a := rawHTTP(t.gw.addr, postRaw("/v1//chat/completions", "gw", body), 10*time.Second)
	c.one(a.status, a.status == 200 && strings.HasPrefix(a.header.Get("X-Sim-Node"), "e"), fmt.Sprintf("POST /v1//chat/completions (allowed): %d %v", a.status, a.err))
	healthy := 0
	for i := range t.sims {
		st, err := t.simStats(i)
		if c.check(err == nil && st.Mode == "healthy", "engine %s after the attack: mode %q, %v", t.sims[i].name, st.Mode, err) {
			healthy++
		}
	}
	c.observe("%d paths refused, none forwarded; %d of %d engines healthy and in their normal mode afterwards", c.row.Answered["404"]+c.row.Answered["400"], healthy, len(t.sims))
}

// exchange sends req and reads the answer (status 0: none).
func exchange(cl *http.Client, req *http.Request) (int, http.Header, string, error) {
	resp, err := cl.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, string(b), err
}

// caseAdmin (item 8): the admin port's guards, each with the answer it
// must give, and a real action with the token to show the token works.
func caseAdmin(ctx context.Context, t *topology, c *caseRun) {
	exclude := "/admin/nodes/" + model + "/" + t.sims[4].name + "/exclude"
	include := "/admin/nodes/" + model + "/" + t.sims[4].name + "/include"
	for _, tc := range []struct {
		name, method, path, host, auth, ct string
		want                               int
	}{
		{"action without a token", "POST", exclude, "", "", "application/json", 401},
		{"action with a wrong token", "POST", exclude, "", "wrong-token-wrong-token", "application/json", 401},
		{"cross-site form post", "POST", exclude, "", t.adminTok, "application/x-www-form-urlencoded", 415},
		{"text/plain post", "POST", exclude, "", t.adminTok, "text/plain", 415},
		{"rebound Host on an action", "POST", exclude, "evil.example", t.adminTok, "application/json", 421},
		{"rebound Host reading nodes", "GET", "/admin/nodes", "evil.example:80", "", "", 421},
		{"pprof (off) with the token", "GET", "/debug/pprof/", "", t.adminTok, "", 404},
		{"pprof cmdline (off)", "GET", "/debug/pprof/cmdline", "", t.adminTok, "", 404},
		{"healthz, any Host", "GET", "/healthz", "evil.example", "", "", 200},
		{"readyz, any Host", "GET", "/readyz", "evil.example", "", "", 200},
		{"metrics, any Host", "GET", "/metrics", "evil.example", "", "", 200},
		{"action with the token", "POST", exclude, "", t.adminTok, "application/json", 200},
		{"undo with the token", "POST", include, "", t.adminTok, "application/json", 200},
	} {
		req, _ := http.NewRequestWithContext(ctx, tc.method, "http://"+t.admin+tc.path, strings.NewReader("{}"))
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", "Bearer "+tc.auth)
		}
		if tc.ct != "" {
			req.Header.Set("Content-Type", tc.ct)
		}
		status, _, b, err := exchange(t.ctl, req)
		c.one(status, status == tc.want, fmt.Sprintf("%s: %d (want %d) %.100q %v", tc.name, status, tc.want, b, err))
		if tc.name == "action with the token" {
			// The exclusion took: the node is out of picks until undone.
			ns, err := t.nodes(model)
			c.check(err == nil && contains(ns[t.sims[4].name].Excluded, "admin"), "after the authorised exclude, the node is %+v (%v)", ns[t.sims[4].name], err)
		}
	}
	c.observe("%d refusals as required, the authorised action took effect", c.row.Answered["401"]+c.row.Answered["415"]+c.row.Answered["421"]+c.row.Answered["404"])
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// caseCLTE (item 7): GET/HEAD with Content-Length and Transfer-Encoding
// refused; and the classic smuggle (POST with both, a second request in
// the body aimed at an engine control path) never reaches an engine.
func caseCLTE(_ context.Context, t *topology, c *caseRun) {
	for _, m := range []string{"GET /v1/models", "HEAD /v1/models", "HEAD /v1/chat/completions", "HEAD /health", "GET /health"} {
		a := rawHTTP(t.gw.addr, m+" HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 5*time.Second)
		c.one(a.status, a.status == 400 && a.header.Get("X-Sim-Node") == "", fmt.Sprintf("%s with CL and TE: %d %v", m, a.status, a.err))
	}
	smuggle := "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\nPOST /_sim/fail?mode=hang HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
	a := rawHTTP(t.gw.addr, smuggle, 5*time.Second)
	// Refused with 400, or the connection closed unanswered: both keep
	// the smuggled request away from the engines, which is checked next.
	label := "closed"
	if a.status != 0 {
		label = fmt.Sprint(a.status)
	}
	c.oneAs(label, a.status == 400 || a.status == 0, fmt.Sprintf("POST with CL and TE smuggling a control request: %d %v", a.status, a.err))
	for i := range t.sims {
		st, err := t.simStats(i)
		c.check(err == nil && st.Mode == "healthy", "engine %s after the smuggling attempt: mode %q %v", t.sims[i].name, st.Mode, err)
	}
	c.observe("GET and HEAD (%d) with both refused 400; the smuggled control request reached no engine (all healthy)", 5)
}

// caseAbsoluteForm (item 7): the recorder engine shows the Host the
// gateway sent upstream for an absolute-form request target.
func caseAbsoluteForm(_ context.Context, t *topology, c *caseRun) {
	before := len(t.recorder.requests())
	body := string(chatBody(probeApp, 1, false, ""))
	a := rawHTTP(t.gw.addr, postRaw("http://evil.example/v1/chat/completions", "real.example", body), 10*time.Second)
	seen := t.recorder.requests()[before:]
	host := ""
	if len(seen) > 0 {
		host = seen[len(seen)-1].Host
	}
	c.one(a.status, a.status == 200 && len(seen) == 1 && host == "real.example",
		fmt.Sprintf("absolute-form POST http://evil.example/... with Host real.example: %d; the engine saw %d requests, Host %q %v", a.status, len(seen), host, a.err))
	c.observe("the engine saw Host %q", host)
}

// caseHopHeaders (item 7): the recorder answers with hop-by-hop headers;
// clients over HTTP/1.1 and h2c must not get them.
func caseHopHeaders(ctx context.Context, t *topology, c *caseRun) {
	h1, h2 := clients("", 10*time.Second)
	defer h1.CloseIdleConnections()
	defer h2.CloseIdleConnections()
	for _, cl := range []struct {
		name string
		c    *http.Client
	}{{"HTTP/1.1", h1}, {"h2c", h2}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+t.gw.addr+"/v1/chat/completions", strings.NewReader(string(chatBody(probeApp, 1, false, ""))))
		req.Header.Set("Content-Type", "application/json")
		status, hdr, _, err := exchange(cl.c, req)
		var leaked []string
		for h := range hopHeaders {
			if hdr.Get(h) != "" {
				leaked = append(leaked, h+": "+hdr.Get(h))
			}
		}
		c.one(status, status == 200 && len(leaked) == 0 && hdr.Get("X-Kept") == "yes" && hdr.Get("X-Sim-Node") == "probe-1",
			fmt.Sprintf("%s: %d, hop-by-hop headers passed on %v, X-Kept %q %v", cl.name, status, leaked, hdr.Get("X-Kept"), err))
	}
	c.observe("no hop-by-hop header reached the clients; X-Kept did")
}

// caseNoEcho (item 7): malformed requests carrying a secret in
// Authorization get a 400 that does not contain it.
func caseNoEcho(_ context.Context, t *topology, c *caseRun) {
	secret := "sk-chaos-" + token()
	for _, p := range []string{
		"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + secret + "\r\nContent-Length: nope\r\n\r\n",
		"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + secret + "\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"model\":",
		"GET /v1/models HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + secret + "\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	} {
		a := rawHTTP(t.gw.addr, p, 5*time.Second)
		leak := strings.Contains(a.raw, secret) || strings.Contains(strings.ToLower(a.raw), "authorization")
		c.one(a.status, a.status == 400 && !leak, fmt.Sprintf("%.40q: %d, echoes the secret %v %v", p, a.status, leak, a.err))
	}
	c.observe("400s without the Authorization value")
}

// caseLoop (item 7): the loop route's only node is the gateway itself.
func caseLoop(_ context.Context, t *topology, c *caseRun) {
	ns, err := t.nodes(loopApp)
	c.check(err == nil && len(ns) == 1 && ns["loop-1"].HTTP == t.gw.addr, "the loop node is not announced as the gateway: %+v %v", ns, err)
	for range 3 {
		begin := time.Now()
		a := rawHTTP(t.gw.addr, postRaw("/v1/chat/completions", "gw", string(chatBody(loopApp, 1, false, ""))), 10*time.Second)
		took := time.Since(begin)
		c.one(a.status, a.status == 508 && errorCode(a.body) == "loop_detected" && took < 2*time.Second,
			fmt.Sprintf("request to the loop route: %d %q after %v %v", a.status, strings.TrimSpace(a.body), took, a.err))
	}
	c.observe("508 loop_detected")
}
