package chaos

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Row is one case's line of the report.
type Row struct {
	// Case names the case; Items the numbered items of issue 12 it
	// checks ("fault" for the faults of the chaos suite's list).
	Case, Items string
	// Expected is what a correct system does; Observed what was seen.
	Expected string
	Observed []string
	// Sent counts requests (and attack frames or beats) the case sent;
	// Answered counts them by status, and the outcomes the case expects
	// that are not answers by name (for example "cut" for a stream an
	// engine's kill cut, "refused" for a connection a stopped gateway
	// refused).
	Sent     int
	Answered map[string]int
	// Lost are requests without the answer they were owed (no answer,
	// or a transport error the case does not expect); Wrong are answers
	// that should not be (a 200 for a refused path, a clean end of a cut
	// stream, a status the case does not allow).
	Lost, Wrong int
	// Failures are the case's failed checks and examples of lost and
	// wrong requests. A row passes when it has none.
	Failures []string
	Took     time.Duration
}

// Pass reports whether the case held.
func (r *Row) Pass() bool { return len(r.Failures) == 0 && r.Lost == 0 && r.Wrong == 0 }

func (r *Row) answered() string {
	if len(r.Answered) == 0 {
		return "–"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.Answered)) {
		parts = append(parts, k+": "+strconv.Itoa(r.Answered[k]))
	}
	return strings.Join(parts, ", ")
}

// Report is a whole run.
type Report struct {
	Command string
	Note    string
	Started time.Time
	Took    time.Duration
	Quick   bool
	// Machine describes where it ran (cores, load average before and
	// after).
	Machine string
	Dir     string // the run's files and logs
	// Build is what the binary under test was built from.
	Build Build
	Rows  []*Row
}

// Build is what the binary under test was built from: what its
// `switchyard version` said, and the git work tree the suite ran in (as
// bench/machine does: builds by `make` carry the commit but, in a git
// worktree or with -buildvcs=false, no modified flag).
type Build struct {
	Line   string // the binary's `switchyard version`
	Commit string // the commit it was built from ("" when unknown)
	Dirty  bool   // it says its tree had uncommitted changes
	// Tree is the work tree's HEAD ("" outside a git work tree);
	// TreeDirty whether tracked files had uncommitted changes.
	Tree      string
	TreeDirty bool
}

// String is the report's line about the binary.
func (b Build) String() string {
	var s string
	switch {
	case b.Commit == "" || b.Commit == "unknown":
		s = "commit unknown"
	case b.Dirty:
		s = "commit " + b.Commit + " plus uncommitted changes (dirty tree)"
	default:
		s = "commit " + b.Commit
	}
	s += " (`" + b.Line + "`)"
	switch {
	case b.Tree == "":
		s += "; not run from a git work tree"
	case b.TreeDirty && b.Tree != b.Commit:
		s += "; work tree at " + b.Tree + " (not the binary's commit) with uncommitted changes to tracked files"
	case b.Tree != b.Commit:
		s += "; work tree at " + b.Tree + ", clean, but not the binary's commit"
	case b.TreeDirty:
		s += "; work tree at " + b.Tree + " with uncommitted changes to tracked files (dirty: possibly in the binary)"
	default:
		s += "; work tree at " + b.Tree + ", clean"
	}
	return s
}

// Failed reports whether any case failed or lost or got a wrong answer.
func (r *Report) Failed() bool {
	for _, row := range r.Rows {
		if !row.Pass() {
			return true
		}
	}
	return false
}

func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

// Table is the markdown table of the rows.
func (r *Report) Table() string {
	var b strings.Builder
	b.WriteString("| # | case | item | expected | observed | sent | answered | lost / wrong | result | time |\n")
	b.WriteString("|---|---|---|---|---|---:|---|---:|---|---:|\n")
	for i, row := range r.Rows {
		res := "**pass**"
		if !row.Pass() {
			res = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %d | %s | %d / %d | %s | %.1f s |\n", i+1, cell(row.Case), cell(row.Items),
			cell(row.Expected), cell(strings.Join(row.Observed, "; ")), row.Sent, cell(row.answered()), row.Lost, row.Wrong, res, row.Took.Seconds())
	}
	return b.String()
}

// Summary is one line: cases held, requests, lost and wrong.
func (r *Report) Summary() string {
	held, sent, lost, wrong := 0, 0, 0, 0
	for _, row := range r.Rows {
		if row.Pass() {
			held++
		}
		sent += row.Sent
		lost += row.Lost
		wrong += row.Wrong
	}
	return fmt.Sprintf("%d of %d cases held; %d requests sent, %d lost, %d wrong; %.0f s", held, len(r.Rows), sent, lost, wrong, r.Took.Seconds())
}

// Failures lists every failed case's failures.
func (r *Report) Failures() string {
	var b strings.Builder
	for i, row := range r.Rows {
		if row.Pass() {
			continue
		}
		fmt.Fprintf(&b, "\n### %d. %s\n\n", i+1, row.Case)
		for _, f := range row.Failures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
	}
	return b.String()
}

// Markdown is the whole report, for -out.
func (r *Report) Markdown() string {
	var b strings.Builder
	title := "Chaos suite (issue 12)"
	if r.Quick {
		title += ", quick subset"
	}
	fmt.Fprintf(&b, "# %s\n\n", title)
	fmt.Fprintf(&b, "Command: `%s`  \nDate: %s  \nBinary built from: %s  \nMachine: %s  \n", r.Command, r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Build, r.Machine)
	if r.Note != "" {
		fmt.Fprintf(&b, "Note: %s  \n", r.Note)
	}
	fmt.Fprintf(&b, "Result: %s\n\n", r.Summary())
	b.WriteString(`Topology, all on loopback and all real processes of the same binary: three
peered Resource instances speaking mTLS only (a test CA generated for the
run) with a credentials file (scoped agent, peer and reader credentials:
tokens and certificate SANs), five simulated engines (` + "`switchyard sim`" + `) each
with its ` + "`switchyard agent`" + ` (engine metrics and readiness probed), two fixture
nodes announced by agents known by their certificate alone (a recorder
engine in the harness that records what reached it, over HTTP and gRPC,
and a node whose address is the gateway itself), and ` + "`switchyard gateway`" + `
with a YAML config (routes fed by discovery over mTLS, an admin token
file; health checks, outlier detection, breakers, retries and timeouts at
their defaults). Some cases start processes of their own while they run:
a second gateway with a TLS client listener and an https:// engine, a
gateway trusting another CA, agents with bound credentials, a Resource
instance with small limits. Load is closed loop, bounded and self-stopping: HTTP/1.1
and h2c, buffered and streamed chat completions; every request is
accounted for. "Lost": no answer, or a transport error the case does not
expect; "wrong": an answer that should not be (a status the case does not
allow, a stream or body that ended cleanly but incomplete).

`)
	b.WriteString(r.Table())
	if f := r.Failures(); f != "" {
		b.WriteString("\n## Failures\n")
		b.WriteString(f)
	}
	return b.String()
}
