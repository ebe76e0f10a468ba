package chaos

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// pause waits d (a fault's duration, not a synchronisation), or until ctx
// ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// engineTotals sums running requests and generated tokens over the
// engines (-1, -1 when one does not answer).
func (t *topology) engineTotals() (running, tokens int64) {
	for i := range t.sims {
		s, err := t.simStats(i)
		if err != nil {
			return -1, -1
		}
		running += s.Running + s.Waiting
		tokens += s.GeneratedTokens
	}
	return running, tokens
}

// caseCancel (item 5): long streamed generations (2,000 tokens, 10 s) are
// abandoned after their first token: h2 clients reset their streams,
// HTTP/1.1 clients close their connections. The engines must stop
// generating: nothing running, no token generated, soon after.
func caseCancel(ctx context.Context, t *topology, c *caseRun) {
	const perH1, perH2, maxTok = 8, 16, 2000
	if !c.check(waitUntil(ctx, 15*time.Second, func() bool { r, _ := t.engineTotals(); return r == 0 }), "the engines were not idle before the case") {
		return
	}
	_, tokens0 := t.engineTotals()
	h1, h2 := clients("", 30*time.Second)
	defer h1.CloseIdleConnections()
	defer h2.CloseIdleConnections()
	type result struct {
		first bool
		err   string
	}
	n := perH1 + perH2
	results := make(chan result, n)
	firsts := make(chan struct{}, n)
	var cancels []context.CancelFunc
	var wg sync.WaitGroup
	for i := range n {
		cl := h2
		if i < perH1 {
			cl = h1
		}
		rctx, cancel := context.WithCancel(ctx)
		cancels = append(cancels, cancel)
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(rctx, http.MethodPost, "http://"+t.gw.addr+"/v1/chat/completions", bytes.NewReader(chatBody(model, maxTok, true, "")))
			req.Header.Set("Content-Type", "application/json")
			resp, err := cl.Do(req)
			if err != nil {
				results <- result{err: err.Error()}
				return
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					results <- result{err: "before the first token: " + err.Error()}
					return
				}
				if strings.Contains(line, `"content":"Hello"`) { // the first token
					break
				}
			}
			firsts <- struct{}{}
			<-rctx.Done()
			_, err = io.Copy(io.Discard, br) // fails: the request was cancelled
			results <- result{first: true, err: fmt.Sprint(err)}
		})
	}
	got := 0
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
wait:
	for got < n {
		select {
		case <-firsts:
			got++
		case <-deadline.C:
			break wait
		}
	}
	running, _ := t.engineTotals()
	cancelled := time.Now()
	for _, cancel := range cancels {
		cancel()
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r.first {
			c.oneAs("cancelled after the first token", true, "")
		} else {
			c.one(0, false, "a stream that never got its first token: "+r.err)
		}
	}
	c.check(running >= int64(got), "only %d requests running on the engines for %d streams that got a token", running, got)
	stopped := waitUntil(ctx, 3*time.Second, func() bool { r, _ := t.engineTotals(); return r == 0 })
	took := time.Since(cancelled)
	_, tokensA := t.engineTotals()
	pause(ctx, time.Second)
	_, tokensB := t.engineTotals()
	c.check(stopped, "requests still running on the engines 3 s after the cancellations")
	c.check(tokensB == tokensA, "the engines generated %d tokens more between 3 and 4 s after the cancellations", tokensB-tokensA)
	generated := tokensB - tokens0
	c.check(generated < int64(n*maxTok/4), "the engines generated %d tokens for %d abandoned requests (%d each if run to the end)", generated, n, maxTok)
	c.observe("%d streams (%d HTTP/1.1, %d h2) cancelled after their first token: engines idle %.1f s later; %d tokens generated in all (of %d had they run on)", got, perH1, perH2, secs(took), generated, n*maxTok)
}

// slowStream is one attack stream's outcome.
type slowStream struct {
	status int
	at     time.Time
	reset  bool
}

