package chaos

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// kind is the protocol and shape of a load request.
type kind uint8

const (
	h1Buffered kind = iota // HTTP/1.1, one JSON answer
	h1Stream               // HTTP/1.1, SSE stream
	h2Buffered             // h2c, one JSON answer
	h2Stream               // h2c, SSE stream
)

var allKinds = []kind{h1Buffered, h1Stream, h2Buffered, h2Stream}

func (k kind) String() string { return [...]string{"h1", "h1-stream", "h2", "h2-stream"}[k] }
func (k kind) stream() bool   { return k == h1Stream || k == h2Stream }
func (k kind) h2() bool       { return k == h2Buffered || k == h2Stream }

// outcome is what the client got.
type outcome uint8

const (
	outOK       outcome = iota // 2xx and a whole answer: valid JSON, or a stream that ended with [DONE]
	outStatus                  // an answer with another status
	outCut                     // the answer began, then failed: a read error after the headers
	outCleanCut                // the answer ended cleanly but is not whole (no [DONE], truncated JSON)
	outNoAnswer                // no answer: a transport error or the timeout before the headers
)

func (o outcome) String() string {
	return [...]string{"ok", "status", "cut", "clean-cut", "no-answer"}[o]
}

// record is one request of the load.
type record struct {
	kind             kind
	start, head, end time.Time
	status           int
	node             string // X-Sim-Node: the engine that answered
	retryAfter       string
	close            bool // the HTTP/1.1 answer said Connection: close
	proto            int  // the answer's HTTP major version
	tls              bool // the answer came over TLS
	outcome          outcome
	err              string
}

func (r record) String() string {
	s := fmt.Sprintf("%s at %s", r.kind, r.start.Format("15:04:05.000"))
	if r.node != "" {
		s += " via " + r.node
	}
	if r.status != 0 {
		s += " " + strconv.Itoa(r.status)
	}
	s += " " + r.outcome.String()
	if r.err != "" {
		s += ": " + r.err
	}
	return s
}

// loadSpec bounds one load run: closed loop, workers per kind, each
// sending its next request when the last one ended; it stops when told
// or after limit, whichever comes first.
type loadSpec struct {
	target    string // the gateway's host:port
	model     string
	kinds     []kind // default allKinds
	workers   int    // per kind; default 3
	maxTokens int    // default 24
	limit     time.Duration
	timeout   time.Duration // per request; default 30 s
	source    string        // local IP to send from; default 127.0.0.1
	tls       *tls.Config   // HTTPS (HTTP/1.1, and HTTP/2 by ALPN) instead of HTTP/1.1 and h2c
}

// load is a running load. Its goroutines stop by finish (or the limit).
type load struct {
	spec   loadSpec
	bodies [2][]byte // buffered, streamed
	h1, h2 *http.Client
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	ok      atomic.Int64
	mu      sync.Mutex
	rec     []record       // guarded by mu
	by      map[string]int // guarded by mu: whole answers per node
	streams map[string]int // guarded by mu: streams being relayed now, per node
}

// clients returns an HTTP/1.1 and an h2c client sending from source.
func clients(source string, timeout time.Duration) (h1, h2 *http.Client) {
	return clientsTLS(source, timeout, nil)
}

// clientsTLS is clients over TLS with conf (nil: plaintext, h2c).
func clientsTLS(source string, timeout time.Duration, conf *tls.Config) (h1, h2 *http.Client) {
	if source == "" {
		source = "127.0.0.1"
	}
	d := &net.Dialer{Timeout: 3 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	mk := func(h2 bool) *http.Client {
		var p http.Protocols
		switch {
		case h2 && conf != nil:
			p.SetHTTP2(true)
		case h2:
			p.SetUnencryptedHTTP2(true)
		default:
			p.SetHTTP1(true)
		}
		var tc *tls.Config
		if conf != nil {
			tc = conf.Clone()
		}
		return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: d.DialContext, Protocols: &p, TLSClientConfig: tc,
			ForceAttemptHTTP2: h2 && conf != nil, MaxIdleConnsPerHost: 256, DisableCompression: true, IdleConnTimeout: 90 * time.Second}}
	}
	return mk(false), mk(true)
}

func chatBody(model string, maxTokens int, stream bool, extra string) []byte {
	return fmt.Appendf(nil, `{"model":%q,"messages":[{"role":"user","content":"chaos"}],"max_tokens":%d,"stream":%v%s}`, model, maxTokens, stream, extra)
}

func startLoad(spec loadSpec) *load {
	if len(spec.kinds) == 0 {
		spec.kinds = allKinds
	}
	if spec.workers == 0 {
		spec.workers = 3
	}
	if spec.maxTokens == 0 {
		spec.maxTokens = 24
	}
	if spec.timeout == 0 {
		spec.timeout = 30 * time.Second
	}
	if spec.limit == 0 {
		spec.limit = 2 * time.Minute
	}
	l := &load{spec: spec, stop: make(chan struct{}), by: map[string]int{}, streams: map[string]int{}}
	l.bodies[0] = chatBody(spec.model, spec.maxTokens, false, "")
	l.bodies[1] = chatBody(spec.model, spec.maxTokens, true, "")
	l.h1, l.h2 = clientsTLS(spec.source, spec.timeout, spec.tls)
	limit := time.AfterFunc(spec.limit, l.halt) // the load stops itself
	l.wg.Add(1)
	go func() { defer l.wg.Done(); <-l.stop; limit.Stop() }()
	for _, k := range spec.kinds {
		for range spec.workers {
			l.wg.Add(1)
			go l.worker(k)
		}
	}
	return l
}

