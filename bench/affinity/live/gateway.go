package live

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// gatewayProc is a running gateway process.
type gatewayProc struct {
	cmd           *exec.Cmd
	pid           int
	listen, admin string
	exited        chan struct{}
	dir, logPath  string
}

// configYAML is the gateway's config for one run: one route over the
// app's nodes from Resource, affinity on or off.
func configYAML(listen, admin, resource string, affinityOn bool) string {
	off := ""
	if !affinityOn {
		off = "    affinity: {off: true}\n"
	}
	return fmt.Sprintf(`listen: {client: %q, admin: %q}
discovery: {servers: [%q], token: %q}
weight_period: 1s
routes:
  - name: %s
    app: %s
    match: {models: [%s]}
    timeouts: {first_byte: 60s, total: 120s}
%s`, listen, admin, resource, token, Model, Model, Model, off)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("live: %w", err)
	}
	a := ln.Addr().String()
	ln.Close()
	return a, nil
}

// startGateway runs the gateway command with a config for the fleet and
// waits until it serves.
func startGateway(ctx context.Context, cfg *Config, resource string, affinityOn bool) (*gatewayProc, error) {
	g := &gatewayProc{exited: make(chan struct{})}
	var err error
	if g.listen, err = freePort(); err != nil {
		return nil, err
	}
	if g.admin, err = freePort(); err != nil {
		return nil, err
	}
	if g.dir, err = os.MkdirTemp("", "switchyard-live-"); err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	conf := filepath.Join(g.dir, "gateway.yaml")
	if err := os.WriteFile(conf, []byte(configYAML(g.listen, g.admin, resource, affinityOn)), 0o600); err != nil {
		os.RemoveAll(g.dir)
		return nil, fmt.Errorf("live: %w", err)
	}
	args := append(slices.Clone(cfg.Gateway[1:]), "--config", conf)
	g.cmd = exec.Command(cfg.Gateway[0], args...)
	g.cmd.Env = append(os.Environ(), cfg.Env...)
	g.cmd.Dir = g.dir
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	g.logPath = filepath.Join(g.dir, "gateway.log")
	out, err := os.Create(g.logPath)
	if err != nil {
		os.RemoveAll(g.dir)
		return nil, fmt.Errorf("live: %w", err)
	}
	g.cmd.Stdout, g.cmd.Stderr = out, out
	err = g.cmd.Start()
	out.Close()
	if err != nil {
		os.RemoveAll(g.dir)
		return nil, fmt.Errorf("live: start gateway: %w", err)
	}
	g.pid = g.cmd.Process.Pid
	go func() {
		_ = g.cmd.Wait()
		close(g.exited)
	}()
	if err := g.waitReady(ctx, 20*time.Second); err != nil {
		b, _ := os.ReadFile(g.logPath)
		g.stop()
		return nil, fmt.Errorf("live: gateway not ready: %w: %s", err, tail(b))
	}
	return g, nil
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

// waitReady polls the admin port's /readyz.
func (g *gatewayProc) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	c := &http.Client{Timeout: time.Second}
	last := errors.New("no answer")
	for time.Now().Before(deadline) {
		resp, err := c.Get("http://" + g.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("readyz: status %d", resp.StatusCode)
		} else {
			last = err
		}
		select {
		case <-g.exited:
			return errors.New("exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return last
}

// stop ends the gateway: SIGTERM, then SIGKILL after 5 s.
func (g *gatewayProc) stop() {
	defer os.RemoveAll(g.dir)
	_ = syscall.Kill(-g.pid, syscall.SIGTERM)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-g.exited:
		return
	case <-t.C:
	}
	_ = syscall.Kill(-g.pid, syscall.SIGKILL)
	<-g.exited
}
