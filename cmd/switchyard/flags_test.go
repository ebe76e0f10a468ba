package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testlog"
)

const envSecret = "env-secret-value-0123456789"

// everyCommand lists every subcommand's words, bench's included.
func everyCommand() [][]string {
	var out [][]string
	for _, c := range commands() {
		if c.name == "bench" {
			for _, b := range benchCommands() {
				out = append(out, []string{"bench", b.name})
			}
			continue
		}
		out = append(out, []string{c.name})
	}
	for _, verb := range []string{"drain", "undrain", "status", "probe"} {
		out = append(out, []string{"agent", verb})
	}
	return out
}

// TestHelp: every command's help is spelt --flag, shows no secret from the
// environment, and has none of the flag package's glitches.
func TestHelp(t *testing.T) {
	t.Setenv("SWITCHYARD_TOKEN", envSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	singleDash := regexp.MustCompile(`(^|[\s(])-[a-z][a-z-]*`)
	for _, words := range everyCommand() {
		t.Run(strings.Join(words, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(ctx, append(words, "--help"), &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if errb.Len() != 0 {
				t.Errorf("help went to stderr (it was asked for: stdout): %q", errb.String())
			}
			help := out.String()
			// Each flag says its default once, and no Go type name.
			for _, block := range strings.Split(help, "\n  --")[1:] {
				if n := strings.Count(block, "(default"); n > 1 {
					t.Errorf("--%s says its default %d times", block, n)
				}
			}
			if m := goTypeName.FindString(help); m != "" {
				t.Errorf("the help names a Go type, %q:\n%s", m, help)
			}
			if !strings.HasPrefix(help, "Usage: switchyard "+strings.Join(words, " ")) {
				t.Errorf("help starts %q", help[:min(len(help), 60)])
			}
			if strings.Contains(help, envSecret) {
				t.Errorf("the help shows $SWITCHYARD_TOKEN's value:\n%s", help)
			}
			for _, glitch := range []string{"(default map[", "(default [])", " value\n", "`", "(default \"\")"} {
				if strings.Contains(help, glitch) {
					t.Errorf("the help has %q:\n%s", glitch, help)
				}
			}
			for _, line := range strings.Split(help, "\n") {
				if m := singleDash.FindString(line); m != "" && !strings.Contains(line, "--"+strings.TrimSpace(strings.TrimLeft(m, " (-"))) {
					t.Errorf("single-dash flag %q in %q", m, line)
				}
				// gateway.go (the lead's) has a long synopsis for now.
				if len(line) > 100 && !(words[0] == "gateway" && strings.HasPrefix(line, "Usage:")) {
					t.Errorf("line of %d characters: %q", len(line), line)
				}
			}
		})
	}
	// `switchyard help COMMAND` is COMMAND --help.
	for _, words := range [][]string{{"help", "bench", "replot"}, {"help", "gateway"}, {"help", "agent", "probe"}} {
		var out, errb bytes.Buffer
		if code := run(ctx, words, &out, &errb); code != 0 || errb.Len() != 0 || !strings.HasPrefix(out.String(), "Usage: switchyard "+strings.Join(words[1:], " ")) {
			t.Errorf("%s: exit %d, stdout %.60q, stderr %q", strings.Join(words, " "), code, out.String(), errb.String())
		}
	}
}

// goTypeName is a Go type of ours as messages and help must not show it.
var goTypeName = regexp.MustCompile(`\b(sim|config|gateway|tenant|resource|time|capacity|discovery|flow|shadow|split|kubernetes|ray)\.[A-Z]\w*`)

// TestStrayArgument: a word after the flags is an error, not the silent
// end of flag parsing (which would drop the flags after it).
func TestStrayArgument(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // should a command start after all, it stops at once
	for _, args := range [][]string{
		{"resource", "--listen", "127.0.0.1:0", "extra"},
		{"resource", "extra", "--listen", "127.0.0.1:0"},
		{"sim", "--listen", "127.0.0.1:0", "--", "x"},
		{"agent", "status", "now"},
		{"demo", "fast"},
		{"bench", "replot", "bench/results"},
		{"bench", "minproxy", "--upstream", "127.0.0.1:1", "x"},
		{"bench", "epollproxy", "--upstream", "127.0.0.1:1", "x"},
		{"version", "--", "x"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(ctx, args, &out, &errb); code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", code, errb.String())
			}
			if !strings.Contains(errb.String(), "unexpected argument") {
				t.Errorf("stderr %q", errb.String())
			}
		})
	}
}