// slowH2Conn opens an h2c connection from source and starts streams
// POST requests whose body never ends (one DATA frame, no END_STREAM);
// it returns when every stream was answered or reset, or wait passed.
func slowH2Conn(addr, source string, streams int, wait time.Duration) (map[uint32]*slowStream, time.Time, error) {
	c, err := dialFrom(source, addr)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	bw := bufio.NewWriter(c)
	fr := http2.NewFramer(bw, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var wmu sync.Mutex // the framer's write side
	write := func(f func() error) error {
		wmu.Lock()
		defer wmu.Unlock()
		if err := f(); err != nil {
			return err
		}
		return bw.Flush()
	}
	if _, err := bw.WriteString(http2.ClientPreface); err != nil {
		return nil, time.Time{}, err
	}
	if err := write(func() error { return fr.WriteSettings() }); err != nil {
		return nil, time.Time{}, err
	}
	var mu sync.Mutex
	out := map[uint32]*slowStream{}
	finished := make(chan struct{})
	readErr := make(chan error, 1)
	go func() { // owned by slowH2Conn: ends when the connection closes
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				readErr <- err
				return
			}
			mu.Lock()
			switch f := f.(type) {
			case *http2.SettingsFrame:
				if !f.IsAck() {
					_ = write(func() error { return fr.WriteSettingsAck() })
				}
			case *http2.PingFrame:
				if !f.IsAck() {
					_ = write(func() error { return fr.WritePing(true, f.Data) })
				}
			case *http2.MetaHeadersFrame:
				if s := out[f.StreamID]; s != nil && s.status == 0 {
					fmt.Sscan(f.PseudoValue("status"), &s.status)
					s.at = time.Now()
				}
			case *http2.RSTStreamFrame:
				if s := out[f.StreamID]; s != nil && s.status == 0 {
					s.reset, s.at = true, time.Now()
				}
			}
			done := len(out) == streams
			for _, s := range out {
				done = done && (s.status != 0 || s.reset)
			}
			mu.Unlock()
			if done {
				close(finished)
				_, _ = io.Copy(io.Discard, c) // until the deferred close
				readErr <- nil
				return
			}
		}
	}()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	sent := time.Now()
	for i := range streams {
		id := uint32(2*i + 1)
		hb.Reset()
		for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":authority", addr}, {":path", "/v1/chat/completions"}, {"content-type", "application/json"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		mu.Lock()
		out[id] = &slowStream{}
		mu.Unlock()
		err := write(func() error {
			if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
				return err
			}
			return fr.WriteData(id, false, []byte(`{"model":"`+model+`",`))
		})
		if err != nil {
			return out, sent, err
		}
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-finished:
	case err = <-readErr:
	case <-t.C:
		err = errors.New("not every stream was answered in time")
	}
	mu.Lock()
	defer mu.Unlock()
	cp := make(map[uint32]*slowStream, len(out))
	for k, v := range out {
		s := *v
		cp[k] = &s
	}
	return cp, sent, err
}

// caseSlowH2Bodies (item 4): 2 connections × 250 h2 streams whose bodies
// never end, more than max_concurrent, while other clients are served.
func caseSlowH2Bodies(ctx context.Context, t *topology, c *caseRun) {
	const conns, streams = 2, 250
	l := startLoad(loadSpec{target: t.gw.addr, model: model, limit: time.Minute})
	c.check(l.waitOK(ctx, 50, 20*time.Second), "the load got no answers")
	type connResult struct {
		out  map[uint32]*slowStream
		sent time.Time
		err  error
	}
	res := make(chan connResult, conns)
	for range conns {
		go func() {
			out, sent, err := slowH2Conn(t.gw.addr, "127.0.0.2", streams, readTimeout+10*time.Second)
			res <- connResult{out, sent, err}
		}()
	}
	// While the bodies hang (before read_timeout), the others are served.
	okBefore := l.ok.Load()
	pause(ctx, readTimeout-500*time.Millisecond)
	during := l.ok.Load() - okBefore
	var latest time.Duration
	for range conns {
		r := <-res
		c.check(r.err == nil, "attack connection: %v", r.err)
		for id, s := range r.out {
			switch {
			case s.status == 408:
				c.oneAs("408", true, "")
				latest = max(latest, s.at.Sub(r.sent))
			case s.status != 0:
				c.oneAs(fmt.Sprint(s.status), false, fmt.Sprintf("slow stream %d answered %d", id, s.status))
			case s.reset:
				c.oneAs("reset", false, fmt.Sprintf("slow stream %d reset without an answer", id))
			default:
				c.one(0, false, fmt.Sprintf("slow stream %d never answered", id))
			}
		}
		if n := len(r.out); n < streams {
			for range streams - n {
				c.one(0, false, "a slow stream that could not be sent")
			}
		}
	}
	c.check(latest < readTimeout+3*time.Second, "the last slow stream was answered %.1f s after it was sent (read_timeout %v)", secs(latest), readTimeout)
	c.check(during >= 20, "other clients got only %d answers while the slow bodies were pending", during)
	c.account(l.finish(), strict)
	c.observe("%d slow streams answered 408, the last %.1f s after it was sent; %d answers to other clients in the %.1f s the bodies hung", c.row.Answered["408"], secs(latest), during, secs(readTimeout-500*time.Millisecond))
}

