package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// HTTP API. Every path but /healthz needs a credential: "Authorization:
// Bearer TOKEN" and/or a verified client certificate (see CredentialsFile).
// Agents may post heartbeats of their apps and ask their drain status;
// readers may read the lists of their apps, acknowledge and ask drain
// status; peers answer drain fan-outs; the shared token may do everything.
// A refusal is 401 (no or unknown credential) or 403 (not allowed), with a
// JSON body naming the reason:
//
//	POST /v1/heartbeat                  one JSON heartbeat → 204, or 4xx {"error","reason","field"[,"incarnation"]}
//	GET  /v1/apps                       apps with their version and node count
//	GET  /v1/apps/{app}/list            full snapshot (OnlineList)
//	GET  /v1/apps/{app}/delta           ?since=V&epoch=E&wait=25s&subscriber=ID&format=bin|json[&wire=2&wire=3]
//	                                    changes since V; waits up to wait for one (long-poll);
//	                                    a reset (full list) on an unknown epoch or old V.
//	                                    The request acknowledges V for the subscriber.
//	POST /v1/apps/{app}/ack             ?subscriber=ID&epoch=E&version=V
//	GET  /v1/apps/{app}/drain           ?node=ID[&local=1] → DrainStatus over the tier
//	GET  /metrics                       Prometheus text
//	GET  /healthz                       200 "ok"
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/heartbeat", s.handleHeartbeat)
	mux.HandleFunc("GET /v1/apps", s.handleApps)
	mux.HandleFunc("GET /v1/apps/{app}/list", s.handleList)
	mux.HandleFunc("GET /v1/apps/{app}/delta", s.handleDelta)
	mux.HandleFunc("POST /v1/apps/{app}/ack", s.handleAck)
	mux.HandleFunc("GET /v1/apps/{app}/drain", s.handleDrain)
	mux.HandleFunc("GET /metrics", s.handleMetrics)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			_, _ = io.WriteString(w, "ok\n")
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			tok = ""
		}
		cred, rf := s.creds.Load().resolve(hashToken(tok), peerSANs(requestTLS(r)))
		if rf != nil {
			s.refuseHTTP(w, r, rf)
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), credKey{}, cred)))
	})
}

type credKey struct{}

// credOf returns the request's credential (set by handler; nobody, who
// may do nothing, if a handler were ever reached without one).
func credOf(r *http.Request) *credential {
	if c, _ := r.Context().Value(credKey{}).(*credential); c != nil {
		return c
	}
	return nobody
}

// mayRead checks that the request's credential may read app's list; on a
// refusal it answers and returns false.
func (s *Server) mayRead(w http.ResponseWriter, r *http.Request, app string) bool {
	c := credOf(r)
	rf := c.allow(roleReader, "reading lists")
	if rf == nil {
		rf = c.checkApp(app)
	}
	if rf != nil {
		s.refuseHTTP(w, r, rf)
		return false
	}
	return true
}

// errBody is the JSON body of every refusal: the error, its reason (a
// rejection counter's label), the field at fault and, for a heartbeat
// refused for its incarnation, the incarnation to use instead.
type errBody struct {
	Error       string `json:"error"`
	Reason      string `json:"reason,omitempty"`
	Field       string `json:"field,omitempty"`
	Incarnation uint64 `json:"incarnation,omitempty"`
}

func writeErr(w http.ResponseWriter, code int, err error) {
	b := errBody{Error: err.Error()}
	var ie *discovery.InputError
	var rf *refusal
	switch {
	case errors.As(err, &rf):
		b.Reason, b.Field, b.Incarnation = rf.reason.String(), rf.field, rf.hint
	case errors.As(err, &ie):
		b.Reason, b.Field = ie.Reason.String(), ie.Field
	case errors.Is(err, discovery.ErrBadToken):
		b.Reason = discovery.ReasonBadToken.String()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, discovery.MaxHeartbeatBytes+1))
	if err != nil {
		s.rejections.Add(discovery.ReasonMalformed)
		writeErr(w, http.StatusBadRequest, fmt.Errorf("resource: read body: %w", err))
		return
	}
	var hb discovery.Heartbeat
	if err := discovery.DecodeHeartbeatJSON(body, &hb); err != nil {
		reason := discovery.ReasonOf(err)
		s.rejections.Add(reason)
		code := http.StatusBadRequest
		if reason == discovery.ReasonOversized && len(body) > discovery.MaxHeartbeatBytes {
			code = http.StatusRequestEntityTooLarge
		}
		writeErr(w, code, err)
		return
	}
	if rf := s.ingest(&hb, s.now().UnixNano(), credOf(r)); rf != nil {
		s.rejections.Add(rf.reason)
		s.logRefusal(rf, &hb, r.RemoteAddr)
		writeErr(w, rf.status(), rf)
		return
	}
	s.stats.heartbeats.Add(1)
	s.stats.httpBeats.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

