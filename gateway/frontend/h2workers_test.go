package frontend

import (
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/forward"
)

// TestH2WorkersReuseRetireStop: exchanges run at once get a worker each;
// the workers stay for the next ones, are retired once a period needs
// none of them, and stop ends the rest.
func TestH2WorkersReuseRetireStop(t *testing.T) {
	p := newH2Workers()
	defer p.stop()
	const n = 8
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	var ran atomic.Int32
	block := func(*forward.Exchange) {
		started.Done()
		<-release
		ran.Add(1)
	}
	var done sync.WaitGroup
	for range n {
		done.Add(1)
		go func() {
			defer done.Done()
			p.do(block, nil)
		}()
	}
	started.Wait()
	if got := p.count(); got != n {
		t.Fatalf("%d workers for %d exchanges at once, want %d", got, n, n)
	}
	close(release)
	done.Wait()
	if ran.Load() != n {
		t.Fatalf("%d of %d exchanges ran", ran.Load(), n)
	}
	// The next exchanges, one at a time, reuse the workers.
	for range 3 * n {
		p.do(func(*forward.Exchange) { ran.Add(1) }, nil)
	}
	if ran.Load() != 4*n {
		t.Fatalf("%d of %d exchanges ran", ran.Load(), 4*n)
	}
	if got := p.count(); got != n {
		t.Fatalf("%d workers after serial exchanges, want the %d kept", got, n)
	}
	// This period peaked at n busy: none retired. The next needs none.
	if got := p.retire(); got != 0 {
		t.Fatalf("retire ended %d workers in a period that needed them all", got)
	}
	retired, deadline := 0, time.Now().Add(10*time.Second)
	for retired < n {
		// A worker that has just finished may not be waiting yet.
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

// TestH2WorkersPanicGoesToTheStream: a panic on the worker is raised on
// the stream's goroutine, where serveH2 recovers it (and net/http turns
// http.ErrAbortHandler into a stream reset), and the worker works on.
func TestH2WorkersPanicGoesToTheStream(t *testing.T) {
	p := newH2Workers()
	defer p.stop()
	got := func() (v any) {
		defer func() { v = recover() }()
		p.do(func(*forward.Exchange) { panic(http.ErrAbortHandler) }, nil)
		return nil
	}()
	if got != http.ErrAbortHandler { //nolint:errorlint // a sentinel panic value
		t.Fatalf("do panicked with %v, want http.ErrAbortHandler", got)
	}
	ran := false
	p.do(func(*forward.Exchange) { ran = true }, nil)
	if !ran || p.count() != 1 {
		t.Fatalf("after a panic: ran %v, %d workers; want the one worker to run it", ran, p.count())
	}
}

// TestH2WorkersAfterStop: once stopped, exchanges run on the caller's
// goroutine and no worker starts.
func TestH2WorkersAfterStop(t *testing.T) {
	p := newH2Workers()
	p.stop()
	ran := false
	p.do(func(*forward.Exchange) { ran = true }, nil)
	if !ran || p.count() != 0 {
		t.Fatalf("after stop: ran %v, %d workers", ran, p.count())
	}
}