// caseBodyBudget (item 6): 24 concurrent 12 MiB bodies against a 32 MiB
// budget for buffered bodies; the gateway's RSS is sampled throughout.
func caseBodyBudget(ctx context.Context, t *topology, c *caseRun) {
	const n, size = 24, 12 << 20
	pid := t.gw.p.pid()
	rss0, _, err := memory(pid)
	if !c.check(err == nil, "the gateway's memory: %v", err) {
		return
	}
	stop := make(chan struct{})
	peakc := make(chan int64, 1)
	go func() { // owned by this case: ends when stop closes
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		peak := rss0
		for {
			select {
			case <-stop:
				peakc <- peak
				return
			case <-tick.C:
				if r, _, err := memory(pid); err == nil {
					peak = max(peak, r)
				}
			}
		}
	}()
	h1, _ := clients("127.0.0.4", 60*time.Second)
	defer h1.CloseIdleConnections()
	url := "http://" + t.gw.addr + "/v1/chat/completions"
	body := chatBody(model, 4, false, `,"pad":"`+strings.Repeat("x", size)+`"`)
	recs := make([]record, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { recs[i] = do(h1, h1Buffered, url, body, nil) })
	}
	wg.Wait()
	close(stop)
	peak := <-peakc
	var admitted, refused int
	c.account(recs, func(r record) (verdict, string) {
		switch {
		case r.outcome == outOK && r.status == 200:
			admitted++
			return answered, ""
		case r.outcome == outStatus && r.status == 503 && r.retryAfter != "":
			refused++
			return answered, ""
		case r.outcome == outNoAnswer || r.outcome == outCut:
			return lost, ""
		}
		return wrong, ""
	})
	c.check(admitted > 0 && refused > 0, "%d admitted and %d refused: the budget was not exercised", admitted, refused)
	big := do(h1, h1Buffered, url, chatBody(model, 4, false, `,"pad":"`+strings.Repeat("x", 20<<20)+`"`), nil)
	c.one(big.status, big.status == 413 && big.node == "", fmt.Sprintf("a 20 MiB body: %s", big))
	ok := do(h1, h1Buffered, url, chatBody(model, 4, false, ""), nil)
	c.one(ok.status, ok.status == 200, fmt.Sprintf("a small request after the big ones (the budget given back): %s", ok))
	rss1, _, _ := memory(pid)
	grew := peak - rss0
	c.check(grew < 160<<20, "the gateway's RSS grew by %d MiB (from %d MiB): bodies are not bounded by the budget", grew>>20, rss0>>20)
	c.observe("%d admitted, %d refused 503 with Retry-After; RSS %d MiB before, peak %d MiB (+%d MiB for %d MiB sent at once), %d MiB after",
		admitted, refused, rss0>>20, peak>>20, grew>>20, n*size>>20, rss1>>20)
}

