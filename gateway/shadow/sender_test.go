package shadow_test

import (
	"context"
	"errors"
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
