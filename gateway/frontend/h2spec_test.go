package frontend

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/internal/testcert"
)

// TestHTTP2Conformance runs h2spec (github.com/summerwind/h2spec v2.2.1)
// against the client port, over h2c and over TLS with ALPN h2, and fails
// on any failed case but one: over h2c, 3.5/2 (an invalid connection
// preface must close the connection) cannot hold on a port that also
// speaks HTTP/1.1. There a connection whose first bytes are not the
// preface is HTTP/1.1, and an invalid request line is answered 400 as
// RFC 9112 asks; over TLS, ALPN decides and the case passes. h2spec's requests go to "/",
// which no route matches; it checks framing, not answers. Without h2spec
// the test skips, except under CI=true, where .ci/run installs it.
func TestHTTP2Conformance(t *testing.T) {
	bin, err := exec.LookPath("h2spec")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("h2spec is not installed (.ci/run installs it with go install)")
		}
		t.Skip("h2spec is not installed: go install github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible")
	}
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{}`)
	}))
	defer node.Close()
	nodeAddr := strings.TrimPrefix(node.URL, "http://")
	t.Run("h2c", func(t *testing.T) {
		fe := startFrontend(t, nodeAddr, io.Discard)
		runH2Spec(t, bin, fe.addr, map[string]bool{"http2/3.5/2": true})
	})
	t.Run("tls", func(t *testing.T) {
		certFile, keyFile := testcert.SelfSigned(t)
		fe := startFrontendWith(t, nodeAddr, io.Discard, func(cfg *config.Config) {
			cfg.Listen.TLSCert, cfg.Listen.TLSKey = certFile, keyFile
		})
		runH2Spec(t, bin, fe.addr, nil, "-t", "-k") // TLS, the certificate not verified
	})
}

// runH2Spec runs h2spec against addr (2 s per case, 3 minutes in all)
// and reports each failed case of its JUnit report as an error of t,
// except those in excused (logged).
func runH2Spec(t *testing.T, bin, addr string, excused map[string]bool, extra ...string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	flags := append([]string{"-h", host, "-p", port, "-o", "2"}, extra...)
	out, runErr := exec.CommandContext(ctx, bin, append(flags, "-j", report)...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("h2spec did not finish within 3 minutes; its output:\n%s", out)
	}
	// h2spec exits 1 when a case fails: the report says which.
	res, err := readH2SpecReport(report)
	if err != nil {
		t.Fatalf("h2spec (%v) left no report: %v; its output:\n%s", runErr, err, out)
	}
	sum, line, err := h2specSummary(out)
	if err != nil {
		t.Fatalf("%v; its output:\n%s", err, out)
	}
	// The summary cross-checks the reading of the report.
	if got := (h2specCounts{res.passed, res.skipped, len(res.failed)}); got != sum {
		t.Errorf("the report reads as %d passed, %d skipped, %d failed; h2spec's summary says %q",
			got.passed, got.skipped, got.failed, line)
	}
	t.Logf("h2spec %s: %s", strings.Join(flags, " "), line)
	counted := 0
	for _, f := range res.failed {
		if excused[f.id] {
			t.Logf("excused: %s %s: %s", f.id, f.desc, f.message)
			continue
		}
		counted++
		t.Errorf("%s %s: %s", f.id, f.desc, f.message)
	}
	if runErr != nil && counted == 0 && len(res.failed) == 0 {
		t.Errorf("h2spec: %v with no failed case in its report; its output:\n%s", runErr, out)
	}
}

// h2specCounts is how many cases of a run passed, were skipped and failed.
type h2specCounts struct{ passed, skipped, failed int }

// h2specSummaryLine is h2spec's closing summary: "145 tests, 140 passed,
// 0 skipped, 5 failed".
var h2specSummaryLine = regexp.MustCompile(`(?m)^(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed`)

// h2specSummary finds h2spec's summary line in its output and reads its
// counts.
func h2specSummary(out []byte) (c h2specCounts, line string, err error) {
	m := h2specSummaryLine.FindSubmatch(out)
	if m == nil {
		return c, "", fmt.Errorf("no summary line (%q) in h2spec's output", "N tests, N passed, N skipped, N failed")
	}
	n := func(b []byte) int { v, _ := strconv.Atoi(string(b)); return v } // \d+ of a few digits
	return h2specCounts{passed: n(m[2]), skipped: n(m[3]), failed: n(m[4])}, string(m[0]), nil
}

// h2specResult is a JUnit report of h2spec read: counts and failed cases.
type h2specResult struct {
	passed, skipped int
	failed          []h2specFailure
}

// h2specFailure is a failed case: its id as h2spec names it on its
// command line ("http2/4.2/3"), its description and what went wrong.
type h2specFailure struct{ id, desc, message string }

// readH2SpecReport reads h2spec's JUnit report. Each group of cases is a
// testsuite whose package attribute is the group's id ("http2/4.2"); its
// testcases are the group's cases in order (h2spec numbers them from 1),
// each described by its classname attribute. A failed case carries an
// <error> element (h2spec 2.2.1 files its own check failures there too,
// not under <failure>) whose text is the expected events, one a line,
// then the actual one; either element counts as failed.
func readH2SpecReport(path string) (h2specResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return h2specResult{}, err
	}
	var doc struct {
		Suites []struct {
			Package string `xml:"package,attr"`
			Cases   []struct {
				Desc    string  `xml:"classname,attr"`
				Failure *string `xml:"failure"`
				Error   *string `xml:"error"`
				Skipped *string `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	// A failure's text may quote frame bytes (a PING's opaque data, NUL
	// padded), which XML does not allow.
	b = bytes.ReplaceAll(b, []byte{0}, []byte("\uFFFD"))
	if err := xml.Unmarshal(b, &doc); err != nil {
		return h2specResult{}, fmt.Errorf("h2spec report %s: %w", path, err)
	}
	var res h2specResult
	for _, s := range doc.Suites {
		for i, c := range s.Cases {
			switch {
			case c.Failure != nil || c.Error != nil:
				text := c.Failure
				if text == nil {
					text = c.Error
				}
				res.failed = append(res.failed, h2specFailure{
					id:      fmt.Sprintf("%s/%d", s.Package, i+1),
					desc:    c.Desc,
					message: h2specMessage(*text),
				})
			case c.Skipped != nil:
				res.skipped++
			default:
				res.passed++
			}
		}
	}
	if res.passed+res.skipped+len(res.failed) == 0 {
		return res, fmt.Errorf("h2spec report %s has no test cases", path)
	}
	return res, nil
}

// h2specMessage puts a failure's text on one line: "got ACTUAL; want
// EXPECTED or EXPECTED". The text is "Expect:\n...\nActual:\n..." under
// <failure>, the expected lines then the actual one under <error>, or a
// single line for an error that is not a check (a timeout, a refused
// connection).
func h2specMessage(text string) string {
	text = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(text), "Expect:"))
	want, got, ok := strings.Cut(text, "\nActual:\n")
	if !ok {
		i := strings.LastIndexByte(text, '\n')
		if i < 0 {
			return text
		}
		want, got = text[:i], text[i+1:]
	}
	var wants []string
	for _, w := range strings.Split(want, "\n") {
		if w = strings.TrimSpace(w); w != "" {
			wants = append(wants, w)
		}
	}
	return fmt.Sprintf("got %s; want %s", strings.TrimSpace(got), strings.Join(wants, " or "))
}
