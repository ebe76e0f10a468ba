package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// runEnv is the environment variable every child carries, valued with
// the run's id, so that the leftover check finds them all (leftovers).
const runEnv = "SWITCHYARD_CHAOS_RUN"

// procs starts and owns the run's child processes. Each child runs in a
// process group of its own (a signal to it reaches nothing else) and, on
// Linux, dies with the harness (parent-death signal). Safe for concurrent
// use.
type procs struct {
	bin, dir, runID string

	mu  sync.Mutex
	all []*proc // guarded by mu: every process started, running or not
}

// proc is one child process: one start of one role (a restart is a new
// proc with the same name).
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string        // its stdout and stderr
	done chan struct{} // closed when it has exited
	err  error         // its exit status, once done is closed
}

// env is the children's environment: only what a process needs, so
// that nothing of the harness's (a SWITCHYARD_TOKEN, say) leaks into
// them, plus the run marker.
func (p *procs) env() []string {
	env := []string{runEnv + "=" + p.runID, "GOTRACEBACK=all"}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// start runs `bin args...` as the process called name; its output goes to
// DIR/logs/NAME.N.log.
func (p *procs) start(name string, args ...string) (*proc, error) {
	p.mu.Lock()
	n := 0
	for _, q := range p.all {
		if q.name == name {
			n++
		}
	}
	p.mu.Unlock()
	logPath := filepath.Join(p.dir, "logs", fmt.Sprintf("%s.%d.log", name, n))
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("chaos: %s: %w", name, err)
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Env = p.env()
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("chaos: start %s: %w", name, err)
	}
	q := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { // owned by q: ends when the process exits
		q.err = cmd.Wait()
		f.Close()
		close(q.done)
	}()
	p.mu.Lock()
	p.all = append(p.all, q)
	p.mu.Unlock()
	return q, nil
}

// pid is the process id (also its process group id).
func (q *proc) pid() int { return q.cmd.Process.Pid }

// running reports whether the process has not exited.
func (q *proc) running() bool {
	select {
	case <-q.done:
		return false
	default:
		return true
	}
}

// signal sends sig to the process alone.
func (q *proc) signal(sig syscall.Signal) error {
	if !q.running() {
		return fmt.Errorf("chaos: %s already exited", q.name)
	}
	return syscall.Kill(q.pid(), sig)
}

// kill9 kills the process's whole group with SIGKILL and waits for it.
func (q *proc) kill9() error {
	if !q.running() {
		return nil
	}
	_ = syscall.Kill(-q.pid(), syscall.SIGCONT) // a stopped process dies only once continued on some kernels
	if err := syscall.Kill(-q.pid(), syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("chaos: kill -9 %s: %w", q.name, err)
	}
	return q.wait(10 * time.Second)
}

// wait waits up to d for the process to exit.
func (q *proc) wait(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-q.done:
		return nil
	case <-t.C:
		return fmt.Errorf("chaos: %s did not exit within %v", q.name, d)
	}
}

// stop asks the process to stop (SIGTERM), then kills its group after
// grace.
func (q *proc) stop(grace time.Duration) {
	if !q.running() {
		return
	}
	_ = syscall.Kill(-q.pid(), syscall.SIGCONT)
	_ = syscall.Kill(q.pid(), syscall.SIGTERM)
	if q.wait(grace) != nil {
		_ = q.kill9()
	}
}

// exitCode is the process's exit code once it exited (-1 when killed by
// a signal).
func (q *proc) exitCode() int {
	var ee *exec.ExitError
	if q.err == nil {
		return 0
	}
	if errors.As(q.err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// stopAll stops every process still running, in parallel, SIGTERM first.
func (p *procs) stopAll(grace time.Duration) {
	p.mu.Lock()
	all := append([]*proc(nil), p.all...)
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, q := range all {
		wg.Go(func() { q.stop(grace) })
	}
	wg.Wait()
}

// leftovers returns the processes of this run that are still alive: the
// children the harness started (by their pids) and anything else carrying
// the run's marker in its environment (what a child might have started).
func (p *procs) leftovers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	seen := map[int]bool{}
	for _, q := range p.all {
		seen[q.pid()] = true
		if q.running() {
			out = append(out, q.name+" (pid "+strconv.Itoa(q.pid())+")")
		}
	}
	for _, pid := range markedProcesses(runEnv + "=" + p.runID) {
		if !seen[pid] {
			out = append(out, "pid "+strconv.Itoa(pid)+" with the run's marker")
		}
	}
	return out
}

// waitUntil polls cond every 50 ms until it holds, ctx ends or d passes;
// it is for external processes catching up, never for synchronising
// goroutines of the harness.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-ctx.Done():
			return cond()
		case <-tick.C:
		}
	}
}
