package health

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/balancer"
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
	"github.com/switchyard-dev/switchyard/internal/testnode"
)

// logRecorder is a slog handler keeping every record, for tests that
// read what was logged and when.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func newLogRecorder() *logRecorder { return &logRecorder{} }

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecorder) WithGroup(string) slog.Handler            { return l }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.recs = append(l.recs, r.Clone())
	l.mu.Unlock()
	return nil
}

// find returns the first record with msg whose attributes include every
// key=value of kv.
func (l *logRecorder) find(msg string, kv ...string) (slog.Record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.Message != msg {
			continue
		}
		if hasAttrs(r, kv) {
			return r, true
		}
	}
	return slog.Record{}, false
}

// count counts the records with msg and the attributes kv.
func (l *logRecorder) count(msg string, kv ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Message == msg && hasAttrs(r, kv) {
			n++
		}
	}
	return n
}

func hasAttrs(r slog.Record, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == kv[i] && a.Value.String() == kv[i+1] {
				found = true
				return false
			}
			return true
		})
		if !found {
			return false
		}
	}
	return true
}

func (l *logRecorder) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, r := range l.recs {
		b.WriteString(r.Time.Format("15:04:05.000") + " " + r.Level.String() + " " + r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.Key + "=" + a.Value.String())
			return true
		})
		b.WriteByte('\n')
	}
	return b.String()
}

// testRoute is a defaulted route config over n static nodes at addrs.
func testRoute(addrs ...string) config.RouteConfig {
	c := config.Config{Routes: []config.RouteConfig{{Name: "r", Match: config.MatchConfig{Models: []string{"m"}}}}}
	for _, a := range addrs {
		c.Routes[0].Nodes = append(c.Routes[0].Nodes, config.NodeConfig{HTTP: a})
	}
	c.ApplyDefaults()
	return c.Routes[0]
}

// fleet is a real table of upstream nodes, as a route builds it, and a
// Checker over it.
type fleet struct {
	c     *Checker
	tb    *balancer.Table
	nodes []*upstream.Node
	log   *logRecorder
}

// newFleet builds a table over addrs and a Checker for rc, synced.
func newFleet(t *testing.T, rc config.RouteConfig, addrs []string) *fleet {
	t.Helper()
	ucfg := &upstream.Config{Route: rc.Name, Timeouts: rc.Timeouts, Breaker: rc.Breaker, MaxConns: 64, MaxResponseBytes: 1 << 20}
	reg := balancer.NewRegistry(func(id string, a balancer.Address) any { return upstream.New(id, a, ucfg) },
		func(e *balancer.Endpoint) { e.Value().(*upstream.Node).Close() })
	b, err := balancer.NewBuilder(balancer.Config{}, reg)
	if err != nil {
		t.Fatal(err)
	}
	var ns []balancer.Node
	for i, a := range addrs {
		ns = append(ns, balancer.Node{ID: "n" + strconv.Itoa(i), Addr: balancer.Address{HTTP: a, GRPC: a}, Capacity: 1})
	}
	f := &fleet{tb: b.Build(ns, time.Now()), log: newLogRecorder()}
	f.c, err = New(&rc, Deps{Log: slog.New(f.log)})
	if err != nil {
		t.Fatal(err)
	}
	var ms []Member
	for i := 0; i < f.tb.Len(); i++ {
		e := f.tb.Endpoint(i)
		n := e.Value().(*upstream.Node)
		n.Bind(e)
		f.nodes = append(f.nodes, n)
		ms = append(ms, Member{Endpoint: e, Node: n, Ready: i < f.tb.Ready()})
	}
	f.c.SetMembers(ms)
	f.c.sync(time.Now())
	return f
}

// newGet is a GET / for addr (left to the GC: tests only).
func newGet(addr string) (*fasthttp.Request, *fasthttp.Response) {
	req := &fasthttp.Request{}
	req.SetRequestURI("http://" + addr + "/")
	return req, &fasthttp.Response{}
}

// answer reports k answers of node i, each ttfb long, status st.
func (f *fleet) answer(i, k int, ttfb time.Duration, st int) {
	for range k {
		f.nodes[i].ObserveFirstByte(time.Now().Add(-ttfb), st, nil)
	}
}

// hangServer is a listener that accepts connections and never answers,
// like a stopped process whose kernel still completes handshakes.
func hangServer(t *testing.T) string {
	t.Helper()
	return testnode.Serve(t, "tcp", nil)
}

// hang sends one request to node i, whose address must be a hangServer,
// and returns once the exchange is under way, with the time the node's
// silence counts from (as the node's first-byte record says: a test that
// judges silence against a floor measures from it, not from when hang
// returned, which a loaded machine may delay). The exchange ends with the
// test. It takes the node's first-byte record: call it before answer.
func (f *fleet) hang(t *testing.T, i int) time.Time {
	t.Helper()
	n, e := f.nodes[i], f.tb.Endpoint(i)
	e.Acquire()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var call upstream.Call
	go func() {
		defer close(done)
		stop := context.AfterFunc(ctx, call.Abort)
		defer stop()
		req, resp := newGet(n.Addr().HTTP)
		sent := time.Now()
		err := n.Do(&call, req, resp, time.Now().Add(time.Minute))
		n.ObserveFirstByte(sent, 0, err)
		e.Release()
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for {
		now := time.Now()
		if s := n.TakeFirstByte(now, e.InFlight()); s.Waiting > 0 {
			return now.Add(-s.Silent)
		}
		if now.After(deadline) {
			t.Fatal("the hung exchange never started")
		}
		time.Sleep(time.Millisecond)
	}
}
