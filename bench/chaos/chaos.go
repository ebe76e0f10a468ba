package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// Config is one run of the suite.
type Config struct {
	// Bin is the switchyard binary every process of the topology runs.
	// Required.
	Bin string
	// Quick runs the CI subset (Cases with Quick set) instead of every
	// case.
	Quick bool
	// Only runs these cases, by name, instead (see CaseNames).
	Only []string
	// Dir holds the run's files and its processes' logs. Default: a new
	// directory under the system's temporary directory (kept, so the
	// logs can be read after a failure).
	Dir string
	// Command is the command line the report shows; Note, if set, is a
	// line about the run (where, what else ran).
	Command, Note string
	// Log receives progress lines. Default: discarded.
	Log io.Writer
	// CaseTimeout bounds each case. Default 150 s.
	CaseTimeout time.Duration
}

// Validate checks the config and applies its defaults.
func (c *Config) Validate() error {
	if c.Bin == "" {
		return errors.New("chaos: Config.Bin (the switchyard binary) is required")
	}
	if fi, err := os.Stat(c.Bin); err != nil || fi.IsDir() {
		return fmt.Errorf("chaos: Config.Bin %q is not a file", c.Bin)
	}
	names := CaseNames()
	for _, n := range c.Only {
		if !slices.Contains(names, n) {
			return fmt.Errorf("chaos: unknown case %q (cases: %s)", n, strings.Join(names, ", "))
		}
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if c.CaseTimeout == 0 {
		c.CaseTimeout = 150 * time.Second
	}
	return supported()
}

// CaseNames lists the cases in the order they run.
func CaseNames() []string {
	var out []string
	for _, c := range cases() {
		out = append(out, c.name)
	}
	return out
}

// QuickNames lists the CI subset.
func QuickNames() []string {
	var out []string
	for _, c := range cases() {
		if c.quick {
			out = append(out, c.name)
		}
	}
	return out
}

// testCase is one case: a fault or an attack against the running
// topology, with what it expects.
type testCase struct {
	name   string
	items  string // issue 12's items it checks, or "fault"
	expect string
	quick  bool // part of the CI subset
	run    func(ctx context.Context, t *topology, c *caseRun)
}

// caseRun is a running case: its row, and helpers that fill it.
type caseRun struct {
	row *Row
	t   *topology
}

// check records a failure unless ok; it returns ok.
func (c *caseRun) check(ok bool, format string, args ...any) bool {
	if !ok {
		c.row.Failures = append(c.row.Failures, fmt.Sprintf(format, args...))
		c.t.logf("  FAIL %s: %s", c.row.Case, fmt.Sprintf(format, args...))
	}
	return ok
}

// fail records a failure.
func (c *caseRun) fail(format string, args ...any) { c.check(false, format, args...) }

// observe adds to the row's observed column.
func (c *caseRun) observe(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	c.row.Observed = append(c.row.Observed, s)
	c.t.logf("  %s: %s", c.row.Case, s)
}

// verdict is what a case makes of one request.
type verdict uint8

const (
	answered verdict = iota // the answer it was owed
	expected                // not an answer, and the case expects it (label says what)
	lost
	wrong
)

// judge classifies a record; label names an expected non-answer.
type judge func(r record) (v verdict, label string)

// strict: a whole 200 is the only right answer; no answer or a cut is
// lost, anything else wrong.
func strict(r record) (verdict, string) {
	switch {
	case r.outcome == outOK && r.status == 200:
		return answered, ""
	case r.outcome == outCut || r.outcome == outNoAnswer:
		return lost, ""
	default:
		return wrong, ""
	}
}

// allowCut is strict but expects the streams node was serving when a
// fault hit it at from (until to, zero: for ever) to be cut: an error
// at the client, never a clean end.
func allowCut(node string, from, to time.Time) judge {
	return func(r record) (verdict, string) {
		if r.outcome == outCut && r.node == node && r.kind.stream() && r.end.After(from) && (to.IsZero() || r.start.Before(to)) {
			return expected, "cut"
		}
		return strict(r)
	}
}

// account adds records to the row under j, keeping a few examples of
// lost and wrong ones.
func (c *caseRun) account(recs []record, j judge) {
	if c.row.Answered == nil {
		c.row.Answered = map[string]int{}
	}
	var lostEx, wrongEx []string
	for _, r := range recs {
		c.row.Sent++
		v, label := j(r)
		switch v {
		case answered:
			c.row.Answered[fmt.Sprint(r.status)]++
		case expected:
			c.row.Answered[label]++
		case lost:
			c.row.Lost++
			if len(lostEx) < 5 {
				lostEx = append(lostEx, r.String())
			}
		case wrong:
			c.row.Wrong++
			if len(wrongEx) < 5 {
				wrongEx = append(wrongEx, r.String())
			}
		}
	}
	for _, e := range lostEx {
		c.row.Failures = append(c.row.Failures, "lost: "+e)
	}
	for _, e := range wrongEx {
		c.row.Failures = append(c.row.Failures, "wrong: "+e)
	}
}

// one accounts a single request that is not a load record: status 0 is
// no answer (lost); right says whether the answer was the one owed; what
// describes it for the failures.
func (c *caseRun) one(status int, right bool, what string) {
	if status == 0 {
		c.row.Sent++
		c.row.Lost++
		c.row.Failures = append(c.row.Failures, "lost: "+what)
		return
	}
	c.oneAs(fmt.Sprint(status), right, what)
}

// oneAs accounts a single request whose outcome is label (a status, or
// an expected non-answer such as "closed").
func (c *caseRun) oneAs(label string, right bool, what string) {
	if c.row.Answered == nil {
		c.row.Answered = map[string]int{}
	}
	c.row.Sent++
	if !right {
		c.row.Wrong++
		c.row.Failures = append(c.row.Failures, "wrong: "+what)
		return
	}
	c.row.Answered[label]++
}

// Run builds the topology, runs the cases and tears everything down. The
// error is for a run that could not happen (no topology); a case that
// fails is in the report (Report.Failed).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rep := &Report{Command: cfg.Command, Note: cfg.Note, Started: time.Now(), Quick: cfg.Quick && len(cfg.Only) == 0}
	rep.Build = binaryBuild(ctx, cfg.Bin)
	dir := cfg.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "switchyard-chaos-"); err != nil {
			return nil, err
		}
	}
	rep.Dir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// The progress lines also go to DIR/chaos.log, with times.
	logFile, err := os.Create(filepath.Join(dir, "chaos.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cfg.Log = io.MultiWriter(cfg.Log, &stampWriter{w: logFile})
	before := loadAverage()
	runID := fmt.Sprintf("%d-%s", os.Getpid(), token()[:8])
	var selected []testCase
	for _, c := range cases() {
		switch {
		case len(cfg.Only) > 0:
			if slices.Contains(cfg.Only, c.name) {
				selected = append(selected, c)
			}
		case !cfg.Quick || c.quick:
			selected = append(selected, c)
		}
	}
	fmt.Fprintf(cfg.Log, "chaos: %d cases; files and logs in %s\n", len(selected), dir)
	t, err := newTopology(ctx, cfg, dir, runID)
	if err != nil {
		return nil, fmt.Errorf("%w (logs in %s)", err, dir)
	}
	for i, c := range selected {
		if ctx.Err() != nil {
			break
		}
		row := &Row{Case: c.name, Items: c.items, Expected: c.expect}
		rep.Rows = append(rep.Rows, row)
		begin := time.Now()
		t.logf("case %d/%d: %s", i+1, len(selected), c.name)
		cctx, cancel := context.WithTimeout(ctx, cfg.CaseTimeout)
		if i > 0 {
			if err := t.heal(cctx); err != nil {
				row.Failures = append(row.Failures, "the topology could not be restored before the case: "+err.Error())
			}
		}
		if len(row.Failures) == 0 {
			from := time.Now()
			runCase(cctx, t, c, row)
			// What the gateway's health checks and outlier detection did
			// meanwhile, faults or not: an observation, not a check.
			var ex []string
			for _, e := range t.exclusions(from, time.Now()) {
				ex = append(ex, fmt.Sprintf("%s/%s (%s)", e.Route, e.Node, e.Reason))
			}
			if len(ex) > 0 {
				row.Observed = append(row.Observed, "gateway excluded "+strings.Join(ex, ", "))
			}
		}
		if cctx.Err() != nil && ctx.Err() == nil {
			row.Failures = append(row.Failures, fmt.Sprintf("the case ran out of its %v", cfg.CaseTimeout))
		}
		cancel()
		row.Took = time.Since(begin)
		res := "pass"
		if !row.Pass() {
			res = "FAIL"
		}
		t.logf("case %s: %s in %.1f s (sent %d, lost %d, wrong %d)", c.name, res, row.Took.Seconds(), row.Sent, row.Lost, row.Wrong)
	}
	// Teardown, then the check that nothing was left behind.
	begin := time.Now()
	t.close()
	row := &Row{Case: "teardown: no process left", Items: "harness",
		Expected: "every process of the run (children, and anything with the run's marker in its environment) gone after teardown"}
	left := t.procs.leftovers()
	if len(left) > 0 {
		row.Failures = append(row.Failures, "left running: "+strings.Join(left, ", "))
	}
	row.Observed = []string{fmt.Sprintf("%d processes started over the run, %d left", len(t.procs.all), len(left))}
	row.Took = time.Since(begin)
	rep.Rows = append(rep.Rows, row)
	if ctx.Err() != nil {
		row.Failures = append(row.Failures, "the run was interrupted: "+ctx.Err().Error())
	}
	rep.Took = time.Since(rep.Started)
	rep.Machine = fmt.Sprintf("%s/%s, %d CPUs, %s; load average %s before, %s after (every process on the machine counts)",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), goVersion(), before, loadAverage())
	return rep, nil
}

