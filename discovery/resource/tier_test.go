package resource_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/resource"
)

// cluster is 3 Resource instances, nAgents agents of app "llama" and 2
// watching clients, all on loopback.
type cluster struct {
	t        *testing.T
	servers  []string
	cfgs     []resource.Config
	inst     []*instance
	agents   []*testAgent
	watchers []*watcher
}

func newCluster(t *testing.T, ctx context.Context, nAgents int, mod func(*resource.Config)) *cluster {
	t.Helper()
	lns := listenAll(t, 3)
	c := &cluster{t: t, servers: addrs(lns)}
	for _, ln := range lns {
		cfg := baseConfig(c.servers)
		if mod != nil {
			mod(&cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		c.inst = append(c.inst, startInstance(t, ln, cfg))
	}
	for i := range nAgents {
		c.agents = append(c.agents, startAgent(t, agentConfig(c.servers, "llama", fmt.Sprintf("node-%02d", i), 9000+i)))
	}
	for range 2 {
		c.watchers = append(c.watchers, startWatcher(t, c.servers, "llama", nil))
	}
	c.waitAll(ctx, func(l *discovery.OnlineList) bool { return countEligible(l) == nAgents })
	return c
}

// waitAll waits until cond holds on every watcher.
func (c *cluster) waitAll(ctx context.Context, cond func(l *discovery.OnlineList) bool) []time.Time {
	c.t.Helper()
	out := make([]time.Time, len(c.watchers))
	for i, w := range c.watchers {
		at, err := w.waitFor(ctx, cond)
		if err != nil {
			c.t.Fatalf("watcher %d: %v", i, err)
		}
		out[i] = at
	}
	return out
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// TestTierDrain drains 20 nodes one by one and measures how long until
// neither client routes to the node any more.
func TestTierDrain(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	const trials = 20
	c := newCluster(t, ctx, 24, nil)
	var lat, acked []time.Duration
	for i := range trials {
		ta := c.agents[i]
		start := time.Now()
		var wg sync.WaitGroup
		var st discovery.DrainStatus
		var derr error
		var drainDone time.Time
		wg.Go(func() {
			st, derr = ta.a.Drain(ctx)
			drainDone = time.Now()
		})
		times := c.waitAll(ctx, func(l *discovery.OnlineList) bool { return !eligible(l, ta.id) })
		wg.Wait()
		if derr != nil {
			t.Fatalf("trial %d: drain: %v (%+v)", i, derr, st)
		}
		worst := slices.MaxFunc(times, func(a, b time.Time) int { return a.Compare(b) })
		lat = append(lat, worst.Sub(start))
		acked = append(acked, drainDone.Sub(start))
		// Drain must not return before every client stopped routing to it.
		for j, w := range c.watchers {
			w.mu.Lock()
			l := w.last
			w.mu.Unlock()
			if eligible(&l, ta.id) {
				t.Fatalf("trial %d: drain returned while watcher %d still routes to %s", i, j, ta.id)
			}
		}
	}
	p50, p99 := percentile(lat, 0.5), percentile(lat, 0.99)
	t.Logf("drain → removed from both clients' eligible sets over %d trials: p50 %v p99 %v max %v", trials, p50, p99, slices.Max(lat))
	t.Logf("drain call returned (all watchers acknowledged) over %d trials: p50 %v p99 %v", trials, percentile(acked, 0.5), percentile(acked, 0.99))
	if p99 >= time.Second {
		t.Fatalf("drain p99 %v, want < 1s", p99)
	}
}

// TestTierKillInstance kills one instance: its agents re-home and none of
// their nodes leaves any client's list.
func TestTierKillInstance(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	c := newCluster(t, ctx, 21, func(cfg *resource.Config) { cfg.ReHomeGrace = 2 * time.Second })
	// Pick the instance with the most agents.
	count := map[string]int{}
	for _, ta := range c.agents {
		count[ta.a.Server()]++
	}
	victim := 0
	for i, s := range c.servers {
		if count[s] > count[c.servers[victim]] {
			victim = i
		}
	}
	var homed []*testAgent
	for _, ta := range c.agents {
		if ta.a.Server() == c.servers[victim] {
			homed = append(homed, ta)
		}
	}
	if len(homed) == 0 {
		t.Fatal("no agent on the victim instance")
	}
	t.Logf("killing instance %d with %d agents", victim, len(homed))
	// Watch every update from now on.
	violation := make(chan string, 16)
	for wi, w := range c.watchers {
		go func() {
			_, _ = w.waitFor(ctx, func(l *discovery.OnlineList) bool {
				for _, ta := range c.agents {
					if !eligible(l, ta.id) {
						select {
						case violation <- fmt.Sprintf("watcher %d version %d lost %s", wi, l.Version, ta.id):
						default:
						}
					}
				}
				return false
			})
		}()
	}
	c.inst[victim].kill()
	// Past the re-home grace and more.
	deadline := time.Now().Add(c.cfgs[0].ReHomeGrace + 2*time.Second)
	for time.Now().Before(deadline) {
		select {
		case v := <-violation:
			t.Fatal(v)
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, ta := range homed {
		if s := ta.a.Server(); s == "" || s == c.servers[victim] {
			t.Fatalf("agent %s did not re-home (server %q)", ta.id, s)
		}
	}
	for i, w := range c.watchers {
		if w.c.Stale("llama") {
			t.Fatalf("watcher %d stale after failover", i)
		}
	}
	// Soft state: the restarted instance (new epoch, empty) serves the whole
	// list within 2 heartbeat periods (peers dump their nodes on connect).
	restarted := time.Now()
	c.inst[victim] = c.inst[victim].restart(c.cfgs[victim])
	for {
		l := fetchList(t, ctx, c.servers[victim])
		if countEligible(&l) == len(c.agents) && l.Epoch == c.inst[victim].srv.ID() {
			break
		}
		if time.Since(restarted) > 2*time.Second {
			t.Fatalf("restarted instance lists %d of %d nodes after 2 periods", countEligible(&l), len(c.agents))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("restarted instance fully populated after %v", time.Since(restarted))
}

func fetchList(t *testing.T, ctx context.Context, server string) discovery.OnlineList {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+server+"/v1/apps/llama/list", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return discovery.OnlineList{}
	}
	defer resp.Body.Close()
	var l discovery.OnlineList
	_ = json.NewDecoder(resp.Body).Decode(&l)
	return l
}

// TestTierAllDown kills every instance: clients keep their last lists (and
// report them stale); when the instances come back, everything converges.
func TestTierAllDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	const n = 20
	c := newCluster(t, ctx, n, nil)
	for _, in := range c.inst {
		in.kill()
	}
	for i, w := range c.watchers {
		deadline := time.Now().Add(5 * time.Second)
		for !w.c.Stale("llama") {
			if time.Now().After(deadline) {
				t.Fatalf("watcher %d never reported stale", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
		l, ok := w.c.List("llama")
		if !ok || countEligible(&l) != n {
			t.Fatalf("watcher %d emptied its view: %d eligible", i, countEligible(&l))
		}
	}
	// Stay down for more than a heartbeat period.
	time.Sleep(1500 * time.Millisecond)
	for i, in := range c.inst {
		c.inst[i] = in.restart(c.cfgs[i])
	}
	// Converge: every node back, lists of both clients from the new epochs.
	epochs := map[uint64]bool{}
	for _, in := range c.inst {
		epochs[in.srv.ID()] = true
	}
	c.waitAll(ctx, func(l *discovery.OnlineList) bool { return epochs[l.Epoch] && countEligible(l) == n })
	for i, w := range c.watchers {
		deadline := time.Now().Add(5 * time.Second)
		for w.c.Stale("llama") {
			if time.Now().After(deadline) {
				t.Fatalf("watcher %d still stale after recovery", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// And the tier works again: a drain propagates.
	ta := c.agents[rand.IntN(n)]
	if _, err := ta.a.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	c.waitAll(ctx, func(l *discovery.OnlineList) bool { return !eligible(l, ta.id) && countEligible(l) == n-1 })
}
