package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/switchyard-dev/switchyard/bench/hist"
	"github.com/switchyard-dev/switchyard/engines/kserve"
)

// Protocol is how requests are sent.
type Protocol string

const (
	// HTTP sends one HTTP/1.1 request and reads the whole response.
	HTTP Protocol = "http"
	// SSE sends an HTTP/1.1 request and reads a text/event-stream answer,
	// recording the time to the first data event (TTFT).
	SSE Protocol = "sse"
	// GRPC calls KServe v2 ModelInfer.
	GRPC Protocol = "grpc"
)

// Config is one load run. Zero values take the defaults in each field's
// doc.
type Config struct {
	// Target is the URL (http://host:port/path) for HTTP and SSE, or
	// host:port for gRPC. The host must be a loopback address.
	Target string
	// Protocol: HTTP (default), SSE or GRPC.
	Protocol Protocol
	// Method for HTTP and SSE. Default POST when Body is set, else GET.
	Method string
	// Body of each HTTP/SSE request.
	Body []byte
	// ContentType of Body. Default application/json.
	ContentType string
	// Host overrides the Host header (HTTP/SSE).
	Host string
	// Model is the KServe model name for gRPC. Default "sim".
	Model string
	// Rate is the open-loop arrival rate in requests per second; 0 means
	// closed loop.
	Rate float64
	// Concurrency is the number of closed-loop workers, or the most
	// requests an open-loop run keeps outstanding (later arrivals wait for
	// a worker, and their wait counts in their latency). Default 16.
	Concurrency int
	// Duration bounds the run. Default 10 s; at most 1 h.
	Duration time.Duration
	// Requests bounds the number of requests sent; 0 means only Duration
	// bounds the run.
	Requests int
	// Timeout is each request's timeout. Default 10 s.
	Timeout time.Duration
	// Seed fixes the open-loop arrival schedule. Default 1.
	Seed uint64
}

