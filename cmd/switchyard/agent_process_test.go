package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/resource"
)

// These tests run real `switchyard agent` processes (built with go build)
// against a Resource tier on loopback.

const procToken = "proc-token"

var procQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// procTier starts 3 Resource instances and 2 watching clients.
func procTier(t *testing.T) (servers []string, lists []func() discovery.OnlineList, waiters []chan struct{}) {
	t.Helper()
	var lns []net.Listener
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		servers = append(servers, ln.Addr().String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, ln := range lns {
		srv, err := resource.New(resource.Config{Token: procToken, Peers: servers, Logger: procQuiet})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = srv.Serve(ctx, ln) })
	}
	for range 2 {
		var mu sync.Mutex
		var last discovery.OnlineList
		changed := make(chan struct{}, 1)
		c, err := discovery.NewClient(discovery.ClientConfig{
			Servers: servers, Token: procToken, Apps: []string{"llama"}, Logger: procQuiet,
			OnUpdate: func(_ string, l discovery.OnlineList) {
				mu.Lock()
				last = l
				mu.Unlock()
				select {
				case changed <- struct{}{}:
				default:
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = c.Run(ctx) })
		lists = append(lists, func() discovery.OnlineList { mu.Lock(); defer mu.Unlock(); return last })
		waiters = append(waiters, changed)
	}
	return servers, lists, waiters
}

func nodeEligible(l discovery.OnlineList, id string) bool {
	for _, n := range l.Nodes {
		if n.ID == id {
			return n.Eligible()
		}
	}
	return false
}

// waitBoth waits until cond holds on both clients' lists and returns when.
func waitBoth(ctx context.Context, t *testing.T, lists []func() discovery.OnlineList, waiters []chan struct{}, cond func(discovery.OnlineList) bool) time.Time {
	t.Helper()
	for i := range lists {
		for !cond(lists[i]()) {
			select {
			case <-waiters[i]:
			case <-ctx.Done():
				t.Fatalf("client %d: condition not met: %v", i, ctx.Err())
			}
		}
	}
	return time.Now()
}

type agentProc struct {
	cmd     *exec.Cmd
	control string
	out     *lockedText   // the agent's log (JSON lines on stderr)
	logged  chan struct{} // closed when the log ends (the process exited)
}

// lockedText collects a child's output while the test reads it.
type lockedText struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedText) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedText) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAgentProc starts an agent with JSON logs and reads its control
// address from its startup log line.
func startAgentProc(t *testing.T, bin string, servers []string, id string) *agentProc {
	t.Helper()
	cmd := exec.Command(bin, "agent", "--servers", strings.Join(servers, ","), "--token", procToken,
		"--id", id, "--app", "llama", "--addr", "http=127.0.0.1:9999", "--engine", "vllm",
		"--util", "0.4", "--concurrency", "3", "--control", "127.0.0.1:0", "--drain-timeout", "10s", "--log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &agentProc{cmd: cmd, out: &lockedText{}, logged: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(io.TeeReader(stderr, p.out))
	for p.control == "" && sc.Scan() {
		var line struct {
			Msg, Addr string
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("agent log line is not JSON: %q: %v", sc.Text(), err)
		}
		if line.Msg == "agent: control API listening" {
			p.control = line.Addr
		}
	}
	if p.control == "" {
		t.Fatalf("agent logged no control address: %s", p.out)
	}
	go func() {
		defer close(p.logged)
		_, _ = io.Copy(p.out, stderr)
	}()
	return p
}

func TestAgentProcessKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin := stampedBinary(t)
	servers, lists, waiters := procTier(t)
	p := startAgentProc(t, bin, servers, "victim")
	startAgentProc(t, bin, servers, "survivor")
	waitBoth(ctx, t, lists, waiters, func(l discovery.OnlineList) bool {
		return nodeEligible(l, "victim") && nodeEligible(l, "survivor")
	})
	// Let it beat a few times, then kill -9.
	time.Sleep(1200 * time.Millisecond)
	killed := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	gone := waitBoth(ctx, t, lists, waiters, func(l discovery.OnlineList) bool {
		for _, n := range l.Nodes {
			if n.ID == "victim" {
				return false
			}
		}
		return true
	})
	took := gone.Sub(killed)
	t.Logf("kill -9 → node removed from both clients after %v", took)
	if took > 3500*time.Millisecond {
		t.Fatalf("removal took %v, want ≤ 3.5s", took)
	}
	for i := range lists {
		if !nodeEligible(lists[i](), "survivor") {
			t.Fatalf("client %d lost the surviving node", i)
		}
	}
}

func TestAgentProcessDrainAndSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bin := stampedBinary(t)
	servers, lists, waiters := procTier(t)
	a := startAgentProc(t, bin, servers, "a")
	b := startAgentProc(t, bin, servers, "b")
	waitBoth(ctx, t, lists, waiters, func(l discovery.OnlineList) bool { return nodeEligible(l, "a") && nodeEligible(l, "b") })

	// `switchyard agent drain` reaches the running agent and returns once
	// both clients acknowledged.
	out, err := exec.CommandContext(ctx, bin, "agent", "drain", "--control", a.control).CombinedOutput()
	if err != nil {
		t.Fatalf("agent drain: %v\n%s", err, out)
	}
	for i := range lists {
		if nodeEligible(lists[i](), "a") {
			t.Fatalf("agent drain returned while client %d still routes to a:\n%s", i, out)
		}
	}
	// SIGTERM: drain, offline, exit 0.
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitBoth(ctx, t, lists, waiters, func(l discovery.OnlineList) bool { return !nodeEligible(l, "b") })
	select { // read the whole log before Wait closes the pipe
	case <-b.logged:
	case <-ctx.Done():
		t.Fatal("the agent did not exit after SIGTERM")
	}
	if err := b.cmd.Wait(); err != nil {
		t.Fatalf("agent exit after SIGTERM: %v\n%s", err, b.out)
	}
	// The shutdown went through the same JSON logger.
	for _, msg := range []string{`"msg":"agent: drained: every watching gateway acknowledged"`, `"msg":"agent: stopped"`} {
		if !strings.Contains(b.out.String(), msg) {
			t.Errorf("the agent's log lacks %s:\n%s", msg, b.out)
		}
	}
	waitBoth(ctx, t, lists, waiters, func(l discovery.OnlineList) bool {
		for _, n := range l.Nodes {
			if n.ID == "b" {
				return false
			}
		}
		return true
	})
}
