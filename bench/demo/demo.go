package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/switchyard-dev/switchyard/discovery/resource"
	"github.com/switchyard-dev/switchyard/engines/sim"
	"github.com/switchyard-dev/switchyard/gateway"
)

// Config configures a demo run. The zero value plus Agent is usable; every
// field's doc gives its default.
type Config struct {
	// Duration is how long the workload runs. Default 30 s; at least 10 s.
	Duration time.Duration
	// Load is the offered load as a share of the fleet's throughput.
	// Default 0.5.
	Load float64
	// StreamShare is the share of the fleet's requests that are streaming
	// chat completions; the rest are KServe v2 infer calls. Default 0.5.
	StreamShare float64
	// RayShare is the share of all requests sent to the Ray Serve
	// application (streaming chat completions under its route prefix),
	// on top of the fleet's load. Default 0.1; at most 0.5.
	RayShare float64
	// Agent is the command that runs a node agent, e.g.
	// {"/path/to/switchyard", "agent"}. Required.
	Agent []string
	// OutDir receives the PNG charts (SharesChart, UtilisationChart,
	// LatencyChart).
	// Default "demo-out".
	OutDir string
	// Log receives progress lines. Default io.Discard.
	Log io.Writer
}

func (c *Config) applyDefaults() error {
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if c.Duration < 10*time.Second {
		return fmt.Errorf("demo: duration %v: at least 10s", c.Duration)
	}
	if c.Load == 0 {
		c.Load = 0.5
	}
	if !(c.Load > 0 && c.Load <= 1) {
		return fmt.Errorf("demo: load %v: must be in (0, 1]", c.Load)
	}
	if c.StreamShare == 0 {
		c.StreamShare = 0.5
	}
	if !(c.StreamShare >= 0 && c.StreamShare <= 1) {
		return fmt.Errorf("demo: stream share %v: must be in [0, 1]", c.StreamShare)
	}
	if c.RayShare == 0 {
		c.RayShare = 0.1
	}
	if !(c.RayShare > 0 && c.RayShare <= 0.5) {
		return fmt.Errorf("demo: ray share %v: must be in (0, 0.5]", c.RayShare)
	}
	if len(c.Agent) == 0 {
		return errors.New("demo: Agent command is required")
	}
	if c.OutDir == "" {
		c.OutDir = "demo-out"
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

// model is the one model the fleet serves, over OpenAI and KServe v2.
const model = "demo-llm"

// The Ray Serve application: a stand-in Ray cluster (engines/sim's Ray
// mode) of two nodes whose dashboard feeds the gateway's Ray source; the
// gateway routes it by its route prefix (an automatic route, rayRoute).
const (
	rayApp    = "ray-llm"
	rayModel  = "ray-llm"
	rayPrefix = "/ray-llm"
	rayRoute  = "ray/" + rayApp
)

// raySpec is the stand-in Ray cluster: two nodes, the application's
// replicas two on one and one on the other (the gateway weighs the nodes'
// proxies by the replicas they host).
func raySpec() sim.RayConfig {
	replica := sim.Config{Model: rayModel, Profile: "h100", Override: sim.Profile{
		Slots: 16, Prefill: prefill, PerToken: perToken, MaxTokens: maxTokens}}
	return sim.RayConfig{
		Nodes: []sim.RayNodeConfig{{ID: "ray-head"}, {ID: "ray-gpu"}},
		Apps: []sim.RayAppConfig{{Name: rayApp, RoutePrefix: rayPrefix, NumGPUs: 1, AcceleratorType: "H100",
			MaxOngoingRequests: 16, Replica: replica,
			Replicas: []sim.RayPlacement{{Node: "ray-head"}, {Node: "ray-gpu", Count: 2}}}},
	}
}

// fleetSpec is the embedded default fleet: two nodes of each class. Every
// node gets SlotsPerCoefficient slots per unit of capacity, so slots (and
// throughput) follow the capacity the agent reports. The CPU class is a
// 200-core server: the core coefficient of engines/capacity makes it worth
// one A10, which keeps its share large enough to measure in 30 s.
var fleetSpec = []struct {
	id, profile string
	cards       int
}{
	{"h100-a", "h100", 1}, {"h100-b", "h100", 1},
	{"a10-a", "a10", 1}, {"a10-b", "a10", 1},
	{"910b-a", "910b", 1}, {"910b-b", "910b", 1},
	{"cpu-a", "cpu", 200}, {"cpu-b", "cpu", 200},
}

const (
	slotsPerCoefficient = 10
	prefill             = 20 * time.Millisecond
	perToken            = 10 * time.Millisecond
	maxTokens           = 8
)

// node is one simulated node: its engine (in process) and its agent (a
// child process, so that kill -9 is real).
type node struct {
	id       string
	profile  sim.Profile
	capacity float64
	engine   *sim.Node
	agent    *exec.Cmd
	agentOut *lockedBuffer
	waited   chan error // agent exit status
}

// Run runs the demo and returns its report. It returns an error only when
// the demo could not run; a run whose checks failed returns a report whose
// Passed method says so.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.applyDefaults(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	// Everything started below stops when Run returns: cancel first, then
	// wait for the goroutines.
	var bg sync.WaitGroup
	defer func() {
		cancel()
		bg.Wait()
	}()
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Log, "demo: "+format+"\n", args...)
	}
	token := randomToken()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// Resource.
	rcfg := resource.DefaultConfig()
	rcfg.Token = token
	rcfg.Logger = quiet
	res, err := resource.New(rcfg)
	if err != nil {
		return nil, err
	}
	resLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo: resource listener: %w", err)
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		_ = res.Serve(ctx, resLn)
	}()
	logf("resource on %s", resLn.Addr())

	// The fleet: engines in process, agents as child processes.
	nodes, err := startFleet(ctx, cfg, resLn.Addr().String(), token)
	defer stopFleet(nodes)
	if err != nil {
		return nil, err
	}
	var totalSlots int
	var totalCap float64
	for _, n := range nodes {
		totalSlots += n.profile.SlotCount()
		totalCap += n.capacity
		logf("node %-7s %-5s capacity %.2f, %d slots, engine %s", n.id, n.profile.Name, n.capacity, n.profile.SlotCount(), n.engine.Addr())
	}

	// The Ray cluster.
	ray, err := sim.StartRay(ctx, raySpec())
	if err != nil {
		return nil, fmt.Errorf("demo: start the Ray cluster: %w", err)
	}
	defer ray.Close()
	logf("ray dashboard on %s: application %s at %s, replicas on ray-head (1) and ray-gpu (2)", ray.DashboardURL(), rayApp, rayPrefix)

	// The gateway, fed by Resource and by the Ray dashboard.
	gcfg := &gateway.Config{
		Listen:    gateway.ListenConfig{Client: "127.0.0.1:0", Admin: "127.0.0.1:0"},
		Discovery: &gateway.DiscoveryConfig{Servers: []string{resLn.Addr().String()}, Token: token},
		Ray:       &gateway.RayConfig{},
		Routes: []gateway.RouteConfig{{
			Name:       model,
			Match:      gateway.MatchConfig{Models: []string{model}},
			App:        model,
			HealthPath: "/health",
		}},
	}
	gcfg.Ray.Dashboard = ray.DashboardURL()
	gcfg.Limits.DrainDelay = -1 // nothing balances over this gateway: stop at once
	gcfg.ApplyDefaults()
	if err := gcfg.Validate(); err != nil {
		return nil, err
	}
	gw, err := gateway.New(gcfg, gateway.WithLogger(quiet))
	if err != nil {
		return nil, err
	}
	gwLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	adLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		gwLn.Close()
		return nil, err
	}
	gwCtx, gwStop := context.WithCancel(ctx)
	bg.Add(1)
	go func() {
		defer bg.Done()
		_ = gw.Serve(gwCtx, gwLn, adLn)
	}()
	defer gwStop()
	gwAddr, adminAddr := gwLn.Addr().String(), adLn.Addr().String()
	logf("gateway on %s, admin on %s", gwAddr, adminAddr)

	watch := newAdminWatch(adminAddr, model)
	if err := watch.waitEligible(ctx, len(nodes), 15*time.Second); err != nil {
		for _, n := range nodes {
			if out := n.agentOut.String(); out != "" {
				logf("agent %s said:\n%s", n.id, out)
			}
		}
		return nil, fmt.Errorf("demo: the gateway never saw the whole fleet: %w", err)
	}
	logf("gateway routes to all %d nodes", len(nodes))
	rayWatch := newAdminWatch(adminAddr, rayRoute)
	if err := rayWatch.waitEligible(ctx, 2, 15*time.Second); err != nil {
		return nil, fmt.Errorf("demo: the gateway never routed the Ray application: %w", err)
	}
	logf("gateway routes %s (route %s, from the Ray dashboard) to both Ray nodes' proxies", rayPrefix, rayRoute)

	// The workload, with a drain and a crash midway.
	perRequest := prefill + maxTokens*perToken
	fleetRate := cfg.Load * float64(totalSlots) / perRequest.Seconds()
	rate := fleetRate / (1 - cfg.RayShare) // the Ray application's share on top
	drainAt := cfg.Duration * 2 / 5
	crashAt := cfg.Duration * 3 / 5
	drained, crashed := nodes[2], nodes[4] // an A10 and a 910B
	logf("offering %.0f req/s to the fleet (%.0f%% of its %d slots) and %.0f req/s to the Ray application for %v; drain %s at %v, kill -9 %s at %v",
		fleetRate, cfg.Load*100, totalSlots, rate-fleetRate, cfg.Duration, drained.id, drainAt, crashed.id, crashAt)

	start := time.Now()
	samples := newUtilSampler(nodes, start)
	bg.Add(1)
	go func() {
		defer bg.Done()
		samples.run(ctx, 250*time.Millisecond)
	}()
	watchCtx, watchStop := context.WithCancel(ctx)
	defer watchStop()
	bg.Add(1)
	go func() {
		defer bg.Done()
		watch.run(watchCtx, 20*time.Millisecond)
	}()

	load := newLoad(gwAddr, rate, cfg.StreamShare, cfg.RayShare)
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		load.run(ctx, start, cfg.Duration)
	}()

	events := make(map[string]time.Time)
	if !sleepUntil(ctx, start.Add(drainAt)) {
		return nil, ctx.Err()
	}
	events["drain"] = time.Now()
	logf("draining %s (SIGTERM to its agent, as a Kubernetes PreStop would)", drained.id)
	drained.engine.Drain() // the engine refuses new work; in-flight requests finish
	if err := drained.agent.Process.Signal(syscall.SIGTERM); err != nil {
		return nil, fmt.Errorf("demo: drain %s: %w", drained.id, err)
	}
	bg.Add(1)
	go func() {
		defer bg.Done()
		// After the agent's PreStop returns, the engine may stop: wait for
		// its in-flight requests, then close it.
		<-drained.waited
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = drained.engine.WaitIdle(wctx)
		drained.engine.Close()
	}()

	if !sleepUntil(ctx, start.Add(crashAt)) {
		return nil, ctx.Err()
	}
	events["crash"] = time.Now()
	logf("kill -9 %s (its agent) and crashing its engine", crashed.id)
	_ = crashed.agent.Process.Kill()
	crashed.engine.Crash()
	// The engine is dead once Crash returns: a request sent before then
	// may have started streaming from it (and is lost with it).
	events["crashed"] = time.Now()

	<-loadDone
	watchStop()
	end := time.Now()
	logf("workload done: %d requests", load.count())

	rep := buildReport(cfg, nodes, load.records(), samples, watch, events, start, drainAt, end, drained.id, crashed.id, totalCap)
	rep.Ray.Replicas = map[string]int{}
	for _, r := range ray.Replicas(rayApp) {
		rep.Ray.Replicas[r.Node]++
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		return rep, fmt.Errorf("demo: %w", err)
	}
	if err := rep.charts(cfg.OutDir, samples); err != nil {
		return rep, err
	}
	return rep, nil
}

