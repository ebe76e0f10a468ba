// Package gwproc runs a gateway process for the benchmark harnesses and
// tests. The process is told to listen on 127.0.0.1:0 (AnyPort) and Start
// learns the ports it bound from its startup log lines, so no port is
// picked before the gateway binds it and no other program can take it in
// between. Start then waits for the admin port's /readyz; Stop ends the
// process group.
//
// The gateway logs "gateway: admin listening" and then "gateway:
// listening", each with addr=HOST:PORT (cmd/switchyard/gateway.go), in
// slog's text or JSON format; a stand-in gateway must log the same lines
// (AdminMsg, ClientMsg). Watcher reads them from any log stream, so tests
// that run the gateway in-process use it too.
//
// Linux and other Unix systems only (process groups).
package gwproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// AnyPort is the listen address that makes the gateway bind a free
// loopback port of its choosing.
const AnyPort = "127.0.0.1:0"

// DefaultTimeout bounds Start's wait for the addresses and /readyz when
// Config.Timeout is zero.
const DefaultTimeout = 20 * time.Second

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Config is the gateway process to run.
type Config struct {
	// Command is the program and its arguments, including the listen
	// and admin addresses (AnyPort) as flags or in a config file in
	// Files, e.g. {"switchyard", "gateway", "--listen", AnyPort,
	// "--admin", AnyPort, "--route", "m=http://10.0.0.1:8000"}. A
	// relative program path is taken from this process's working
	// directory. It needs an admin listener (Start waits for /readyz).
	// Required.
	Command []string
	// Env is added to this process's environment.
	Env []string
	// Files are written to the process's working directory (Proc.Dir, a
	// new temporary directory) before it starts, name → content, mode
	// 0600: Command may name them by relative path.
	Files map[string]string
	// Timeout bounds the wait for the addresses and /readyz. Default
	// DefaultTimeout.
	Timeout time.Duration
}

// Proc is a running gateway process. Stop it when done.
type Proc struct {
	// Client and Admin are the addresses the gateway bound, host:port.
	Client, Admin string
	// Pid is the process's id, and its process group's.
	Pid int
	// Dir is its working directory, holding Config.Files and the log;
	// Stop removes it.
	Dir string
	// LogPath is the file receiving its stdout and stderr.
	LogPath string

	exited  chan struct{} // closed once the process exited and its output is in the log
	waitErr error         // the process's exit, once exited is closed
	stop    sync.Once
}

// Start runs the gateway process and returns once it has logged its
// addresses and its admin /readyz answers 200. It fails, stopping the
// process and quoting the end of its log, when the process exits first,
// the timeout passes, or ctx ends. ctx only bounds Start: Stop ends the
// process.
func Start(ctx context.Context, cfg Config) (*Proc, error) {
	if len(cfg.Command) == 0 {
		return nil, errors.New("gwproc: no command")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// exec takes a relative program path from the child's directory: make
	// it this process's, as a shell would.
	prog := cfg.Command[0]
	if strings.ContainsRune(prog, filepath.Separator) && !filepath.IsAbs(prog) {
		abs, err := filepath.Abs(prog)
		if err != nil {
			return nil, fmt.Errorf("gwproc: %w", err)
		}
		prog = abs
	}
	dir, err := os.MkdirTemp("", "switchyard-gateway-")
	if err != nil {
		return nil, fmt.Errorf("gwproc: %w", err)
	}
	for name, content := range cfg.Files {
		if !filepath.IsLocal(name) {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("gwproc: file name %q: want a relative path inside the directory", name)
		}
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("gwproc: %w", err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("gwproc: %w", err)
		}
	}
	p := &Proc{Dir: dir, LogPath: filepath.Join(dir, "gateway.log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.LogPath)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("gwproc: %w", err)
	}
	w := NewWatcher(logFile)
	cmd := exec.Command(prog, cfg.Command[1:]...)
	cmd.Env = append(os.Environ(), cfg.Env...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// One writer for both streams: exec copies them from one pipe, and
	// Wait returns once the copy has reached the log. WaitDelay bounds
	// that when another process holds the pipe open.
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		logFile.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("gwproc: start %s: %w", cfg.Command[0], err)
	}
	p.Pid = cmd.Process.Pid
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	if err := p.waitServing(ctx, w, timeout); err != nil {
		logTail := p.Tail()
		p.Stop()
		return nil, fmt.Errorf("gwproc: %s: %w\nlog tail:\n%s", filepath.Base(cfg.Command[0]), err, logTail)
	}
	return p, nil
}

// waitServing waits for the addresses in the log, then for /readyz.
func (p *Proc) waitServing(ctx context.Context, w *Watcher, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// waitErr says why wctx ended: ctx's own end, or the timeout.
	waitErr := func(waiting string) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", waiting, err)
		}
		return fmt.Errorf("%s: no answer within %v", waiting, timeout)
	}
	select {
	case <-w.Found():
	case <-p.exited:
		return fmt.Errorf("exited before it logged its addresses: %v", p.exitStatus())
	case <-wctx.Done():
		return waitErr("waiting for its listening log lines")
	}
	p.Client, p.Admin = w.Addrs()
	if p.Admin == "" {
		return fmt.Errorf("logged its client address %s but no admin address before it: give it an admin listener", p.Client)
	}
	c := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	last := errors.New("no answer")
	for {
		err := readyz(wctx, c, "http://"+p.Admin+"/readyz")
		if err == nil {
			return nil
		}
		if wctx.Err() == nil { // not an attempt cut short by the end of the wait
			last = err
		}
		select {
		case <-p.exited:
			return fmt.Errorf("exited before /readyz answered 200: %v", p.exitStatus())
		case <-wctx.Done():
			return fmt.Errorf("%w (last: %v)", waitErr("waiting for /readyz"), last)
		case <-tick.C:
		}
	}
}

// readyz is nil when url answers 200, else what it answered.
func readyz(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("readyz: status %d", resp.StatusCode)
	}
	return nil
}

// exitStatus is how the process ended; call it once exited is closed.
func (p *Proc) exitStatus() string {
	if p.waitErr == nil {
		return "exit status 0"
	}
	return p.waitErr.Error()
}

// Exited is closed once the process has exited and all its output is in
// the log.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Stop ends the process group: SIGTERM, then SIGKILL after 5 s. Then it
// removes Dir, the log with it. Safe to call more than once.
func (p *Proc) Stop() {
	p.stop.Do(func() {
		defer os.RemoveAll(p.Dir)
		select {
		case <-p.exited:
			return
		default:
		}
		_ = syscall.Kill(-p.Pid, syscall.SIGTERM)
		t := time.NewTimer(stopGrace)
		defer t.Stop()
		select {
		case <-p.exited:
			return
		case <-t.C:
		}
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
		<-p.exited
	})
}

// tailBytes is how much of the log's end Tail returns at most.
const tailBytes = 2000

// Tail returns the end of the process's log (about the last 2,000 bytes,
// from a line's start), for error messages. It is empty after Stop.
func (p *Proc) Tail() string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-tailBytes, 0)
	b := make([]byte, st.Size()-off)
	n, _ := f.ReadAt(b, off)
	s := string(b[:n])
	if off > 0 {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
		s = "…\n" + s
	}
	return strings.TrimRight(s, "\n")
}
