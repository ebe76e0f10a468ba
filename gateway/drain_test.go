package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDrainDelay: when Serve's context ends (SIGTERM), /readyz fails at
// once while requests are still served, in-flight ones included, for the
// drain delay; then the listener closes, the in-flight request finishes
// and Serve returns. The delay is ten minutes here and ended through the
// test hook, so nothing depends on timing.
func TestDrainDelay(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	slow := backend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		if strings.Contains(r.URL.Path, "slow") {
			started <- struct{}{}
			<-release
		}
		w.Header().Set("X-Node", "slow")
		_, _ = io.WriteString(w, `{}`)
	})
	cfg := testConfig(staticRoute("m", slow.URL))
	cfg.Routes[0].AllowPaths = []string{"/slow"}
	cfg.Limits.DrainDelay = 10 * time.Minute
	g, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	al, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, cl, al) }()
	addr, admin := "http://"+cl.Addr().String(), "http://"+al.Addr().String()
	c := testClient()
	ready := func() int {
		t.Helper()
		resp, err := c.Get(admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, 5*time.Second, "the gateway ready", func() bool { return ready() == 200 })

	inflight := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", addr+"/slow", strings.NewReader(`{"model":"m"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			inflight <- -1
			return
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		inflight <- resp.StatusCode
	}()
	<-started

	cancel() // SIGTERM
	waitFor(t, 5*time.Second, "/readyz to fail", func() bool { return ready() == http.StatusServiceUnavailable })
	// Still serving during the delay (each answer asks the client to
	// reconnect: HTTP/1.1 connections close after it).
	for i := range 5 {
		resp, body := post(t, c, addr+"/v1/completions", `{"model":"m"}`)
		if resp.StatusCode != 200 || !resp.Close {
			t.Fatalf("request %d during the drain delay: %d (close %v) %s", i, resp.StatusCode, resp.Close, body)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned during the drain delay: %v", err)
	default:
	}

	close(g.endDrain) // the delay is over
	waitFor(t, 5*time.Second, "the client listener to close", func() bool {
		conn, err := net.DialTimeout("tcp", cl.Addr().String(), time.Second)
		if err == nil {
			conn.Close()
			return false
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	select {
	case err := <-done:
		t.Fatalf("Serve returned with a request in flight: %v", err)
	default:
	}
	close(release)
	if st := <-inflight; st != 200 {
		t.Fatalf("the in-flight request: %d", st)
	}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-timer.C:
		t.Fatal("Serve did not return")
	}
}

// TestDrainDelayElapses: with a short real delay, Serve returns only
// after it.
func TestDrainDelayElapses(t *testing.T) {
	be := backend(t, "b", nil)
	cfg := testConfig(staticRoute("m", be.URL))
	cfg.Limits.DrainDelay = 300 * time.Millisecond
	g, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, cl, nil) }()
	resp, _ := post(t, testClient(), "http://"+cl.Addr().String()+"/v1/completions", `{"model":"m"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	stop := time.Now()
	cancel()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-timer.C:
		t.Fatal("Serve did not return")
	}
	if d := time.Since(stop); d < cfg.Limits.DrainDelay {
		t.Fatalf("Serve returned %v after its context ended, before the %v drain delay", d, cfg.Limits.DrainDelay)
	}
}
