package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// caseOversized (issue 12: what held): a request line and headers over
// max_header_bytes (default 16 KiB) get 431, a body over max_body_bytes
// (16 MiB) 413, over HTTP/1.1 (declared, chunked) and h2c; none reaches
// an engine; the gateway serves the next request.
func caseOversized(ctx context.Context, t *topology, c *caseRun) {
	url := "http://" + t.gw.addr + "/v1/chat/completions"
	small := string(chatBody(model, 1, false, ""))
	pad := strings.Repeat("x", 20<<10)
	headers := 0 // header checks answered 431 (or 414)
	a := rawHTTP(t.gw.addr, postRaw("/v1/chat/completions", "gw", small, "X-Pad", pad), 10*time.Second)
	headers += boolInt(a.status == 431)
	c.one(a.status, a.status == 431 && a.header.Get("X-Sim-Node") == "", fmt.Sprintf("HTTP/1.1, a 20 KiB header: %d %v", a.status, a.err))
	a = rawHTTP(t.gw.addr, postRaw("/v1/chat/completions?"+pad, "gw", small), 10*time.Second)
	headers += boolInt(a.status == 431 || a.status == 414)
	c.one(a.status, (a.status == 431 || a.status == 414) && a.header.Get("X-Sim-Node") == "", fmt.Sprintf("HTTP/1.1, a 20 KiB request line: %d %v", a.status, a.err))
	// A declared length over the limit, with less than 8 KiB of the
	// body sent: 413 as soon as the headers are read (as nginx does),
	// never forwarded, never a 408 at read_timeout.
	begin := time.Now()
	a = rawHTTP(t.gw.addr, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: "+
		strconv.Itoa(maxBodyBytes+1)+"\r\n\r\n"+small, 10*time.Second)
	c.one(a.status, a.status == 413 && a.header.Get("X-Sim-Node") == "", fmt.Sprintf("HTTP/1.1, Content-Length 16 MiB + 1, 8 KiB of it never sent: %d after %v %v", a.status, time.Since(begin), a.err))
	// A chunked body that grows past the limit.
	a = chunkedOver(t.gw.addr, maxBodyBytes+(1<<20))
	c.one(a.status, a.status == 413 && a.header.Get("X-Sim-Node") == "", fmt.Sprintf("HTTP/1.1, a chunked body of 17 MiB: %d %v", a.status, a.err))
	h1, h2 := clients("", 30*time.Second)
	defer h1.CloseIdleConnections()
	defer h2.CloseIdleConnections()
	// The same body sent in full.
	full := do(h1, h1Buffered, url, chatBody(model, 1, false, `,"pad":"`+strings.Repeat("x", maxBodyBytes)+`"`), nil)
	c.one(full.status, full.status == 413 && full.node == "", fmt.Sprintf("HTTP/1.1, a 16 MiB + body sent: %s", full))
	// h2c: eight headers of 2,150 bytes (17 KiB decoded, under 16 KiB
	// on the wire with HPACK's Huffman code: one HEADERS frame) get 431.
	// A header block that needs CONTINUATION frames past the limit, or
	// one string over it, closes the connection instead: the gateway's
	// HTTP/2 server stops reading it (x/net/http2's Framer, readMetaFrame,
	// as in net/http's server: PROTOCOL_ERROR or COMPRESSION_ERROR, the
	// CVE-2023-45288 guard).
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(small))
	req.Header.Set("Content-Type", "application/json")
	for i := range 8 {
		req.Header.Set(fmt.Sprintf("X-Pad-%d", i), pad[:2150])
	}
	st, hdr, _, err := exchange(h2, req)
	switch {
	case advertisedLimit(err):
		// The gateway's SETTINGS (MAX_HEADER_LIST_SIZE) reached the
		// client first, and Go's client kept the request to itself.
		headers++
		c.oneAs("refused by the client (the gateway's advertised limit)", true, "")
	default:
		headers += boolInt(st == 431)
		c.one(st, st == 431 && hdr.Get("X-Sim-Node") == "", fmt.Sprintf("h2c, 17 KiB of headers in one frame: %d %v", st, err))
	}
	_, h2b := clients("", 30*time.Second) // a connection of its own: it may be closed
	defer h2b.CloseIdleConnections()
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(small))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Pad", pad)
	st2, hdr, _, err := exchange(h2b, req)
	switch {
	case err != nil && (strings.Contains(err.Error(), "GOAWAY") || strings.Contains(err.Error(), "COMPRESSION_ERROR")):
		c.oneAs("connection closed (GOAWAY)", true, "")
	case advertisedLimit(err):
		c.oneAs("refused by the client (the gateway's advertised limit)", true, "")
	default:
		c.one(st2, st2 == 431 && hdr.Get("X-Sim-Node") == "", fmt.Sprintf("h2c, one 20 KiB header: %d %v", st2, err))
	}
	big := do(h2, h2Buffered, url, chatBody(model, 1, false, `,"pad":"`+strings.Repeat("x", maxBodyBytes)+`"`), nil)
	c.one(big.status, big.status == 413 && big.node == "", fmt.Sprintf("h2c, a 16 MiB + body: %s", big))
	for _, cl := range []struct {
		k kind
		c *http.Client
	}{{h1Buffered, h1}, {h2Buffered, h2}} {
		r := do(cl.c, cl.k, url, chatBody(model, 1, false, ""), nil)
		c.one(r.status, r.outcome == outOK && r.status == 200, fmt.Sprintf("%s after the oversized ones: %s", cl.k, r))
	}
	c.observe("of 3 header checks (20 KiB HTTP/1.1, 17 KiB h2c in one frame, a 20 KiB request line) %d answered 431/414; one 20 KiB h2c header: %d closed the connection, %d answered 431; of 4 body checks (a declared 16 MiB + 1 without the body, the body sent, 17 MiB chunked, 16 MiB + over h2c) %d answered 413; %d of 2 answered 200 after them",
		headers, c.row.Answered["connection closed (GOAWAY)"], boolInt(st2 == 431), c.row.Answered["413"], c.row.Answered["200"])
}

