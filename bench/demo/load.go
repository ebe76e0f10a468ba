package demo

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/engines/sim"
)

// record is one client request as the client saw it.
type record struct {
	kind    string        // "chat" (streaming), "infer", or "ray" (streaming chat to the Ray application)
	start   time.Time     // when it was sent
	latency time.Duration // until the last byte (or the failure)
	ttft    time.Duration // first token, for chat
	node    string        // X-Sim-Node of the answer (for "ray": the Ray proxy's node), if any headers came
	status  int
	err     string // empty on success
	started bool   // response headers had arrived when it failed
}

// load is an open-loop client: Poisson arrivals at a set rate, each
// request on its own goroutine, at most maxOutstanding at once (more are
// counted as client errors, never queued).
type load struct {
	url         string
	rate        float64
	streamShare float64
	rayShare    float64 // of all requests, sent to the Ray application's prefix
	client      *http.Client

	mu   sync.Mutex
	recs []record
}

const maxOutstanding = 4096

func newLoad(addr string, rate, streamShare, rayShare float64) *load {
	tr := &http.Transport{
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &load{
		url:         "http://" + addr,
		rate:        rate,
		streamShare: streamShare,
		rayShare:    rayShare,
		client:      &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}
}

func (l *load) run(ctx context.Context, start time.Time, d time.Duration) {
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 1))
	sem := make(chan struct{}, maxOutstanding)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer l.client.Transport.(*http.Transport).CloseIdleConnections()
	next := start
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next = next.Add(time.Duration(rng.ExpFloat64() / l.rate * float64(time.Second)))
		if next.Sub(start) >= d {
			return
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		kind := "infer"
		switch u := rng.Float64(); {
		case u < l.rayShare:
			kind = "ray"
		case u < l.rayShare+(1-l.rayShare)*l.streamShare:
			kind = "chat"
		}
		select {
		case sem <- struct{}{}:
		default:
			l.add(record{kind: kind, start: time.Now(), err: "client: too many outstanding requests"})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l.add(l.do(ctx, kind))
		}()
	}
}

func (l *load) add(r record) {
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
}

func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recs)
}

func (l *load) records() []record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]record(nil), l.recs...)
}

const (
	rayBody   = `{"model":"` + rayModel + `","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"Say hello to Ray."}]}`
	chatBody  = `{"model":"` + model + `","stream":true,"max_tokens":8,"messages":[{"role":"user","content":"Say hello to the switchyard."}]}`
	inferBody = `{"inputs":[{"name":"text_input","shape":[1],"datatype":"BYTES","data":["hello switchyard"]}],"parameters":{"max_tokens":8}}`
)

func (l *load) do(ctx context.Context, kind string) record {
	r := record{kind: kind, start: time.Now()}
	var req *http.Request
	var err error
	switch kind {
	case "ray":
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, l.url+rayPrefix+"/v1/chat/completions", strings.NewReader(rayBody))
	case "chat":
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, l.url+"/v1/chat/completions", strings.NewReader(chatBody))
	default:
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, l.url+"/v2/models/"+model+"/infer", strings.NewReader(inferBody))
	}
	if err != nil {
		r.err = err.Error()
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		r.latency = time.Since(r.start)
		r.err = err.Error()
		return r
	}
	defer resp.Body.Close()
	r.status = resp.StatusCode
	r.node = resp.Header.Get(sim.NodeHeader)
	if kind == "ray" {
		r.node = resp.Header.Get(sim.RayProxyHeader)
	}
	r.started = true
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		r.latency = time.Since(r.start)
		r.err = fmt.Sprintf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		return r
	}
	if kind == "chat" || kind == "ray" {
		r.err = readStream(resp.Body, r.start, &r.ttft)
	} else {
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		switch {
		case err != nil:
			r.err = "reading infer answer: " + err.Error()
		case !bytes.Contains(body, []byte(`"outputs"`)):
			r.err = "infer answer without outputs: " + string(body[:min(len(body), 200)])
		}
	}
	r.latency = time.Since(r.start)
	return r
}

// readStream reads an OpenAI SSE stream to its end and checks it is whole:
// at least one content chunk and the [DONE] terminator.
func readStream(body io.Reader, start time.Time, ttft *time.Duration) string {
	sc := bufio.NewScanner(body)
	chunks := 0
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		data := bytes.TrimSpace(line[5:])
		if bytes.Equal(data, []byte("[DONE]")) {
			if chunks == 0 {
				return "stream ended without a chunk"
			}
			return ""
		}
		if bytes.Contains(data, []byte(`"error"`)) {
			return "error event in stream: " + string(data[:min(len(data), 200)])
		}
		if *ttft == 0 && hasToken(data) {
			*ttft = time.Since(start)
		}
		chunks++
	}
	if err := sc.Err(); err != nil {
		return "stream broken: " + err.Error()
	}
	return fmt.Sprintf("stream ended without [DONE] after %d chunks", chunks)
}

// hasToken reports whether an SSE chunk carries generated text (the first
// chunk of a stream often only announces the role).
func hasToken(chunk []byte) bool {
	i := bytes.Index(chunk, []byte(`"content":"`))
	return i >= 0 && i+11 < len(chunk) && chunk[i+11] != '"'
}
