package chaos

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The harness must be able to fail: these tests show that its client
// tells a whole answer from a cut or truncated one, that its judges
// count what they must as lost or wrong, and that the teardown check
// finds a process left behind.

// TestClassify: the load client's outcome for each way an answer can
// end, against real servers on loopback.
func TestClassify(t *testing.T) {
	sse := func(done bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n")
			if done {
				_, _ = io.WriteString(w, "data: [DONE]\n\n")
			}
		}
	}
	hijack := func(raw string) http.HandlerFunc { // what a killed engine leaves
		return func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			c, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, raw)
			c.Close()
		}
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()
	for _, tc := range []struct {
		name    string
		h       http.HandlerFunc
		k       kind
		want    outcome
		status  int
		noServe bool
	}{
		{"whole JSON", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{"choices":[{}]}`) }, h1Buffered, outOK, 200, false},
		{"JSON without choices", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, `{"id":"x"}`) }, h1Buffered, outCleanCut, 200, false},
		{"JSON body shorter than its Content-Length", hijack("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"choices\":"), h1Buffered, outCut, 200, false},
		{"stream with [DONE]", sse(true), h1Stream, outOK, 200, false},
		{"stream ended cleanly without [DONE]", sse(false), h1Stream, outCleanCut, 200, false},
		{"chunked stream without its terminal chunk", hijack("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata: \r\n"), h1Stream, outCut, 200, false},
		{"503", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }, h1Buffered, outStatus, 503, false},
		{"closed port", nil, h1Buffered, outNoAnswer, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := deadAddr
			if !tc.noServe {
				srv := httptest.NewServer(tc.h)
				defer srv.Close()
				addr = srv.Listener.Addr().String()
			}
			h1, _ := clients("", 5*time.Second)
			defer h1.CloseIdleConnections()
			r := do(h1, tc.k, "http://"+addr+"/", chatBody("m", 1, tc.k.stream(), ""), nil)
			if r.outcome != tc.want || r.status != tc.status {
				t.Fatalf("got %s (status %d, %s), want %s %d", r.outcome, r.status, r.err, tc.want, tc.status)
			}
			if r.end.IsZero() || r.end.Before(r.start) {
				t.Fatalf("times: start %v end %v", r.start, r.end)
			}
		})
	}
}

// TestJudges: what each judge makes of records.
func TestJudges(t *testing.T) {
	fault := time.Now()
	before, after := fault.Add(-time.Second), fault.Add(time.Second)
	rec := func(k kind, o outcome, status int, node string, start, end time.Time) record {
		return record{kind: k, outcome: o, status: status, node: node, start: start, end: end}
	}
	cut := allowCut("e1", fault, fault.Add(50*time.Millisecond))
	for _, tc := range []struct {
		name string
		j    judge
		r    record
		want verdict
	}{
		{"strict: whole 200", strict, rec(h1Buffered, outOK, 200, "e1", before, after), answered},
		{"strict: 503", strict, rec(h1Buffered, outStatus, 503, "", before, after), wrong},
		{"strict: cut", strict, rec(h1Stream, outCut, 200, "e1", before, after), lost},
		{"strict: clean end of a cut stream", strict, rec(h1Stream, outCleanCut, 200, "e1", before, after), wrong},
		{"strict: no answer", strict, rec(h2Buffered, outNoAnswer, 0, "", before, after), lost},
		{"allowCut: the victim's stream across the fault", cut, rec(h2Stream, outCut, 200, "e1", before, after), expected},
		{"allowCut: another node's cut stream", cut, rec(h2Stream, outCut, 200, "e2", before, after), lost},
		{"allowCut: the victim's stream cut before the fault", cut, rec(h1Stream, outCut, 200, "e1", before, before.Add(time.Millisecond)), lost},
		{"allowCut: the victim's stream started after the fault", cut, rec(h1Stream, outCut, 200, "e1", after, after), lost},
		{"allowCut: the victim's clean end", cut, rec(h1Stream, outCleanCut, 200, "e1", before, after), wrong},
	} {
		if v, _ := tc.j(tc.r); v != tc.want {
			t.Errorf("%s: verdict %d, want %d", tc.name, v, tc.want)
		}
	}
}

// TestAccountAndReport: a row counts its records and fails on one lost
// or wrong request; the report says so.
func TestAccountAndReport(t *testing.T) {
	now := time.Now()
	row := &Row{Case: "demo", Items: "1", Expected: "all 200"}
	c := &caseRun{row: row, t: &topology{cfg: Config{Log: io.Discard}}}
	c.account([]record{
		{kind: h1Buffered, outcome: outOK, status: 200, start: now, end: now},
		{kind: h1Buffered, outcome: outOK, status: 200, start: now, end: now},
		{kind: h2Stream, outcome: outCleanCut, status: 200, node: "e3", start: now, end: now},
	}, strict)
	c.one(404, true, "a refusal")
	if row.Sent != 4 || row.Answered["200"] != 2 || row.Answered["404"] != 1 || row.Wrong != 1 || row.Lost != 0 || row.Pass() {
		t.Fatalf("row %+v", row)
	}
	rep := &Report{Rows: []*Row{row, {Case: "ok", Sent: 1, Answered: map[string]int{"200": 1}}}}
	if !rep.Failed() {
		t.Fatal("a report with a wrong answer did not fail")
	}
	md := rep.Markdown()
	for _, want := range []string{"| 1 | demo | 1 | all 200 |", "**FAIL**", "**pass**", "wrong: h2-stream", "1 of 2 cases held; 5 requests sent, 0 lost, 1 wrong"} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
}

// TestLeftovers: the teardown check finds a child left running, and a
// grandchild that outlived its parent (found by the run's marker).
func TestLeftovers(t *testing.T) {
	if supported() != nil {
		t.Skip("the leftover check reads /proc (Linux)")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	if err := os.MkdirAll(dir+"/logs", 0o700); err != nil {
		t.Fatal(err)
	}
	p := &procs{bin: sh, dir: dir, runID: fmt.Sprintf("test-%d", time.Now().UnixNano())}
	// The child prints its own background child's pid, then waits.
	q, err := p.start("parent", "-c", "sleep 60 & echo $!; wait")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stopAll(time.Second) })
	var grandchild int
	ok := waitUntil(context.Background(), 5*time.Second, func() bool {
		f, err := os.Open(q.log)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		return sc.Scan() && func() bool { _, err := fmt.Sscan(sc.Text(), &grandchild); return err == nil }()
	})
	if !ok {
		t.Fatal("the child did not report its child")
	}
	t.Cleanup(func() { _ = syscall.Kill(grandchild, syscall.SIGKILL) })
	if left := p.leftovers(); len(left) != 2 {
		t.Fatalf("while both run: leftovers %q, want the child and the grandchild", left)
	}
	// Kill the child alone: its child lives on, orphaned, and is found.
	if err := q.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := q.wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	left := p.leftovers()
	if len(left) != 1 || !strings.Contains(left[0], fmt.Sprint(grandchild)) {
		t.Fatalf("after the child died: leftovers %q, want the grandchild %d", left, grandchild)
	}
	_ = syscall.Kill(grandchild, syscall.SIGKILL)
	if !waitUntil(context.Background(), 5*time.Second, func() bool { return len(p.leftovers()) == 0 }) {
		t.Fatalf("after the grandchild died: leftovers %q", p.leftovers())
	}
}

// TestParseBuild: the report's line about the binary, from what
// `switchyard version` prints.
func TestParseBuild(t *testing.T) {
	for _, tc := range []struct {
		line, commit string
		dirty        bool
	}{
		{"switchyard dev (commit 12668b94357a30307230612ebb7dc911d50f0788, go1.26.8 linux/amd64)", "12668b94357a30307230612ebb7dc911d50f0788", false},
		{"switchyard v1.2.3 (commit abc, modified, 2026-12-06T13:00:00Z, go1.26.8 linux/amd64)", "abc", true},
		{"switchyard dev (commit unknown, go1.26.8 linux/amd64)", "unknown", false},
		{"garbage", "", false},
	} {
		b := parseBuild(tc.line)
		if b.Commit != tc.commit || b.Dirty != tc.dirty || b.Line != tc.line {
			t.Errorf("%q: %+v, want commit %q dirty %v", tc.line, b, tc.commit, tc.dirty)
		}
	}
	if s := parseBuild("switchyard dev (commit abc, modified, go)").String(); !strings.Contains(s, "commit abc plus uncommitted changes (dirty tree)") {
		t.Errorf("String: %q", s)
	}
	if s := parseBuild("garbage").String(); !strings.Contains(s, "commit unknown") || !strings.Contains(s, "not run from a git work tree") {
		t.Errorf("String: %q", s)
	}
	b := parseBuild("switchyard dev (commit abc, go)")
	b.Tree, b.TreeDirty = "abc", true
	if s := b.String(); !strings.Contains(s, "work tree at abc with uncommitted changes") {
		t.Errorf("String: %q", s)
	}
}

// TestPKI: the run's certificates. A server of the test CA that requires
// client certificates (as the tier does) completes a handshake with a
// client certificate of the CA, and refuses none and the rogue CA's;
// every identity's files load.
func TestPKI(t *testing.T) {
	p, err := newPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range p.files {
		if _, err := tls.LoadX509KeyPair(f[0], f[1]); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{p.certs["server"]}, ClientCAs: p.pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	addr := ln.Addr().String()
	for _, tc := range []struct {
		id string
		ok bool
	}{{"harness", true}, {"bound-agent", true}, {"", false}, {"rogue", false}} {
		if err := handshake(addr, p.clientTLS(tc.id)); (err == nil) != tc.ok {
			t.Errorf("client certificate %q: handshake error %v, want success %v", tc.id, err, tc.ok)
		}
	}
	leaf, err := x509.ParseCertificate(p.certs["bound-agent"].Certificate[0])
	if err != nil || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != sanBoundAgent {
		t.Fatalf("bound-agent SANs %v %v", leaf.DNSNames, err)
	}
}