func (l *load) halt() { l.once.Do(func() { close(l.stop) }) }

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *load) worker(k kind) {
	defer l.wg.Done()
	pause := time.NewTimer(time.Hour)
	defer pause.Stop()
	for !l.stopped() {
		r := l.send(k)
		l.mu.Lock()
		l.rec = append(l.rec, r)
		if r.outcome == outOK {
			l.by[r.node]++
		}
		l.mu.Unlock()
		if r.outcome == outOK {
			l.ok.Add(1)
		}
		if r.outcome == outNoAnswer || r.outcome == outStatus { // do not spin on a closed port or quick refusals
			pause.Reset(25 * time.Millisecond)
			select {
			case <-l.stop:
			case <-pause.C:
			}
		}
	}
}

// send sends one request and reads its whole answer.
func (l *load) send(k kind) record {
	c, body := l.h1, l.bodies[0]
	if k.h2() {
		c = l.h2
	}
	if k.stream() {
		body = l.bodies[1]
	}
	var node string
	scheme := "http://"
	if l.spec.tls != nil {
		scheme = "https://"
	}
	r := doTracked(c, k, scheme+l.spec.target+"/v1/chat/completions", body, nil, func(n string) {
		l.mu.Lock()
		node = n
		l.streams[n]++
		l.mu.Unlock()
	})
	if node != "" {
		l.mu.Lock()
		l.streams[node]--
		l.mu.Unlock()
	}
	return r
}

// streaming returns how many streams node is relaying now.
func (l *load) streaming(node string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.streams[node]
}

// do sends one POST and classifies its answer.
func do(c *http.Client, k kind, url string, body []byte, hdr map[string]string) record {
	return doTracked(c, k, url, body, hdr, nil)
}

// doTracked is do, calling streamStart (if set) with the node once a 200
// event stream begins.
func doTracked(c *http.Client, k kind, url string, body []byte, hdr map[string]string, streamStart func(node string)) (r record) {
	r = record{kind: k, start: time.Now()}
	defer func() { r.end = time.Now() }() // r is the named result: the defer sets what is returned
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		r.outcome, r.err = outNoAnswer, err.Error()
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	for name, v := range hdr {
		req.Header.Set(name, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		r.outcome, r.err = outNoAnswer, err.Error()
		return r
	}
	defer resp.Body.Close()
	r.head, r.status, r.node = time.Now(), resp.StatusCode, resp.Header.Get("X-Sim-Node")
	r.retryAfter, r.close = resp.Header.Get("Retry-After"), resp.Close
	r.proto, r.tls = resp.ProtoMajor, resp.TLS != nil
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		r.outcome = outStatus
		return r
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if streamStart != nil {
			streamStart(r.node)
		}
		done, err := readStream(resp.Body)
		switch {
		case err != nil:
			r.outcome, r.err = outCut, err.Error()
		case !done:
			r.outcome, r.err = outCleanCut, "the stream ended cleanly without data: [DONE]"
		}
		return r
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		r.outcome, r.err = outCut, err.Error()
		return r
	}
	var v struct {
		Choices []json.RawMessage `json:"choices"`
	}
	if err := json.Unmarshal(b, &v); err != nil || len(v.Choices) == 0 {
		r.outcome, r.err = outCleanCut, fmt.Sprintf("not a whole answer (%d bytes): %.80q", len(b), b)
	}
	return r
}

// readStream reads an SSE stream to its end and reports whether it
// carried data: [DONE].
func readStream(body io.Reader) (done bool, err error) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if bytes.Equal(bytes.TrimSpace(sc.Bytes()), []byte("data: [DONE]")) {
			done = true
		}
	}
	return done, sc.Err()
}

// finish stops the load, waits for the requests in flight and returns
// every record.
func (l *load) finish() []record {
	l.halt()
	l.wg.Wait()
	l.h1.CloseIdleConnections()
	l.h2.CloseIdleConnections()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]record(nil), l.rec...)
}

// waitOK waits until n more whole answers came, or d passed.
func (l *load) waitOK(ctx context.Context, n int, d time.Duration) bool {
	target := l.ok.Load() + int64(n)
	return waitUntil(ctx, d, func() bool { return l.ok.Load() >= target })
}

// served returns the whole answers node gave so far.
func (l *load) served(node string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.by[node]
}

// waitServed waits until node gave n more whole answers, or d passed.
func (l *load) waitServed(ctx context.Context, node string, n int, d time.Duration) bool {
	target := l.served(node) + n
	return waitUntil(ctx, d, func() bool { return l.served(node) >= target })
}