// runCase runs c, turning a panic into a failure.
func runCase(ctx context.Context, t *topology, c testCase, row *Row) {
	cr := &caseRun{row: row, t: t}
	defer func() {
		if p := recover(); p != nil {
			cr.fail("panic: %v\n%s", p, debug.Stack())
		}
	}()
	c.run(ctx, t, cr)
}

// binaryBuild asks bin what it was built from (`switchyard version`:
// the commit, and "modified" when the tree had uncommitted changes).
func binaryBuild(ctx context.Context, bin string) Build {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var b Build
	if out, err := exec.CommandContext(ctx, bin, "version").Output(); err != nil {
		b.Line = bin + " version: " + err.Error()
	} else {
		b = parseBuild(strings.TrimSpace(string(out)))
	}
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output(); err == nil {
		b.Tree = strings.TrimSpace(string(out))
		st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output()
		b.TreeDirty = err != nil || len(strings.TrimSpace(string(st))) > 0
	}
	return b
}

// parseBuild reads a `switchyard version` line: "switchyard VERSION
// (commit SHA[, modified][, TIME], GO)".
func parseBuild(line string) Build {
	b := Build{Line: line}
	open, closing := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || closing < open {
		return b
	}
	for i, part := range strings.Split(line[open+1:closing], ", ") {
		switch {
		case i == 0 && strings.HasPrefix(part, "commit "):
			b.Commit = strings.TrimPrefix(part, "commit ")
		case part == "modified":
			b.Dirty = true
		}
	}
	return b
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func goVersion() string { return runtime.Version() }

// stampWriter prefixes each write (one progress line) with the time.
type stampWriter struct{ w io.Writer }

func (s *stampWriter) Write(p []byte) (int, error) {
	if _, err := fmt.Fprintf(s.w, "%s  %s", time.Now().Format("15:04:05.000"), p); err != nil {
		return 0, err
	}
	return len(p), nil
}