// ErrNotLoopback is returned for targets that are not on loopback.
var ErrNotLoopback = errors.New("loadgen: target is not a loopback address")

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch c.Protocol {
	case "", HTTP, SSE, GRPC:
	default:
		return fmt.Errorf("loadgen: config: protocol %q: want http, sse or grpc", c.Protocol)
	}
	if _, err := c.hostPort(); err != nil {
		return err
	}
	switch {
	case c.Rate < 0 || c.Rate > 10_000_000:
		return fmt.Errorf("loadgen: config: rate %v: must be 0 (closed loop) .. 1e7", c.Rate)
	case c.Concurrency < 0 || c.Concurrency > 100_000:
		return fmt.Errorf("loadgen: config: concurrency %d: must be 1..100000", c.Concurrency)
	case c.Duration < 0 || c.Duration > time.Hour:
		return fmt.Errorf("loadgen: config: duration %v: must be at most 1h", c.Duration)
	case c.Requests < 0:
		return fmt.Errorf("loadgen: config: requests %d: must be >= 0", c.Requests)
	case c.Timeout < 0:
		return fmt.Errorf("loadgen: config: timeout %v: must be >= 0", c.Timeout)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Protocol == "" {
		c.Protocol = HTTP
	}
	if c.Method == "" {
		c.Method = "GET"
		if len(c.Body) > 0 {
			c.Method = "POST"
		}
	}
	if c.ContentType == "" {
		c.ContentType = "application/json"
	}
	if c.Model == "" {
		c.Model = "sim"
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// hostPort returns the target's host:port, checking that it is loopback.
func (c *Config) hostPort() (string, error) {
	hp := c.Target
	if c.Protocol != GRPC {
		u, err := url.Parse(c.Target)
		if err != nil {
			return "", fmt.Errorf("loadgen: config: target %q: %w", c.Target, err)
		}
		if u.Scheme != "http" {
			return "", fmt.Errorf("loadgen: config: target %q: scheme must be http", c.Target)
		}
		hp = u.Host
	}
	host, _, err := net.SplitHostPort(hp)
	if err != nil {
		return "", fmt.Errorf("loadgen: config: target %q: %w", c.Target, err)
	}
	if host == "localhost" {
		return hp, nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return "", fmt.Errorf("%w: %q", ErrNotLoopback, c.Target)
	}
	return hp, nil
}

// Result is what a run measured.
type Result struct {
	// Sent counts requests started; OK those that succeeded.
	Sent, OK int64
	// Errors counts failures by kind: "timeout", "refused", "conn",
	// "status-4xx", "status-5xx", "grpc-<code>", "stream", "other".
	Errors map[string]int64
	// Elapsed is the measured wall time, from the first send to the last
	// answer.
	Elapsed time.Duration
	// Latency of successful requests in nanoseconds: from the intended
	// send time in open loop, from the actual send in closed loop.
	Latency hist.Histogram
	// TTFT is the time to the first SSE data event (SSE only).
	TTFT hist.Histogram
	// Late counts open-loop requests sent more than 1 ms after their
	// intended time (all workers were busy): a sign the rate is more than
	// the target, or the generator, sustains.
	Late int64
}

// RPS returns successful requests per second.
func (r *Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// ErrorCount returns the total number of failed requests.
func (r *Result) ErrorCount() int64 {
	var n int64
	for _, v := range r.Errors {
		n += v
	}
	return n
}

// Summary is a one-line human summary.
func (r *Result) Summary() string {
	ms := func(v int64) float64 { return float64(v) / 1e6 }
	s := fmt.Sprintf("sent %d ok %d errors %d in %.2fs: %.0f req/s; latency ms p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f max %.3f",
		r.Sent, r.OK, r.ErrorCount(), r.Elapsed.Seconds(), r.RPS(),
		ms(r.Latency.Quantile(0.5)), ms(r.Latency.Quantile(0.9)), ms(r.Latency.Quantile(0.99)), ms(r.Latency.Quantile(0.999)), ms(r.Latency.Max()))
	if r.TTFT.Count() > 0 {
		s += fmt.Sprintf("; ttft ms p50 %.3f p99 %.3f", ms(r.TTFT.Quantile(0.5)), ms(r.TTFT.Quantile(0.99)))
	}
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		s += "; errors:"
		for _, k := range keys {
			s += fmt.Sprintf(" %s=%d", k, r.Errors[k])
		}
	}
	if r.Late > 0 {
		s += fmt.Sprintf("; late sends %d", r.Late)
	}
	return s
}

// sender sends one request. It returns the time to first token (SSE) and
// an error kind ("" on success).
type sender interface {
	send(ctx context.Context) (ttft time.Duration, kind string)
}

// worker is one worker's private tallies, merged at the end.
type worker struct {
	lat, ttft hist.Histogram
	ok, sent  int64
	late      int64
	errs      map[string]int64
	last      time.Time
}

// Run drives the load described by cfg and returns what it measured. It
// stops early, returning what it has, when ctx is done.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	hp, _ := cfg.hostPort()
	snd, closeFn, err := newSender(cfg, hp)
	if err != nil {
		return nil, err
	}
	defer closeFn()

	ctx, cancel := context.WithTimeout(ctx, cfg.Duration+cfg.Timeout+time.Second)
	defer cancel()

	var sched []time.Duration
	if cfg.Rate > 0 {
		sched = PoissonSchedule(rand.New(rand.NewPCG(cfg.Seed, 0x10ad)), cfg.Rate, cfg.Duration, cfg.Requests)
	}
	var next atomic.Int64 // next request index
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	for w := range workers {
		wk := &worker{errs: map[string]int64{}}
		workers[w] = wk
		wg.Add(1)
		go func() {
			defer wg.Done()
			timer := time.NewTimer(time.Hour)
			timer.Stop()
			defer timer.Stop()
			for ctx.Err() == nil {
				k := next.Add(1) - 1
				var intended time.Time
				if sched != nil {
					if k >= int64(len(sched)) {
						return
					}
					intended = start.Add(sched[k])
					if d := time.Until(intended); d > 0 {
						timer.Reset(d)
						select {
						case <-timer.C:
						case <-ctx.Done():
							return
						}
					} else if d < -time.Millisecond {
						wk.late++
					}
				} else {
					if cfg.Requests > 0 && k >= int64(cfg.Requests) {
						return
					}
					intended = time.Now()
					if intended.After(deadline) {
						return
					}
				}
				rctx, rcancel := context.WithTimeout(ctx, cfg.Timeout)
				wk.sent++
				ttft, kind := snd.send(rctx)
				rcancel()
				now := time.Now()
				wk.last = now
				if kind != "" {
					if ctx.Err() != nil && kind == "timeout" {
						// Cut off by the end of the run, not by the server.
						wk.sent--
						return
					}
					wk.errs[kind]++
					continue
				}
				wk.ok++
				wk.lat.RecordDuration(now.Sub(intended))
				if ttft > 0 {
					wk.ttft.RecordDuration(ttft)
				}
			}
		}()
	}
	wg.Wait()
	res := &Result{Errors: map[string]int64{}}
	var last time.Time
	for _, wk := range workers {
		res.Sent += wk.sent
		res.OK += wk.ok
		res.Late += wk.late
		res.Latency.Merge(&wk.lat)
		res.TTFT.Merge(&wk.ttft)
		for k, v := range wk.errs {
			res.Errors[k] += v
		}
		if wk.last.After(last) {
			last = wk.last
		}
	}
	if !last.IsZero() {
		res.Elapsed = last.Sub(start)
	}
	return res, nil
}

func newSender(cfg Config, hp string) (sender, func(), error) {
	switch cfg.Protocol {
	case GRPC:
		conn, err := grpc.NewClient(hp, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(kserve.Codec{})))
		if err != nil {
			return nil, nil, fmt.Errorf("loadgen: grpc client %s: %w", hp, err)
		}
		req := kserve.InferRequest{
			ModelName: cfg.Model,
			Inputs: []kserve.Tensor{{
				Name: "text_input", Datatype: "BYTES", Shape: []int64{1},
				BytesContents: [][]byte{[]byte("hello")},
			}},
		}.Marshal()
		return &grpcSender{conn: conn, req: req}, func() { _ = conn.Close() }, nil
	default:
		u, _ := url.Parse(cfg.Target)
		host := cfg.Host
		if host == "" {
			host = u.Host
		}
		hc := &fasthttp.HostClient{
			Addr:                          hp,
			MaxConns:                      cfg.Concurrency,
			ReadTimeout:                   cfg.Timeout,
			WriteTimeout:                  cfg.Timeout,
			MaxIdleConnDuration:           time.Minute,
			NoDefaultUserAgentHeader:      true,
			DisableHeaderNamesNormalizing: true,
			StreamResponseBody:            cfg.Protocol == SSE,
		}
		return &httpSender{cfg: cfg, hc: hc, uri: u.RequestURI(), host: host}, hc.CloseIdleConnections, nil
	}
}