// advertisedLimit reports Go's HTTP/2 client refusing to send a header
// list over the limit the server advertised in its SETTINGS: the request
// never left the client (whether the SETTINGS came first is a race).
func advertisedLimit(err error) bool {
	return err != nil && strings.Contains(err.Error(), "larger than peer's advertised limit")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// chunkedOver POSTs a chunked body of n bytes in 64 KiB chunks, reading
// the answer as soon as it comes (the gateway may answer before the end).
func chunkedOver(addr string, n int) rawAnswer {
	conn, err := dialFrom("", addr)
	if err != nil {
		return rawAnswer{err: err}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	go func() { // owned by chunkedOver: ends when the connection closes
		w := bufio.NewWriterSize(conn, 128<<10)
		_, _ = io.WriteString(w, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		head := fmt.Sprintf("%x\r\n", len(chunk))
		for sent := 0; sent < n; sent += len(chunk) {
			if _, err := io.WriteString(w, head); err != nil {
				return
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if _, err := io.WriteString(w, "\r\n"); err != nil {
				return
			}
		}
		_, _ = io.WriteString(w, "0\r\n\r\n")
		_ = w.Flush()
	}()
	var seen bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(conn, &seen)), nil)
	if err != nil {
		return rawAnswer{err: err, raw: seen.String()}
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return rawAnswer{status: resp.StatusCode, header: resp.Header, body: string(b), raw: seen.String()}
}

// slowConn is one slowloris connection's end.
type slowConn struct {
	status int           // 0: closed without an answer
	after  time.Duration // from the first byte sent
	err    string
}

// slowloris opens a connection from source, sends fast, then trickles
// slow one byte every gap, reading what comes back; it returns when the
// gateway answered or closed the connection, or after wait.
func slowloris(addr, source, fast, slow string, gap, wait time.Duration) slowConn {
	conn, err := dialFrom(source, addr)
	if err != nil {
		return slowConn{err: err.Error()}
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(wait))
	begin := time.Now()
	done := make(chan struct{})
	go func() { // owned by slowloris: ends at done or on a write error
		tick := time.NewTicker(gap)
		defer tick.Stop()
		if _, err := io.WriteString(conn, fast); err != nil {
			return
		}
		for i := 0; i < len(slow); i++ {
			if _, err := conn.Write([]byte{slow[i]}); err != nil {
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	defer close(done)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	out := slowConn{after: time.Since(begin)}
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			out.err = "still open after " + wait.String()
			out.status = -1
			return out
		}
		return out // closed unanswered
	}
	resp.Body.Close()
	out.status = resp.StatusCode
	return out
}

// caseSlowloris (issue 12: what held): 30 HTTP/1.1 connections trickle
// their headers, and 30 their body, a byte every 200 ms; each is answered
// 408 or closed once read_timeout (3 s) has passed, while other clients
// are served.
func caseSlowloris(ctx context.Context, t *topology, c *caseRun) {
	const n, gap = 30, 200 * time.Millisecond
	l := startLoad(loadSpec{target: t.gw.addr, model: model, limit: time.Minute})
	c.check(l.waitOK(ctx, 50, 20*time.Second), "the load got no answers")
	body := string(chatBody(model, 1, false, ""))
	headers := "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nX-Slow: " + strings.Repeat("s", 200) + "\r\n\r\n"
	slowBody := "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	res := make([]slowConn, 2*n)
	okBefore := l.ok.Load()
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Go(func() {
			if i < n {
				res[i] = slowloris(t.gw.addr, "127.0.0.3", "", headers, gap, readTimeout+10*time.Second)
				return
			}
			// The headers at once, then the body a byte at a time.
			res[i] = slowloris(t.gw.addr, "127.0.0.3", slowBody, body, gap, readTimeout+10*time.Second)
		})
	}
	wg.Wait()
	during := l.ok.Load() - okBefore
	var latest time.Duration
	for i, r := range res {
		what := "header"
		if i >= n {
			what = "body"
		}
		switch {
		case r.status == -1:
			c.one(0, false, fmt.Sprintf("slow %s connection %d: %s", what, i, r.err))
		case r.status == 0 && r.err != "":
			c.one(0, false, fmt.Sprintf("slow %s connection %d: %s", what, i, r.err))
		case r.status == 0:
			c.oneAs("closed", true, "")
			latest = max(latest, r.after)
		default:
			c.oneAs(fmt.Sprint(r.status), r.status == 408, fmt.Sprintf("slow %s connection %d answered %d", what, i, r.status))
			latest = max(latest, r.after)
		}
	}
	c.check(latest < readTimeout+2*time.Second, "the last slow connection ended %.1f s after it began (read_timeout %v)", secs(latest), readTimeout)
	c.check(during >= 20, "other clients got only %d answers while the slow connections were open", during)
	c.account(l.finish(), strict)
	c.observe("%d slow connections (%d trickling headers, %d a body) ended by the gateway (408: %d, closed: %d), the last %.1f s after it began; %d answers to other clients meanwhile",
		2*n, n, n, c.row.Answered["408"], c.row.Answered["closed"], secs(latest), during)
}

// grpcFrame is a gRPC message: a ModelInferRequest naming model (field
// 1, model_name), which a KServe route is matched on.
func grpcFrame(model string) []byte {
	msg := append([]byte{0x0a, byte(len(model))}, model...)
	out := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(out[1:], uint32(len(msg)))
	return append(out, msg...)
}

// grpcCall sends one unary gRPC call over h2c and returns the HTTP
// status, the grpc-status ("" if none) and the node that answered.
func grpcCall(ctx context.Context, cl *http.Client, addr, method, model string) (status int, grpcStatus, node string, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+method, bytes.NewReader(grpcFrame(model)))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	resp, err := cl.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	gs := resp.Trailer.Get("Grpc-Status")
	if gs == "" {
		gs = resp.Header.Get("Grpc-Status") // a trailers-only answer
	}
	return resp.StatusCode, gs, resp.Header.Get("X-Sim-Node"), nil
}

// caseGRPCControl (item 1, gRPC): KServe control methods (repository
// load and unload, trace and log settings, shared memory, health and
// reflection services) sent for a route whose node serves gRPC (the
// recorder) are refused by the gateway with grpc-status 12
// (Unimplemented) and never reach the node; ModelInfer does.
func caseGRPCControl(ctx context.Context, t *topology, c *caseRun) {
	_, h2 := clients("", 10*time.Second)
	defer h2.CloseIdleConnections()
	before := len(t.recorder.requests())
	st, gs, node, err := grpcCall(ctx, h2, t.gw.addr, "/inference.GRPCInferenceService/ModelInfer", probeApp)
	seen := t.recorder.requests()[before:]
	c.one(st, st == 200 && gs == "0" && node == "probe-1" && len(seen) == 1 && seen[0].Path == "/inference.GRPCInferenceService/ModelInfer",
		fmt.Sprintf("ModelInfer (allowed): HTTP %d grpc-status %q via %q; the node saw %+v %v", st, gs, node, seen, err))
	before = len(t.recorder.requests())
	refused := []string{
		"/inference.GRPCInferenceService/RepositoryModelLoad", "/inference.GRPCInferenceService/RepositoryModelUnload",
		"/inference.GRPCInferenceService/RepositoryIndex", "/inference.GRPCInferenceService/TraceSetting",
		"/inference.GRPCInferenceService/LogSettings", "/inference.GRPCInferenceService/CudaSharedMemoryRegister",
		"/inference.GRPCInferenceService/SystemSharedMemoryRegister", "/inference.GRPCInferenceService/ModelStatistics",
		"/grpc.health.v1.Health/Check", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
		"/inference.GRPCInferenceService/../inference.GRPCInferenceService/RepositoryModelLoad",
	}
	for _, m := range refused {
		st, gs, node, err := grpcCall(ctx, h2, t.gw.addr, m, probeApp)
		label := fmt.Sprint(st)
		if gs != "" {
			label = "grpc-status " + gs
		}
		// 12 (Unimplemented): routed, refused by the route's allowlist;
		// 5 (NotFound): no route, the method carries no model field.
		ok := err == nil && node == "" && (gs == "12" || gs == "5" || st == 404 || st == 400)
		if err != nil {
			c.one(0, false, fmt.Sprintf("%s: %v", m, err))
			continue
		}
		c.oneAs(label, ok, fmt.Sprintf("%s: HTTP %d grpc-status %q via %q", m, st, gs, node))
	}
	if seen := t.recorder.requests()[before:]; len(seen) > 0 {
		c.fail("control methods reached the node: %+v", seen)
	}
	c.observe("ModelInfer answered %d (grpc-status %q) by the node; %d control methods refused (grpc-status 12, path not allowed: %d; 5, no route for a method without a model field: %d), none reached the node",
		st, gs, len(refused), c.row.Answered["grpc-status 12"], c.row.Answered["grpc-status 5"])
}