// TestSecretNeverShown: a token given the wrong way is not echoed, nor is
// $SWITCHYARD_TOKEN in any error.
func TestSecretNeverShown(t *testing.T) {
	t.Setenv("SWITCHYARD_TOKEN", envSecret)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, args := range [][]string{
		{"resource", "--token=", "typed-secret-0123456789"},
		{"resource", "-token=", "typed-secret-0123456789"},
		{"agent", "--token=", "typed-secret-0123456789", "--addr", "http=127.0.0.1:1"},
		{"resource", "--nope"},
		{"resource", "--log-level", "loud"},
		{"agent", "--app", "x"},
	} {
		var out, errb bytes.Buffer
		code := run(ctx, args, &out, &errb)
		text := out.String() + errb.String()
		if code != 2 || strings.Contains(text, "typed-secret") || strings.Contains(text, envSecret) {
			t.Errorf("%q: exit %d, output %q", args, code, text)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"resource", "--nope"}, "switchyard resource: flag provided but not defined: --nope\n"},
		{[]string{"resource", "-period", "abc"}, `switchyard resource: invalid value "abc" for --period: parse error`},
		{[]string{"resource", "--listen"}, "switchyard resource: flag needs an argument: --listen"},
		{[]string{"resource", "--log-level", "loud"}, `switchyard resource: --log-level "loud": want debug, info, warn or error`},
		{[]string{"sim", "--log-format", "xml"}, `switchyard sim: --log-format "xml": want text or json`},
		{[]string{"agent", "--app", "x"}, "switchyard agent: at least one --addr proto=host:port is required"},
		{[]string{"agent", "--addr", "http=127.0.0.1:1", "--load", "magic"}, `switchyard agent: --load "magic": want static or probe`},
		{[]string{"gateway", "--route", "m=http://127.0.0.1:1", "--gc-floor-mib", "-1"}, "switchyard gateway: --gc-floor-mib -1: want 0 (off) or more"},
		{[]string{"bench", "minproxy"}, "switchyard bench minproxy: --upstream is required"},
		{[]string{"bench", "epollproxy"}, "switchyard bench epollproxy: --upstream is required"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(ctx, tc.args, &out, &errb); code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Errorf("stderr %q, want %q", errb.String(), tc.want)
			}
			if strings.Contains(errb.String(), "usage\n") || strings.Contains(errb.String(), ": usage") {
				t.Errorf("the sentinel shows: %q", errb.String())
			}
		})
	}
}

// TestJSONLogs runs `switchyard resource --log-format json` and checks
// that its startup and shutdown lines are JSON objects from the logger.
func TestJSONLogs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	var out, errb testlog.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(runCtx, []string{"resource", "--listen", "127.0.0.1:0", "--log-format", "json"}, &out, &errb)
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(errb.String(), "resource: listening") {
		select {
		case code := <-done:
			t.Fatalf("exit %d: %s", code, errb.String())
		case <-ctx.Done():
			t.Fatalf("no startup line: %q", errb.String())
		case <-tick.C:
		}
	}
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var msgs []string
	sc := bufio.NewScanner(strings.NewReader(errb.String()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		msgs = append(msgs, rec["msg"].(string))
		if rec["msg"] == "resource: listening" && !strings.HasPrefix(rec["addr"].(string), "127.0.0.1:") {
			t.Errorf("startup line %v", rec)
		}
	}
	if len(msgs) < 2 || msgs[len(msgs)-1] != "resource: stopped" {
		t.Errorf("log messages %q", msgs)
	}
	if out.String() != "" {
		t.Errorf("stdout %q: the startup line belongs to the log", out.String())
	}
}

func TestLogFlags(t *testing.T) {
	var b bytes.Buffer
	l, err := (&logFlags{level: "warn", format: "JSON"}).logger(&b)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("dropped")
	l.Warn("kept", "k", 1)
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil || rec["msg"] != "kept" || rec["k"] != 1.0 || rec["level"] != "WARN" {
		t.Errorf("json log %q (%v)", b.String(), err)
	}
	b.Reset()
	l, err = (&logFlags{level: "debug", format: "text"}).logger(&b)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("seen")
	if !strings.Contains(b.String(), "level=DEBUG msg=seen") {
		t.Errorf("text log %q", b.String())
	}
}

// TestLogDurations: a duration is logged as people write it (1.5s), in
// both formats, also inside a group; JSON would otherwise give
// nanoseconds.
func TestLogDurations(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		var b bytes.Buffer
		l, err := (&logFlags{level: "info", format: format}).logger(&b)
		if err != nil {
			t.Fatal(err)
		}
		l.Info("drain", "drain_delay", 1500*time.Millisecond, slog.Group("limits", "timeout", 250*time.Millisecond), "n", 3)
		got := b.String()
		want := []string{"drain_delay=1.5s", "limits.timeout=250ms", "n=3"}
		if format == "json" {
			want = []string{`"drain_delay":"1.5s"`, `"limits":{"timeout":"250ms"}`, `"n":3`}
		}
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q, want %q", format, got, w)
			}
		}
	}
}

func TestLogWriter(t *testing.T) {
	var b bytes.Buffer
	w := newLogWriter(slog.New(slog.NewJSONHandler(&b, nil)))
	for _, p := range []string{"first li", "ne\nsecond line\n", "\n  \nthird"} {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write: %d %v", n, err)
		}
	}
	var msgs []string
	sc := bufio.NewScanner(&b)
	for sc.Scan() {
		var rec struct{ Msg string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, rec.Msg)
	}
	if strings.Join(msgs, "|") != "first line|second line" {
		t.Errorf("messages %q (the unterminated third waits for its newline)", msgs)
	}
}

func TestHelpFormatting(t *testing.T) {
	for in, want := range map[string]string{
		"flag provided but not defined: -x":       "flag provided but not defined: --x",
		`invalid value "a" for flag -d: bad`:      `invalid value "a" for --d: bad`,
		`invalid boolean value "a" for -b: bad`:   `invalid boolean value "a" for --b: bad`,
		"flag needs an argument: -listen":         "flag needs an argument: --listen",
		"flag provided but not defined: --x":      "flag provided but not defined: --x",
		"bad flag syntax: ---x":                   "bad flag syntax: ---x",
		"invalid value \"-3\" for flag -n: range": "invalid value \"-3\" for --n: range",
	} {
		if got := doubleDash(in); got != want {
			t.Errorf("doubleDash(%q) = %q, want %q", in, got, want)
		}
	}
	for d, want := range map[time.Duration]string{time.Minute: "1m", 6 * time.Minute: "6m", 90 * time.Second: "1m30s", time.Hour: "1h", 50 * time.Millisecond: "50ms"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
	if got := wrap("aa bb cc dd", 5); strings.Join(got, "|") != "aa bb|cc dd" {
		t.Errorf("wrap: %q", got)
	}
}
