package frontend

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/forward"
)

// h2Workers runs the forwarding of HTTP/2 streams on long-lived
// goroutines. net/http starts a goroutine per stream, whose stack starts
// small; forwarding a request (the core's pick and exchange) runs deep
// enough that the runtime doubled that stack, copying every frame, on
// each request (runtime.newstack was ~10 % of the gateway's CPU per
// HTTP/2 request). A worker's stack grows once and stays grown. The
// stream's goroutine waits for its worker, then writes the answer itself
// (a shallow path), so a long stream's relay holds no worker. Workers
// are started when none is idle and retired when fewer are needed
// (retire); stop ends them all.
type h2Workers struct {
	jobs chan *h2Job // unbuffered: a send succeeds only to an idle worker
	busy atomic.Int32
	peak atomic.Int32 // the most busy at once since the last retire

	mu       sync.Mutex // orders start against stop
	workers  int        // started, not yet ended
	retiring bool       // retireLoop started
	stopped  bool
	quit     chan struct{}
	wg       sync.WaitGroup
}

// h2Job is one exchange handed to a worker.
type h2Job struct {
	run  func(*forward.Exchange)
	x    *forward.Exchange
	done chan any // run's panic value, or nil; buffered
}

var h2JobPool = sync.Pool{New: func() any { return &h2Job{done: make(chan any, 1)} }}

// retireEvery is how often workers idle since the last period beyond the
// period's peak are ended.
const retireEvery = 10 * time.Second

func newH2Workers() *h2Workers {
	return &h2Workers{jobs: make(chan *h2Job), quit: make(chan struct{})}
}

// do runs run(x) on a worker and returns when it has; a panic in run is
// raised again here, on the stream's goroutine, where the handler's
// recovery and net/http expect it. Once stop has run, run runs on the
// caller's goroutine.
func (p *h2Workers) do(run func(*forward.Exchange), x *forward.Exchange) {
	j := h2JobPool.Get().(*h2Job)
	j.run, j.x = run, x
	p.notePeak(p.busy.Add(1))
	defer p.busy.Add(-1)
	select {
	case p.jobs <- j:
	default:
		if !p.start(j) {
			j.run, j.x = nil, nil
			h2JobPool.Put(j)
			run(x)
			return
		}
	}
	v := <-j.done
	j.run, j.x = nil, nil
	h2JobPool.Put(j)
	if v != nil {
		panic(v)
	}
}

// notePeak raises peak to busy if busy is higher.
func (p *h2Workers) notePeak(busy int32) {
	for {
		pk := p.peak.Load()
		if busy <= pk || p.peak.CompareAndSwap(pk, busy) {
			return
		}
	}
}

// start starts a worker with j as its first job; false once stopped.
func (p *h2Workers) start(j *h2Job) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	if !p.retiring {
		p.retiring = true
		p.wg.Add(1)
		go p.retireLoop()
	}
	p.workers++
	p.wg.Add(1)
	go p.work(j)
	return true
}

// work runs jobs until it is retired (a nil job) or stopped.
func (p *h2Workers) work(j *h2Job) {
	defer func() {
		p.mu.Lock()
		p.workers--
		p.mu.Unlock()
		p.wg.Done()
	}()
	for j != nil {
		j.done <- runJob(j) // j belongs to its stream again
		select {
		case j = <-p.jobs:
		case <-p.quit:
			return
		}
	}
}

// runJob runs j and returns what it panicked with, nil if nothing.
func runJob(j *h2Job) (panicked any) {
	defer func() { panicked = recover() }()
	j.run(j.x)
	return nil
}

// retireLoop calls retire every retireEvery until stop.
func (p *h2Workers) retireLoop() {
	defer p.wg.Done()
	t := time.NewTicker(retireEvery)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			p.retire()
		}
	}
}

// retire ends the idle workers beyond the most that were busy at once
// since the last call, and starts a new period. It returns how many it
// ended.
func (p *h2Workers) retire() (ended int) {
	p.mu.Lock()
	excess := int32(p.workers) - p.peak.Load()
	p.mu.Unlock()
	p.peak.Store(p.busy.Load())
	for ; excess > 0; excess-- {
		select {
		case p.jobs <- nil:
			ended++
		default:
			return ended // none idle
		}
	}
	return ended
}

// stop ends the workers: idle ones at once, busy ones when their stream
// is served. It returns when they have all ended.
func (p *h2Workers) stop() {
	p.mu.Lock()
	if !p.stopped {
		p.stopped = true
		close(p.quit)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// count returns the workers started and not ended (tests).
func (p *h2Workers) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.workers
}
