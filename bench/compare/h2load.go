package compare

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"github.com/switchyard-dev/switchyard/bench/loadgen"
)

// h2loadRun is one run of h2load (Debian's nghttp2-client): h2c with
// prior knowledge, conns connections × streams concurrent streams each,
// closed loop, for duration, every request POSTing bodyFile.
type h2loadRun struct {
	bin      string
	target   string // http://host:port/path
	bodyFile string
	logFile  string // per-request log (--log-file), overwritten
	conns    int
	streams  int
	duration time.Duration
}

// measured is the duration h2load is given: whole milliseconds, at least
// one.
func (h h2loadRun) measured() time.Duration {
	return max(time.Millisecond, h.duration.Truncate(time.Millisecond))
}

// args returns h2load's command line. One thread: the load generator
// shares CPU 0 with the backends, as in the HTTP/1.1 section.
func (h h2loadRun) args() []string {
	return []string{
		"-c", strconv.Itoa(h.conns), "-m", strconv.Itoa(h.streams), "-t", "1",
		"-D", strconv.FormatInt(h.measured().Milliseconds(), 10) + "ms",
		"-d", h.bodyFile, "-H", "content-type: application/json",
		"--log-file=" + h.logFile, h.target,
	}
}

// run runs h2load and returns what it measured, in the load generator's
// terms: OK counts 2xx/3xx answers, latency comes from the per-request
// log, Elapsed is the measured duration (h2load's -D).
func (h h2loadRun) run(ctx context.Context) (*loadgen.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, h.duration+30*time.Second)
	defer cancel()
	// h2load appends to its log: start each run with an empty one.
	if err := os.Remove(h.logFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("compare: h2load log: %w", err)
	}
	cmd := exec.CommandContext(ctx, h.bin, h.args()...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("compare: h2load: %w: %s", err, tail(out))
	}
	sum, err := parseH2LoadSummary(out)
	if err != nil {
		return nil, err
	}
	log, err := os.ReadFile(h.logFile)
	if err != nil {
		return nil, fmt.Errorf("compare: h2load log: %w", err)
	}
	res := &loadgen.Result{Errors: map[string]int64{}, Elapsed: h.measured()}
	if err := addH2LoadLog(res, log); err != nil {
		return nil, err
	}
	res.Sent = sum.total
	// Failures h2load counted but did not log (a request that never got
	// a response) are timeouts or stream errors.
	if extra := sum.failed - res.ErrorCount(); extra > 0 {
		t := min(extra, sum.timeout)
		if t > 0 {
			res.Errors["timeout"] += t
		}
		if extra > t {
			res.Errors["stream"] += extra - t
		}
	}
	return res, nil
}

// h2loadSummary is h2load's "requests:" line.
type h2loadSummary struct {
	total, succeeded, failed, errored, timeout int64
}

var h2loadRequests = regexp.MustCompile(`(?m)^requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)

// parseH2LoadSummary reads the "requests:" line of h2load's output.
func parseH2LoadSummary(out []byte) (h2loadSummary, error) {
	m := h2loadRequests.FindSubmatch(out)
	if m == nil {
		return h2loadSummary{}, fmt.Errorf("compare: h2load: no \"requests:\" line in its output: %s", tail(out))
	}
	var v [5]int64
	for i := range v {
		n, err := strconv.ParseInt(string(m[i+1]), 10, 64)
		if err != nil {
			return h2loadSummary{}, fmt.Errorf("compare: h2load: requests line %q: %w", m[0], err)
		}
		v[i] = n
	}
	return h2loadSummary{total: v[0], succeeded: v[1], failed: v[2], errored: v[3], timeout: v[4]}, nil
}

// addH2LoadLog adds h2load's per-request log to res: one line per
// request, tab-separated, "start µs since the epoch, HTTP status, µs to
// the end of the response" (h2load --log-file). Status 2xx and 3xx count
// as OK with their latency; others as status-4xx, status-5xx or, for a
// request without a status (reset stream), stream.
func addH2LoadLog(res *loadgen.Result, log []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(log))
	for n := 1; sc.Scan(); n++ {
		f := bytes.Split(sc.Bytes(), []byte{'\t'})
		if len(f) < 3 {
			return fmt.Errorf("compare: h2load log line %d %q: want 3 tab-separated fields", n, sc.Bytes())
		}
		status, err1 := strconv.Atoi(string(f[1]))
		us, err2 := strconv.ParseInt(string(bytes.TrimSpace(f[2])), 10, 64)
		if err1 != nil || err2 != nil || us < 0 {
			return fmt.Errorf("compare: h2load log line %d %q: want a status and a duration in µs", n, sc.Bytes())
		}
		switch {
		case status >= 200 && status < 400:
			res.OK++
			res.Latency.RecordDuration(time.Duration(us) * time.Microsecond)
		case status >= 500:
			res.Errors["status-5xx"]++
		case status >= 400:
			res.Errors["status-4xx"]++
		default:
			res.Errors["stream"]++
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("compare: h2load log: %w", err)
	}
	return nil
}