type httpSender struct {
	cfg  Config
	hc   *fasthttp.HostClient
	uri  string
	host string
}

func (h *httpSender) send(ctx context.Context) (time.Duration, string) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(h.uri)
	req.Header.SetHost(h.host)
	req.Header.SetMethod(h.cfg.Method)
	if len(h.cfg.Body) > 0 {
		req.Header.SetContentType(h.cfg.ContentType)
		req.SetBodyRaw(h.cfg.Body)
	}
	if h.cfg.Protocol == SSE {
		req.Header.Set("Accept", "text/event-stream")
	}
	start := time.Now()
	dl, _ := ctx.Deadline()
	if err := h.hc.DoDeadline(req, resp, dl); err != nil {
		return 0, errKind(err)
	}
	code := resp.StatusCode()
	if h.cfg.Protocol != SSE {
		switch {
		case code >= 500:
			return 0, "status-5xx"
		case code >= 400:
			return 0, "status-4xx"
		}
		return 0, ""
	}
	if code >= 400 {
		if code >= 500 {
			return 0, "status-5xx"
		}
		return 0, "status-4xx"
	}
	ttft, err := readSSE(resp.BodyStream(), start)
	if err != nil {
		return 0, "stream"
	}
	return ttft, ""
}

// readSSE reads an event stream to its end ("data: [DONE]" or EOF) and
// returns the time from start to the first token: the first data event
// with non-empty OpenAI "content" or "text" (a leading role-only chunk
// does not count), or else the first data event.
func readSSE(r io.Reader, start time.Time) (time.Duration, error) {
	if r == nil {
		return 0, errors.New("loadgen: no stream")
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var ttft, first time.Duration
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		if first == 0 {
			first = max(time.Since(start), 1)
		}
		if ttft == 0 && hasToken(line) {
			ttft = max(time.Since(start), 1)
		}
		if bytes.Equal(bytes.TrimSpace(line[5:]), []byte("[DONE]")) {
			break
		}
	}
	if ttft == 0 {
		ttft = first
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if ttft == 0 {
		return 0, errors.New("loadgen: stream ended without data")
	}
	return ttft, nil
}

// hasToken reports whether an SSE data line carries generated text: a
// non-empty "content" or "text" string.
func hasToken(line []byte) bool {
	for _, k := range [][]byte{[]byte(`"content":"`), []byte(`"text":"`)} {
		if i := bytes.Index(line, k); i >= 0 && i+len(k) < len(line) && line[i+len(k)] != '"' {
			return true
		}
	}
	return false
}

type grpcSender struct {
	conn *grpc.ClientConn
	req  []byte
}

func (g *grpcSender) send(ctx context.Context) (time.Duration, string) {
	var out []byte
	if err := g.conn.Invoke(ctx, kserve.ModelInfer, g.req, &out); err != nil {
		if st, ok := status.FromError(err); ok {
			if st.Code() == codes.DeadlineExceeded {
				return 0, "timeout"
			}
			return 0, "grpc-" + st.Code().String()
		}
		return 0, "other"
	}
	return 0, ""
}

// errKind classifies a transport error.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return "conn"
	}
	return "other"
}
