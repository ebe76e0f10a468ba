package frontend

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestH2WorkersReuseRetireStop: streams served at once get a worker
// each; the workers stay for the next streams, are retired once a period
// needs none of them, and stop ends the rest.
func TestH2WorkersReuseRetireStop(t *testing.T) {
	p := newH2Workers()
	defer p.stop()
	const n = 8
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	handle := func(w http.ResponseWriter, _ *http.Request) {
		started.Done()
		<-release
		w.WriteHeader(http.StatusNoContent)
	}
	var done sync.WaitGroup
	recs := make([]*httptest.ResponseRecorder, n)
	for i := range n {
		recs[i] = httptest.NewRecorder()
		done.Add(1)
		go func() {
			defer done.Done()
			p.serve(handle, recs[i], httptest.NewRequest("POST", "/", nil))
		}()
	}
	started.Wait()
	if got := p.count(); got != n {
		t.Fatalf("%d workers for %d streams at once, want %d", got, n, n)
	}
	close(release)
	done.Wait()
	for i, r := range recs {
		if r.Code != http.StatusNoContent {
			t.Fatalf("stream %d: status %d", i, r.Code)
		}
	}
	// The next streams, one at a time, reuse the workers.
	for range 3 * n {
		r := httptest.NewRecorder()
		p.serve(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }, r, httptest.NewRequest("GET", "/", nil))
		if r.Code != http.StatusAccepted {
			t.Fatalf("status %d", r.Code)
		}
	}
	if got := p.count(); got != n {
		t.Fatalf("%d workers after serial streams, want the %d kept", got, n)
	}
	// This period peaked at n busy: none retired. The next needs none.
	if got := p.retire(); got != 0 {
		t.Fatalf("retire ended %d workers in a period that needed them all", got)
	}
	retired, deadline := 0, time.Now().Add(10*time.Second)
	for retired < n {
		// A worker that has just answered may not be waiting yet.
		retired += p.retire()
		if time.Now().After(deadline) {
			t.Fatalf("retired %d of %d idle workers", retired, n)
		}
		runtime.Gosched()
	}
	p.stop()
	if got := p.count(); got != 0 {
		t.Fatalf("%d workers after stop", got)
	}
}

// TestH2WorkersPanicGoesToTheStream: a handler's panic is raised on the
// stream's goroutine, where net/http turns http.ErrAbortHandler into a
// stream reset, and the worker serves on.
func TestH2WorkersPanicGoesToTheStream(t *testing.T) {
	p := newH2Workers()
	defer p.stop()
	got := func() (v any) {
		defer func() { v = recover() }()
		p.serve(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }, httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
		return nil
	}()
	if got != http.ErrAbortHandler { //nolint:errorlint // a sentinel panic value
		t.Fatalf("serve panicked with %v, want http.ErrAbortHandler", got)
	}
	r := httptest.NewRecorder()
	p.serve(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }, r, httptest.NewRequest("GET", "/", nil))
	if r.Code != http.StatusTeapot || p.count() != 1 {
		t.Fatalf("after a panic: status %d, %d workers; want 418 from the one worker", r.Code, p.count())
	}
}

// TestH2WorkersAfterStop: once stopped, streams are served on their own
// goroutine and no worker starts.
func TestH2WorkersAfterStop(t *testing.T) {
	p := newH2Workers()
	p.stop()
	r := httptest.NewRecorder()
	p.serve(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }, r, httptest.NewRequest("GET", "/", nil))
	if r.Code != http.StatusNoContent || p.count() != 0 {
		t.Fatalf("after stop: status %d, %d workers", r.Code, p.count())
	}
}
