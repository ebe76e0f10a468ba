package shadow_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

// TestHTTPSenderCancelsOnlyItsOwnRequest: two sends in flight through one
// HTTPSender to a shadow that holds them; cancelling one ends that send
// at once (canceled) while the other, its context still live, gets its
// answer when the shadow releases it.
func TestHTTPSenderCancelsOnlyItsOwnRequest(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	arrived := make(chan string, 2)
	release := make(chan struct{})
	addr := serve(t, func(rc *fasthttp.RequestCtx) {
		arrived <- string(rc.Path())
		select {
		case <-release:
		case <-ctx.Done():
		}
		rc.SetContentType("application/json")
		rc.SetBodyString(`{"path":"` + string(rc.Path()) + `"}`)
	})
	s := newSender(t, "http://"+addr)

	send := func(ctx context.Context, path string, a *shadow.Answer) chan error {
		done := make(chan error, 1)
		go func() {
			var c shadow.Copy
			c.Method, c.URI, c.Host = []byte("POST"), []byte(path), []byte("shadow")
			c.AddHeader([]byte("Content-Type"), []byte("application/json"))
			c.Body = []byte(`{"model":"m"}`)
			done <- s.Send(ctx, "candidate", &c, a)
		}()
		return done
	}
	cutCtx, cut := context.WithCancel(ctx)
	defer cut()
	var cutAnswer, liveAnswer shadow.Answer
	cutDone := send(cutCtx, "/cut", &cutAnswer)
	liveDone := send(ctx, "/live", &liveAnswer)
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case p := <-arrived:
			seen[p] = true
		case <-ctx.Done():
			t.Fatalf("both sends at the shadow: only %v", seen)
		}
	}

	cut()
	select {
	case err := <-cutDone:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled send: %v, want context.Canceled", err)
		}
	case <-ctx.Done():
		t.Fatal("the cancelled send did not return while the shadow held it")
	}
	select {
	case err := <-liveDone:
		t.Fatalf("the live send returned before the shadow answered: %v", err)
	default:
	}

	close(release)
	select {
	case err := <-liveDone:
		if err != nil || liveAnswer.Status != 200 {
			t.Fatalf("live send: status %d, %v; want 200 and no error (cancelling its sibling must not cut it)", liveAnswer.Status, err)
		}
	case <-ctx.Done():
		t.Fatal("the live send never returned")
	}

	// The sender goes on: the live connection is reused, a new one
	// replaces the cut one.
	var again shadow.Answer
	if err := <-send(ctx, "/again", &again); err != nil || again.Status != 200 {
		t.Fatalf("send after the cut: status %d, %v", again.Status, err)
	}
}

// TestCloseLogsCancelledCopies: the copies Close cancels are compared
// after the cancellation, and their differences (a canceled shadow) are
// in the log file by the time Close returns.
func TestCloseLogsCancelledCopies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	arrived := make(chan struct{}, 4)
	addr := serve(t, func(rc *fasthttp.RequestCtx) {
		arrived <- struct{}{}
		<-ctx.Done() // held until the test ends; Close must cut it
	})
	cfg := shadow.DefaultConfig()
	cfg.Target = "candidate"
	cfg.Timeout = time.Minute
	cfg.CloseTimeout = 2 * time.Second
	cfg.Log.Path = filepath.Join(t.TempDir(), "diff.jsonl")
	m, err := shadow.New(ctx, cfg, newSender(t, "http://"+addr))
	if err != nil {
		t.Fatal(err)
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("/v1/chat/completions")
	req.Header.SetMethod("POST")
	req.SetBodyString(`{"messages":[]}`)
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	for _, id := range []string{"a", "b"} {
		h := m.Offer(reqOf(req), []byte(id))
		if h == nil {
			t.Fatalf("offer %s dropped", id)
		}
		finishResponse(h, resp, time.Millisecond)
	}
	for i := 0; i < 2; i++ {
		select {
		case <-arrived:
		case <-ctx.Done():
			t.Fatal("copies at the shadow")
		}
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	b, err := os.ReadFile(cfg.Log.Path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"shadow_error":"canceled`) || !strings.Contains(lines[1], `"shadow_error":"canceled`) {
		t.Fatalf("log when Close returned:\n%s\nwant two canceled copies", b)
	}
	if st := m.Stats(); st.ErrorsCanceled != 2 || st.LogWritten != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestHTTPSenderRetriesAClosedIdleConnection: a shadow that closes each
// connection after its answer (without Connection: close) leaves the
// sender a dead idle connection; the next send finds it dead before any
// byte of the answer and goes again on a new connection.
func TestHTTPSenderRetriesAClosedIdleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			br := bufio.NewReader(c)
			var req fasthttp.Request
			if err := req.Read(br); err == nil {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
			}
			_ = c.Close()
		}
	}()
	s := newSender(t, "http://"+ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 3; i++ {
		var c shadow.Copy
		c.Method, c.URI, c.Host = []byte("POST"), []byte("/v1/completions"), []byte("shadow")
		c.Body = []byte(`{"model":"m"}`)
		var a shadow.Answer
		if err := s.Send(ctx, "candidate", &c, &a); err != nil || a.Status != 200 {
			t.Fatalf("send %d: status %d, %v", i, a.Status, err)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections for 3 sends, want one each", n)
	}
}