type appInfo struct {
	App         string `json:"app"`
	Epoch       uint64 `json:"epoch"`
	Version     uint64 `json:"version"`
	Nodes       int    `json:"nodes"`
	Subscribers int    `json:"subscribers"`
}

func (s *Server) handleApps(w http.ResponseWriter, r *http.Request) {
	c := credOf(r)
	if rf := c.allow(roleReader, "listing apps"); rf != nil {
		s.refuseHTTP(w, r, rf)
		return
	}
	var out []appInfo
	for _, a := range s.appList() {
		if !c.allowsApp(a.name) {
			continue
		}
		a.mu.Lock()
		out = append(out, appInfo{a.name, s.id, a.version, a.live, len(a.subs)})
		a.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].App < out[j].App })
	writeJSON(w, out)
}

// appName returns the {app} path value after checking it; on a bad name it
// answers 400 and returns false.
func (s *Server) appName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("app")
	probe := discovery.Heartbeat{ID: "x", App: name}
	if err := probe.Validate(); err != nil {
		var ie *discovery.InputError
		if errors.As(err, &ie) && ie.Field == "app" {
			s.rejections.Add(ie.Reason)
			writeErr(w, http.StatusBadRequest, err)
			return "", false
		}
	}
	return name, true
}

// refuseHTTP counts, logs and answers a refused request.
func (s *Server) refuseHTTP(w http.ResponseWriter, r *http.Request, rf *refusal) {
	s.rejections.Add(rf.reason)
	s.limiter.log(s.log, s.now().UnixNano(), slog.LevelWarn, "request refused",
		"reason", rf.reason.String(), "field", rf.field, "problem", rf.problem, "path", r.URL.Path, "remote", r.RemoteAddr)
	writeErr(w, rf.status(), rf)
}

// emptySnapshot is the list of an app this instance does not hold.
func (s *Server) emptySnapshot(name string) discovery.Delta {
	s.appsMu.RLock()
	defer s.appsMu.RUnlock()
	return discovery.Delta{App: name, Epoch: s.id, To: s.versionFloor, Reset: true}
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	name, ok := s.appName(w, r)
	if !ok || !s.mayRead(w, r, name) {
		return
	}
	var d discovery.Delta
	if a, _ := s.lockApp(name, false, false); a != nil {
		d = a.snapshotLocked(s.id)
		a.mu.Unlock()
	} else {
		d = s.emptySnapshot(name)
	}
	sort.Slice(d.Upserts, func(i, j int) bool { return d.Upserts[i].ID < d.Upserts[j].ID })
	if r.URL.Query().Get("format") == "bin" {
		writeBin(w, &d, s.binVersion(r))
		return
	}
	l := discovery.OnlineList{App: d.App, Epoch: d.Epoch, Version: d.To, Nodes: make([]*discovery.Node, len(d.Upserts))}
	for i := range d.Upserts {
		l.Nodes[i] = &d.Upserts[i]
	}
	writeJSON(w, l)
}

var binPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// binVersion is the binary delta version a read asks for: the newest of
// its "wire" values this server speaks ("wire=2" from the client of issue
// 13, "wire=2&wire=3" from that of issue 14, so a server that knows only
// version 2 reads the first), or version 1 (older clients, which cannot
// decode version 2).
func (s *Server) binVersion(r *http.Request) discovery.Version {
	v := discovery.Version1
	for _, w := range r.URL.Query()["wire"] {
		if n, err := strconv.Atoi(w); err == nil && n > int(v) && n <= int(s.wireMax) {
			v = discovery.Version(n)
		}
	}
	return v
}