// startFleet starts every node's engine and agent and returns them, also
// on error (so the caller can stop what started).
func startFleet(ctx context.Context, cfg Config, resource, token string) ([]*node, error) {
	var nodes []*node
	for _, spec := range fleetSpec {
		prof, err := sim.LookupProfile(spec.profile, nil)
		if err != nil {
			return nodes, err
		}
		override := sim.Profile{
			Cards:               spec.cards,
			SlotsPerCoefficient: slotsPerCoefficient,
			Prefill:             prefill,
			PerToken:            perToken,
			MaxTokens:           maxTokens,
		}
		eng, err := sim.Start(ctx, sim.Config{ID: spec.id, Model: model, Profile: spec.profile, Override: override,
			GRPCListen: "127.0.0.1:0"})
		if err != nil {
			return nodes, fmt.Errorf("demo: start engine %s: %w", spec.id, err)
		}
		prof = eng.Profile()
		n := &node{id: spec.id, profile: prof, capacity: prof.Capacity(), engine: eng, waited: make(chan error, 1)}
		nodes = append(nodes, n)
		args := append(append([]string{}, cfg.Agent[1:]...),
			"--servers", resource,
			"--id", spec.id,
			"--app", model,
			"--addr", "http="+eng.Addr(),
			"--addr", "grpc="+eng.GRPCAddr(),
			"--engine", "vllm",
			"--accel-model", prof.Card,
			"--accel-count", strconv.Itoa(prof.Cards),
			"--capacity", strconv.FormatFloat(prof.Capacity(), 'f', -1, 64),
			"--load", "probe",
			"--metrics-url", eng.URL()+"/metrics",
			"--util-from", "kv-cache",
			// The OS picks each agent's control port as the agent binds
			// it: a port picked here and bound later could be taken in
			// between (by an outgoing connection's ephemeral port).
			"--control", "127.0.0.1:0",
			"--drain-timeout", "10s",
			"--log-level", "warn",
		)
		cmd := exec.Command(cfg.Agent[0], args...)
		cmd.Env = append(os.Environ(), "SWITCHYARD_TOKEN="+token)
		n.agentOut = &lockedBuffer{}
		cmd.Stdout, cmd.Stderr = n.agentOut, n.agentOut
		if err := cmd.Start(); err != nil {
			return nodes, fmt.Errorf("demo: start agent %s: %w", spec.id, err)
		}
		n.agent = cmd
		go func() { n.waited <- cmd.Wait() }()
	}
	return nodes, nil
}

// stopFleet kills every agent and closes every engine.
func stopFleet(nodes []*node) {
	for _, n := range nodes {
		if n.agent != nil && n.agent.Process != nil {
			_ = n.agent.Process.Kill()
			t := time.NewTimer(5 * time.Second)
			select {
			case <-n.waited:
			case <-t.C:
			}
			t.Stop()
		}
		n.engine.Close()
	}
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sleepUntil waits for t or ctx; it reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// lockedBuffer collects a child's output for the report on failure.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) < 64<<10 {
		b.buf = append(b.buf, p...)
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
