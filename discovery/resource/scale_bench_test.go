package resource

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// BenchmarkPropagation100k measures heartbeat → subscriber latency with
// 100,000 nodes online and beating once a second. Two peered instances A and
// B; the load generator and the probe node beat to A; one client watches A
// and one watches B (the cross-instance path). Each iteration changes the
// probe node and waits until both clients applied it. Even iterations drain
// it (the immediate path), odd ones make it ready again (the batched path,
// through the ≤100 ms window).
func BenchmarkPropagation100k(b *testing.B) {
	const nodes, conns = 100_000, 4
	lnA, lnB := benchListener(b), benchListener(b)
	peers := []string{lnA.Addr().String(), lnB.Addr().String()}
	sA := benchServe(b, lnA, Config{Token: "t", Peers: peers, MaxNodesPerApp: 2 * nodes})
	sB := benchServe(b, lnB, Config{Token: "t", Peers: peers, MaxNodesPerApp: 2 * nodes})
	addrA := lnA.Addr().String()

	// Keep 100k nodes alive: every node beats once a second, paced in
	// 100 ms slices.
	ids, addrs := nodeIDs(nodes)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	for ci := range conns {
		lc := dialLoad(b, addrA, "t")
		wg.Go(func() {
			defer lc.c.Close()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			seq := uint64(0)
			for slice := 0; ; slice++ {
				if slice%10 == 0 {
					seq++
				}
				for n := ci + (slice%10)*conns; n < nodes; n += 10 * conns {
					lc.send(ids[n], addrs[n], seq, 0.5+float64(seq%3)*0.01)
				}
				_ = lc.bw.Flush()
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}

	type seen struct {
		mu    sync.Mutex
		state discovery.State
		n     int
		at    time.Time // when state last changed
		ch    chan struct{}
	}
	watch := func(server string) *seen {
		sn := &seen{ch: make(chan struct{}, 1)}
		c, err := discovery.NewClient(discovery.ClientConfig{
			Servers: []string{server}, Token: "t", Apps: []string{"bench"},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			OnUpdate: func(_ string, l discovery.OnlineList) {
				st := discovery.StateOffline
				for i := range l.Nodes {
					if l.Nodes[i].ID == "probe" {
						st = l.Nodes[i].State
						break
					}
				}
				sn.mu.Lock()
				if st != sn.state {
					sn.at = time.Now()
				}
				sn.state, sn.n = st, len(l.Nodes)
				sn.mu.Unlock()
				select {
				case sn.ch <- struct{}{}:
				default:
				}
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() { _ = c.Run(ctx) })
		return sn
	}
	// Steady state: start watching once both instances list every node.
	for deadline := time.Now().Add(60 * time.Second); ; {
		if a, bb := sA.appFor("bench"), sB.appFor("bench"); liveCount(a) >= nodes && liveCount(bb) >= nodes {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("instances never listed %d nodes (A %d, B %d, A expired %d)", nodes, liveCount(sA.appFor("bench")), liveCount(sB.appFor("bench")), sA.stats.expired.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	clients := []*seen{watch(addrA), watch(lnB.Addr().String())}
	// The probe node beats every 300 ms like any node, and at once when the
	// benchmark changes it.
	probe := dialLoad(b, addrA, "t")
	defer probe.c.Close()
	probeAddr := map[string]string{"http": "127.0.0.1:1"}
	var probeMu sync.Mutex
	probeState := discovery.StateReady
	seq := uint64(1)
	sendProbe := func(st discovery.State) {
		probeMu.Lock()
		defer probeMu.Unlock()
		if st != discovery.StateUnknown {
			probeState = st
		}
		probe.hb.State = probeState
		probe.send("probe", probeAddr, seq, 0.5)
		seq++
		_ = probe.bw.Flush()
	}
	sendProbe(discovery.StateReady)
	wg.Go(func() {
		t := time.NewTicker(300 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				sendProbe(discovery.StateUnknown)
			}
		}
	})
	waitState := func(st discovery.State, minNodes int) bool {
		deadline := time.NewTimer(60 * time.Second)
		defer deadline.Stop()
		for _, c := range clients {
			for {
				c.mu.Lock()
				ok := c.state == st && c.n >= minNodes
				c.mu.Unlock()
				if ok {
					break
				}
				select {
				case <-c.ch:
				case <-deadline.C:
					return false
				}
			}
		}
		return true
	}
	if !waitState(discovery.StateReady, nodes+1) {
		liveOf := func(s *Server) (int, uint64) {
			a := s.appFor("bench")
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.live, a.version
		}
		la, va := liveOf(sA)
		lb, vb := liveOf(sB)
		b.Fatalf("clients never saw 100k nodes: A %d nodes v%d (beats %d, expired %d, dropped %d), B %d nodes v%d (recv %d); clients %d %d",
			la, va, sA.stats.heartbeats.Load(), sA.stats.expired.Load(), sA.stats.peerDropped.Load(), lb, vb, sB.stats.peerRecv.Load(), clients[0].n, clients[1].n)
	}
	var drainLat, readyLat []time.Duration
	perClient := make([][]time.Duration, len(clients))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		st := discovery.StateDraining
		if i%2 == 1 {
			st = discovery.StateReady
		}
		t0 := time.Now()
		sendProbe(st)
		if !waitState(st, 0) {
			b.Fatalf("iteration %d: change never arrived", i)
		}
		for ci, c := range clients {
			c.mu.Lock()
			perClient[ci] = append(perClient[ci], c.at.Sub(t0))
			c.mu.Unlock()
		}
		if st == discovery.StateDraining {
			drainLat = append(drainLat, time.Since(t0))
		} else {
			readyLat = append(readyLat, time.Since(t0))
		}
		// Spread the changes over the heartbeat cycle.
		time.Sleep(37 * time.Millisecond)
	}
	b.StopTimer()
	all := append(slices.Clone(drainLat), readyLat...)
	b.ReportMetric(float64(pct(all, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(all, 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(pct(drainLat, 0.99).Microseconds())/1000, "drain-p99-ms")
	b.ReportMetric(float64(pct(readyLat, 0.99).Microseconds())/1000, "window-p99-ms")
	b.ReportMetric(float64(pct(perClient[0], 0.99).Microseconds())/1000, "clientA-p99-ms")
	b.ReportMetric(float64(pct(perClient[1], 0.99).Microseconds())/1000, "clientB-p99-ms")
	b.ReportMetric(float64(sA.stats.heartbeats.Load()), "beats")
}

func liveCount(a *app) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.live
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// BenchmarkMemory100k measures the heap an instance holds for 100,000
// nodes (records, change log, interned strings), fed through the real
// decoder.
func BenchmarkMemory100k(b *testing.B) {
	const nodes = 100_000
	ids, addrs := nodeIDs(nodes)
	frames := make([][]byte, nodes)
	for i := range frames {
		hb := discovery.Heartbeat{ID: ids[i], App: "bench", Addresses: addrs[i], Engine: "vllm",
			Accelerator: discovery.Accelerator{Model: "H100", Count: 8}, Capacity: 8, State: discovery.StateReady,
			Load: discovery.Load{Utilisation: discovery.Known(0.5), Concurrency: discovery.Known(4), SampledAt: time.Now()}, Incarnation: 1, Seq: 1}
		frames[i] = discovery.AppendHeartbeat(nil, &hb, discovery.CurrentVersion)
	}
	ids, addrs = nil, nil
	b.ReportAllocs()
	var perNode float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		var in discovery.Interner
		now := time.Now().UnixNano()
		for _, f := range frames {
			var hb discovery.Heartbeat
			if err := discovery.DecodeHeartbeat(f, &hb, &in, discovery.CurrentVersion); err != nil {
				b.Fatal(err)
			}
			s.ingest(&hb, now, trusted)
		}
		s.flush()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := s.appFor("bench").live; got != nodes {
			b.Fatalf("%d nodes", got)
		}
		perNode = float64(after.HeapAlloc-before.HeapAlloc) / nodes
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perNode, "heap-B/node")
	b.ReportMetric(perNode*nodes/(1<<20), "heap-MiB/100k")
}

// BenchmarkDelta1M measures the delta for 1 % churn (10,000 load changes)
// of a 1,000,000-node app: its size in the binary format gateways use and
// in JSON, and the time to build and encode it.
func BenchmarkDelta1M(b *testing.B) {
	const nodes, churn = 1_000_000, 10_000
	s, err := New(Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	a := s.appFor("big")
	now := time.Now().UnixNano()
	chs := make([]change, nodes)
	for i := range chs {
		chs[i] = change{node: discovery.Node{
			ID: fmt.Sprintf("node-%07d", i), App: "big",
			Addresses: map[string]string{"http": fmt.Sprintf("10.%d.%d.%d:8000", i>>16&255, i>>8&255, i&255)},
			Engine:    "vllm", Accelerator: discovery.Accelerator{Model: "H100", Count: 8}, Capacity: 8,
			State: discovery.StateReady, Load: discovery.Load{Utilisation: discovery.Known(0.5), Concurrency: discovery.Known(4), Running: discovery.Known(4), SampledAt: time.Unix(0, now)},
			LastHeard: time.Unix(0, now),
		}, owner: s.id, inc: 1, seq: 1, heard: now}
	}
	a.mu.Lock()
	a.commitLocked(chs, now)
	v := a.version
	churned := make([]change, churn)
	for i := range churned {
		ch := chs[i*(nodes/churn)]
		ch.node.Load.Utilisation, ch.node.Load.Concurrency, ch.seq = discovery.Known(0.9), discovery.Known(9), 2
		churned[i] = ch
	}
	a.commitLocked(churned, now)
	a.mu.Unlock()
	chs = nil
	var bin []byte
	var d discovery.Delta
	b.ReportAllocs()
	for b.Loop() {
		a.mu.Lock()
		d = a.deltaLocked(s.id, s.id, v)
		a.mu.Unlock()
		bin = discovery.AppendDelta(bin[:0], &d, discovery.CurrentVersion)
	}
	if len(d.Upserts) != churn || d.Reset {
		b.Fatalf("delta has %d upserts (reset %v)", len(d.Upserts), d.Reset)
	}
	js, _ := json.Marshal(d)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(bin)
	_ = zw.Close()
	b.ReportMetric(float64(len(bin)), "bin-bytes")
	b.ReportMetric(float64(len(bin))/churn, "bin-B/change")
	b.ReportMetric(float64(gz.Len()), "bin-gzip-bytes")
	b.ReportMetric(float64(len(js)), "json-bytes")
	var full []byte
	a.mu.Lock()
	fd := a.deltaLocked(s.id, 0, 0)
	a.mu.Unlock()
	full = discovery.AppendDelta(full, &fd, discovery.CurrentVersion)
	b.ReportMetric(float64(len(full)), "full-list-bin-bytes")
}