func writeBin(w http.ResponseWriter, d *discovery.Delta, v discovery.Version) {
	bp := binPool.Get().(*[]byte)
	b := discovery.AppendDelta((*bp)[:0], d, v)
	w.Header().Set("Content-Type", "application/x-switchyard-delta")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
	if cap(b) <= 16<<20 {
		*bp = b
		binPool.Put(bp)
	}
}

func queryUint(r *http.Request, name string) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, &discovery.InputError{Reason: discovery.ReasonWrongType, Field: name, Problem: fmt.Sprintf("%q is not an unsigned integer", v)}
	}
	return n, nil
}

func subscriberParam(r *http.Request) (string, error) {
	sub := r.URL.Query().Get("subscriber")
	if len(sub) > 128 {
		return "", &discovery.InputError{Reason: discovery.ReasonOversized, Field: "subscriber", Problem: "longer than 128 bytes"}
	}
	return sub, nil
}

// ackLocked records that subscriber sub applied version v of epoch. A new
// subscriber beyond MaxSubscribersPerApp is refused.
func (s *Server) ackLocked(a *app, sub string, epoch, v uint64, now int64) (*subscriber, *refusal) {
	if sub == "" {
		return nil, nil
	}
	sb := a.subs[sub]
	if sb == nil {
		if len(a.subs) >= s.cfg.MaxSubscribersPerApp {
			return nil, refuse(discovery.ReasonLimit, "subscriber", "app %q has %d subscribers, its limit (MaxSubscribersPerApp)", a.name, len(a.subs))
		}
		sb = &subscriber{}
		a.subs[sub] = sb
	}
	sb.lastSeen = now
	if epoch == s.id && v <= a.version && v > sb.acked {
		sb.acked = v
	}
	return sb, nil
}

func (s *Server) handleDelta(w http.ResponseWriter, r *http.Request) {
	name, ok := s.appName(w, r)
	if !ok || !s.mayRead(w, r, name) {
		return
	}
	since, err1 := queryUint(r, "since")
	epoch, err2 := queryUint(r, "epoch")
	sub, err3 := subscriberParam(r)
	var wait time.Duration
	var err4 error
	if v := r.URL.Query().Get("wait"); v != "" {
		if wait, err4 = time.ParseDuration(v); err4 != nil || wait < 0 {
			err4 = &discovery.InputError{Reason: discovery.ReasonWrongType, Field: "wait", Problem: fmt.Sprintf("%q is not a duration", v)}
		}
	}
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		s.rejections.Add(discovery.ReasonOf(err))
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	wait = min(wait, s.cfg.MaxWait)
	var timer *time.Timer
	var expired <-chan time.Time
	if wait > 0 {
		timer = time.NewTimer(wait)
		defer timer.Stop()
		expired = timer.C
	}
	s.stats.watches.Add(1)
	defer s.stats.watches.Add(-1)

	a, rf := s.lockApp(name, true, false)
	if rf != nil {
		s.refuseHTTP(w, r, rf)
		return
	}
	sb, rf := s.ackLocked(a, sub, epoch, since, s.now().UnixNano())
	if rf != nil {
		a.mu.Unlock()
		s.refuseHTTP(w, r, rf)
		return
	}
	if sb != nil {
		sb.watching++
	}
	var d discovery.Delta
	for {
		if epoch != s.id || since != a.version || wait <= 0 {
			d = a.deltaLocked(s.id, epoch, since)
			break
		}
		ch := a.notify
		a.waiters++ // the sweep does not free an app while a long-poll waits
		a.mu.Unlock()
		timedOut := false
		select {
		case <-ch:
		case <-expired:
			timedOut = true
		case <-r.Context().Done():
			timedOut = true
		}
		a.mu.Lock()
		a.waiters--
		if timedOut {
			d = a.deltaLocked(s.id, epoch, since)
			break
		}
	}
	if sb != nil {
		sb.watching--
		sb.lastSeen = s.now().UnixNano()
	}
	a.mu.Unlock()
	if r.Context().Err() != nil {
		return
	}
	if r.URL.Query().Get("format") == "bin" {
		writeBin(w, &d, s.binVersion(r))
		return
	}
	writeJSON(w, d)
}

