package scrape

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/engines"
	_ "github.com/switchyard-dev/switchyard/engines/all" // the adapters Target.Engine names
)

// Target is one engine metrics endpoint. It is a comparable value: the
// scraper keys its state by it.
type Target struct {
	// URL is the metrics URL, http:// or https://host:port/path.
	URL string
	// Engine is the adapter that parses the metrics (an engines registry
	// name or alias, e.g. "vllm").
	Engine string
}

// Result is the outcome of a target's scrapes so far. It is a value; the
// scraper hands out copies.
type Result struct {
	// Load is the last load read successfully (the zero Load, with every
	// value unknown, before the first success). When Err is set, Load is
	// older than the last scrape: callers should treat it as unknown.
	Load engines.Load
	// At is when Load was read; zero before the first success.
	At time.Time
	// Err is the last scrape's error (timeout, connection refused, HTTP
	// status, parse error); nil when the last scrape succeeded.
	Err error
	// Failures counts consecutive failed scrapes.
	Failures int
	// Scrapes counts completed scrapes, good or failed.
	Scrapes uint64
}

// Fresh reports whether Load is the answer to the last scrape: a scrape
// happened and it succeeded.
func (r Result) Fresh() bool { return r.Err == nil && !r.At.IsZero() }

// ErrTarget is wrapped by Set's error for a target it cannot scrape.
var ErrTarget = errors.New("scrape: bad target")

// Scraper scrapes a changing set of targets. Create it with [New], start
// it with Run, and change its targets with Set. It is safe for concurrent
// use and must not be copied.
type Scraper struct {
	cfg Config // immutable
	sem chan struct{}

	mu      sync.Mutex
	targets map[Target]*target // guarded by mu
	runCtx  context.Context    // guarded by mu; set while Run runs
	running bool               // guarded by mu
	wg      sync.WaitGroup
}

// target is one target's state. a is immutable; the other fields are
// guarded by Scraper.mu.
type target struct {
	a       engines.Adapter
	res     Result
	cancel  context.CancelFunc // nil until its loop starts
	failing bool               // logged as failing
}

// New checks cfg and returns a Scraper with no targets; call Run to start
// it.
func New(cfg Config) (*Scraper, error) {
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{
			Proxy:               nil, // in-cluster pod addresses: never through a proxy
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     max(90*time.Second, 3*cfg.Interval),
			TLSHandshakeTimeout: cfg.Timeout,
		}}
	}
	return &Scraper{
		cfg:     cfg,
		sem:     make(chan struct{}, cfg.Concurrency),
		targets: make(map[Target]*target),
	}, nil
}

// CheckTarget returns an error wrapping ErrTarget when t cannot be
// scraped: an unknown engine or a URL that is not http(s)://host/path.
func CheckTarget(t Target) error {
	if _, err := engines.Lookup(t.Engine); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrTarget, t.URL, err)
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: %q is not an http(s)://host[:port]/path URL", ErrTarget, t.URL)
	}
	return nil
}

// Set replaces the scraped targets with ts. New targets are scraped at
// once (when Run runs), removed ones are forgotten (a scrape in flight is
// cancelled), and the others keep their schedule and result. Targets
// that cannot be scraped (see CheckTarget) are left out and reported in
// the returned error; the others are set.
func (s *Scraper) Set(ts []Target) error {
	var errs []error
	want := make(map[Target]engines.Adapter, len(ts))
	for _, t := range ts {
		if _, dup := want[t]; dup {
			continue
		}
		if err := CheckTarget(t); err != nil {
			errs = append(errs, err)
			continue
		}
		a, _ := engines.Lookup(t.Engine)
		want[t] = a
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, st := range s.targets {
		if _, keep := want[t]; !keep {
			if st.cancel != nil {
				st.cancel()
			}
			delete(s.targets, t)
		}
	}
	for t, a := range want {
		if _, ok := s.targets[t]; ok {
			continue
		}
		st := &target{a: a}
		s.targets[t] = st
		if s.running {
			s.startLocked(t, st, 0)
		}
	}
	return errors.Join(errs...)
}

// Targets returns the current targets, sorted by URL then engine.
func (s *Scraper) Targets() []Target {
	s.mu.Lock()
	out := make([]Target, 0, len(s.targets))
	for t := range s.targets {
		out = append(out, t)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].URL != out[j].URL {
			return out[i].URL < out[j].URL
		}
		return out[i].Engine < out[j].Engine
	})
	return out
}

// Result returns t's latest result; false when t is not a target.
func (s *Scraper) Result(t Target) (Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.targets[t]
	if !ok {
		return Result{}, false
	}
	return st.res, true
}

// Run scrapes every target until ctx ends, then waits for the scrapes in
// flight to stop and returns nil. The first scrapes of the targets set
// before Run are spread over one Interval. Run may be called once.
func (s *Scraper) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running || s.runCtx != nil {
		s.mu.Unlock()
		return errors.New("scrape: Run called twice")
	}
	s.runCtx, s.running = ctx, true
	for t, st := range s.targets {
		s.startLocked(t, st, rand.N(s.cfg.Interval))
	}
	s.mu.Unlock()

	<-ctx.Done()
	s.mu.Lock()
	s.running = false
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// startLocked starts t's scrape loop after first.
func (s *Scraper) startLocked(t Target, st *target, first time.Duration) {
	ctx, cancel := context.WithCancel(s.runCtx)
	st.cancel = cancel
	s.wg.Go(func() {
		defer cancel()
		s.loop(ctx, t, st, first)
	})
}

// loop scrapes t every Interval ±10 % until ctx ends (Run stopped or t
// was removed).
func (s *Scraper) loop(ctx context.Context, t Target, st *target, first time.Duration) {
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		l, err := s.scrape(ctx, t, st.a)
		<-s.sem
		if ctx.Err() != nil {
			return // removed or stopping: the result means nothing
		}
		s.record(t, st, l, err)
		if s.cfg.OnResult != nil {
			s.cfg.OnResult(t)
		}
		timer.Reset(jitter(s.cfg.Interval))
	}
}

// scrape does one bounded GET and parse. A panic in a parser becomes an
// error: one bad exposition must not take the gateway down.
func (s *Scraper) scrape(ctx context.Context, t Target, a engines.Adapter) (l engines.Load, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logger.Error("scrape: parser panicked", "url", t.URL, "engine", t.Engine, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("scrape: %s parser panicked: %v", a.Name(), p)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	l, err = engines.Scrape(ctx, s.cfg.Client, t.URL, a)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("scrape: %s: no answer within %v: %w", t.URL, s.cfg.Timeout, err)
	}
	return l, err
}

// record stores a scrape's outcome, and logs a target that starts failing
// (warning, once) and one that recovers (info).
func (s *Scraper) record(t Target, st *target, l engines.Load, err error) {
	s.mu.Lock()
	if s.targets[t] != st { // removed (and maybe re-added) meanwhile
		s.mu.Unlock()
		return
	}
	st.res.Scrapes++
	st.res.Err = err
	var logFail, logOK bool
	if err == nil {
		st.res.Load, st.res.At, st.res.Failures = l, time.Now(), 0
		logOK, st.failing = st.failing, false
	} else {
		st.res.Failures++
		logFail, st.failing = !st.failing, true
	}
	s.mu.Unlock()
	switch {
	case logFail:
		s.cfg.Logger.Warn("scrape: target failing; its load is unknown until a scrape succeeds", "url", t.URL, "engine", t.Engine, "err", err)
	case logOK:
		s.cfg.Logger.Info("scrape: target recovered", "url", t.URL, "engine", t.Engine)
	}
}

// jitter returns d ±10 %.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}
