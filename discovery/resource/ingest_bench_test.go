package resource

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// benchInstance runs one real instance on loopback.
func benchInstance(b *testing.B, cfg Config) (*Server, string) {
	b.Helper()
	ln := benchListener(b)
	return benchServe(b, ln, cfg), ln.Addr().String()
}

func benchListener(b *testing.B) net.Listener {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

// benchServe serves cfg on ln until the benchmark ends.
func benchServe(b *testing.B, ln net.Listener, cfg Config) *Server {
	b.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx, ln); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return s
}

// loadConn is a load generator connection that carries many nodes.
type loadConn struct {
	c  net.Conn
	bw *bufio.Writer
	hb discovery.Heartbeat
	fr []byte
}

func dialLoad(b *testing.B, addr, token string) *loadConn {
	b.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.Write(append([]byte(discovery.CurrentVersion.Preamble()), discovery.AppendHelloFrame(nil, discovery.Hello{Role: discovery.RoleAgent, Token: token})...)); err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReader(c)
	if typ, _, _, err := discovery.ReadFrame(br, 1<<16, nil); err != nil || typ != discovery.FrameWelcome {
		b.Fatalf("welcome: %d %v", typ, err)
	}
	go func() { _, _ = io.Copy(io.Discard, br) }() // acks
	lc := &loadConn{c: c, bw: bufio.NewWriterSize(c, 64<<10)}
	lc.hb = discovery.Heartbeat{
		App: "bench", Engine: "vllm", Accelerator: discovery.Accelerator{Model: "H100", Count: 8}, Capacity: 8,
		State: discovery.StateReady, Incarnation: 1,
	}
	return lc
}

// send encodes and buffers one heartbeat of node i (its seq-th).
func (lc *loadConn) send(id string, addrs map[string]string, seq uint64, util float64) {
	lc.hb.ID, lc.hb.Addresses, lc.hb.Seq = id, addrs, seq
	lc.hb.Load.Utilisation, lc.hb.Load.Concurrency = discovery.Known(util), discovery.Known(4)
	lc.fr = discovery.AppendHeartbeatFrame(lc.fr[:0], &lc.hb, discovery.CurrentVersion)
	_, _ = lc.bw.Write(lc.fr)
}

func nodeIDs(n int) ([]string, []map[string]string) {
	ids := make([]string, n)
	addrs := make([]map[string]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("node-%07d", i)
		addrs[i] = map[string]string{"http": fmt.Sprintf("10.%d.%d.%d:8000", i>>16&255, i>>8&255, i&255)}
	}
	return ids, addrs
}

// BenchmarkIngest measures heartbeat ingest of one instance over the framed
// protocol, load generator included (same process, same 2 cores): 4
// connections each carrying 25,000 nodes' beats, mostly liveness-only (load
// moves below epsilon) with 1 % significant changes.
func BenchmarkIngest(b *testing.B) {
	const nodes, conns = 100_000, 4
	s, addr := benchInstance(b, Config{Token: "t", MaxNodesPerApp: 2 * nodes})
	ids, addrs := nodeIDs(nodes)
	lcs := make([]*loadConn, conns)
	for i := range lcs {
		lcs[i] = dialLoad(b, addr, "t")
	}
	b.ReportAllocs()
	start0 := s.stats.heartbeats.Load()
	b.ResetTimer()
	t0 := time.Now()
	var wg sync.WaitGroup
	per := b.N / conns
	for ci, lc := range lcs {
		wg.Go(func() {
			for k := 0; k < per; k++ {
				n := (ci + k*conns) % nodes
				seq := uint64(k/(nodes/conns) + 1)
				util := 0.5 + float64(k%3)*0.01
				if k%100 == 0 {
					util = 0.1 + float64(k%7)*0.1
				}
				lc.send(ids[n], addrs[n], seq, util)
			}
			_ = lc.bw.Flush()
		})
	}
	wg.Wait()
	want := start0 + uint64(per*conns)
	for s.stats.heartbeats.Load() < want {
		time.Sleep(time.Millisecond)
	}
	el := time.Since(t0)
	b.StopTimer()
	b.ReportMetric(float64(per*conns)/el.Seconds(), "beats/s")
	b.ReportMetric(float64(s.rejections.Total()), "rejected")
	for _, lc := range lcs {
		_ = lc.c.Close()
	}
}