func (s *Server) handleAck(w http.ResponseWriter, r *http.Request) {
	name, ok := s.appName(w, r)
	if !ok || !s.mayRead(w, r, name) {
		return
	}
	v, err1 := queryUint(r, "version")
	epoch, err2 := queryUint(r, "epoch")
	sub, err3 := subscriberParam(r)
	if err := errors.Join(err1, err2, err3); err != nil || sub == "" {
		if err == nil {
			err = &discovery.InputError{Reason: discovery.ReasonInvalid, Field: "subscriber", Problem: "empty"}
		}
		s.rejections.Add(discovery.ReasonOf(err))
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	a, _ := s.lockApp(name, false, false)
	if a == nil {
		w.WriteHeader(http.StatusNoContent) // nothing listed here to acknowledge
		return
	}
	_, rf := s.ackLocked(a, sub, epoch, v, s.now().UnixNano())
	a.mu.Unlock()
	if rf != nil {
		s.refuseHTTP(w, r, rf)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// localDrain answers the drain question for this instance's subscribers.
func (s *Server) localDrain(name, node string) discovery.InstanceDrain {
	now := s.now().UnixNano()
	ttl := int64(s.cfg.SubscriberTTL)
	res := discovery.InstanceDrain{Instance: s.id}
	a, _ := s.lockApp(name, false, false)
	if a == nil {
		res.Done = true // no subscriber watches the app here
		return res
	}
	defer a.mu.Unlock()
	if p := a.pending[node]; p != nil && (p.removed || p.node.State.Target()) {
		res.Reason = "a change of the node is waiting for the window"
		return res
	}
	need := a.logStart
	if rec := a.nodes[node]; rec != nil {
		if !rec.removed && rec.node.State.Target() {
			res.Reason = fmt.Sprintf("the node is still a target (%s) at version %d", rec.node.State, rec.node.Version)
			return res
		}
		need = rec.nonTarget
	}
	res.Version = need
	for id, sb := range a.subs {
		if sb.watching == 0 && now-sb.lastSeen > ttl {
			continue
		}
		if sb.acked < need {
			res.Pending = append(res.Pending, id)
		}
	}
	sort.Strings(res.Pending)
	res.Done = len(res.Pending) == 0
	if !res.Done {
		res.Reason = fmt.Sprintf("%d subscriber(s) have not acknowledged version %d", len(res.Pending), need)
	}
	return res
}

func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
	name, ok := s.appName(w, r)
	if !ok {
		return
	}
	// Agents and readers ask about their apps; peers relay fan-outs.
	if c := credOf(r); c.role != rolePeer {
		if rf := c.checkApp(name); rf != nil {
			s.refuseHTTP(w, r, rf)
			return
		}
	}
	node := r.URL.Query().Get("node")
	if node == "" || len(node) > discovery.MaxIDLen {
		err := &discovery.InputError{Reason: discovery.ReasonInvalid, Field: "node", Problem: "empty or too long"}
		s.rejections.Add(err.Reason)
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	local := s.localDrain(name, node)
	if r.URL.Query().Get("local") == "1" {
		writeJSON(w, local)
		return
	}
	st := discovery.DrainStatus{App: name, Node: node, Instances: []discovery.InstanceDrain{local}}
	peers := s.peers.connected()
	results := make([]discovery.InstanceDrain, len(peers))
	var wg sync.WaitGroup
	for i, addr := range peers {
		wg.Go(func() { results[i] = s.peerDrain(r.Context(), addr, name, node) })
	}
	wg.Wait()
	st.Instances = append(st.Instances, results...)
	st.Done = true
	for _, in := range st.Instances {
		if !in.Done && !in.Unreachable {
			st.Done = false
		}
	}
	writeJSON(w, st)
}

var drainClient = &http.Client{Timeout: time.Second}

// peerDrain asks one peer for its local drain status.
func (s *Server) peerDrain(ctx context.Context, addr, app, node string) discovery.InstanceDrain {
	scheme := "http"
	client := drainClient
	if s.cfg.PeerTLS != nil {
		scheme = "https"
		client = &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: s.cfg.PeerTLS}}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	u := fmt.Sprintf("%s://%s/v1/apps/%s/drain?local=1&node=%s", scheme, addr, url.PathEscape(app), url.QueryEscape(node))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	res := discovery.InstanceDrain{Unreachable: true}
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	req.Header.Set("Authorization", "Bearer "+s.cfg.peerToken())
	resp, err := client.Do(req)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		res.Reason = resp.Status
		return res
	}
	var out discovery.InstanceDrain
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		res.Reason = err.Error()
		return res
	}
	return out
}