// askOn sends one request for m on an open connection and returns the
// status (0: no answer, the connection closed).
func askOn(c net.Conn, m string) int {
	body := string(chatBody(m, 1, false, ""))
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	req := "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body
	if _, err := io.WriteString(c, req); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// noModel is a model no route serves: the gateway answers 404 itself,
// at once, and keeps the connection.
const noModel = "no-such-model"

// openConns dials n connections from source and asks one question on
// each (a 404 the gateway answers itself): those answered are kept open
// (idle, kept alive), those closed unanswered are counted as refused. A
// connection that says nothing would be closed after read_timeout, so
// every kept one has spoken.
func openConns(addr, source string, n int) (kept []net.Conn, refused int, err error) {
	var all []net.Conn
	for range n {
		c, err := dialFrom(source, addr)
		if err != nil {
			for _, c := range all {
				c.Close()
			}
			return nil, 0, err
		}
		all = append(all, c)
	}
	status := make([]int, n)
	var wg sync.WaitGroup
	for i, c := range all {
		wg.Go(func() { status[i] = askOn(c, noModel) })
	}
	wg.Wait()
	for i, c := range all {
		if status[i] == 404 {
			kept = append(kept, c)
		} else {
			refused++
			c.Close()
		}
	}
	return kept, refused, nil
}

// caseConnCaps (item 6): max_connections_per_ip (64) and max_connections
// (300).
func caseConnCaps(ctx context.Context, t *topology, c *caseRun) {
	var open []net.Conn
	defer func() {
		for _, x := range open {
			x.Close()
		}
	}()
	// An ordinary client's connection, opened before the flood.
	early, err := dialFrom("127.0.0.1", t.gw.addr)
	if !c.check(err == nil, "dial: %v", err) {
		return
	}
	open = append(open, early)
	st := askOn(early, model)
	c.one(st, st == 200, fmt.Sprintf("the early connection's first request: %d", st))

	kept, refused, err := openConns(t.gw.addr, "127.0.0.5", maxConnsPerIP+1)
	if !c.check(err == nil, "dial: %v", err) {
		return
	}
	open = append(open, kept...)
	for i := range kept {
		c.oneAs("kept", i < maxConnsPerIP, fmt.Sprintf("connection %d from one IP kept over the cap of %d", i+1, maxConnsPerIP))
	}
	for i := range refused {
		c.oneAs("closed at once (per-IP cap)", len(kept)+i >= maxConnsPerIP, fmt.Sprintf("a connection closed with only %d kept from the IP", len(kept)))
	}
	if len(kept) > 0 {
		st := askOn(kept[0], model)
		c.one(st, st == 200, fmt.Sprintf("a request on a kept connection: %d", st))
		kept[0].Close()
	}
	// A place freed: a new connection from the same IP is kept (the
	// gateway sees the close asynchronously).
	var again net.Conn
	waitUntil(ctx, 5*time.Second, func() bool {
		k, _, err := openConns(t.gw.addr, "127.0.0.5", 1)
		if err == nil && len(k) == 1 {
			again = k[0]
			return true
		}
		return false
	})
	if c.check(again != nil, "no place freed from 127.0.0.5 after closing a connection") {
		open = append(open, again)
		st := askOn(again, model)
		c.one(st, st == 200, fmt.Sprintf("a request on the connection that took the freed place: %d", st))
	}

	// The overall cap, from five more addresses (64 each: 320 tries, with
	// the 64 + 1 above open: well over 300).
	total, closed := maxConnsPerIP+1, 0 // the early one and 64 from .5
	for i := 6; i <= 10; i++ {
		k, r, err := openConns(t.gw.addr, fmt.Sprintf("127.0.0.%d", i), maxConnsPerIP)
		if !c.check(err == nil, "dial: %v", err) {
			return
		}
		open = append(open, k...)
		total += len(k)
		closed += r
	}
	c.row.Sent += 5 * maxConnsPerIP
	c.row.Answered["kept"] += total - maxConnsPerIP - 1
	c.row.Answered["closed (overall cap)"] += closed
	c.check(total <= maxConnections, "%d connections open at once, over max_connections %d", total, maxConnections)
	c.check(total >= maxConnections-16 && closed > 0, "only %d connections kept (%d closed) under max_connections %d", total, closed, maxConnections)
	st = askOn(early, model)
	c.one(st, st == 200, fmt.Sprintf("a request on the early connection at the cap: %d", st))
	for _, x := range open[1:] {
		x.Close()
	}
	open = open[:1]
	// Places freed: a new client is served.
	var st2 int
	waitUntil(ctx, 5*time.Second, func() bool {
		k, _, err := openConns(t.gw.addr, "127.0.0.1", 1)
		if err != nil || len(k) == 0 {
			return false
		}
		defer k[0].Close()
		st2 = askOn(k[0], model)
		return st2 == 200
	})
	c.one(st2, st2 == 200, fmt.Sprintf("a new client after the flood: %d", st2))
	c.observe("per IP: %d kept, the next closed at once; overall: %d open at the cap (%d closed at once); an open connection served throughout; places freed on close", len(kept), total, closed)
}
