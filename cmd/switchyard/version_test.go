package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

func TestReadVersion(t *testing.T) {
	stamped := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/switchyard-dev/switchyard", Version: "v0.0.0-20261206100000-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-06T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	devel := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}
	for _, tc := range []struct {
		name            string
		info            *debug.BuildInfo
		ldVer, ldCommit string
		want            string // the line without the Go version
	}{
		{"build info only", stamped, "", "",
			"switchyard v0.0.0-20261206100000-0123456789ab+dirty (commit 0123456789abcdef0123456789abcdef01234567, modified, 2026-12-06T10:00:00Z"},
		{"ldflags win", stamped, "v1.2.3", "0123456789abcdef0123456789abcdef01234567",
			"switchyard v1.2.3 (commit 0123456789abcdef0123456789abcdef01234567, modified, 2026-12-06T10:00:00Z"},
		{"ldflags name another commit", stamped, "v1.2.3", "fedcba9876543210fedcba9876543210fedcba98",
			"switchyard v1.2.3 (commit fedcba9876543210fedcba9876543210fedcba98"},
		{"ldflags only (no VCS stamp)", devel, "", "fedcba9876543210fedcba9876543210fedcba98",
			"switchyard dev (commit fedcba9876543210fedcba9876543210fedcba98"},
		{"nothing known", devel, "", "", "switchyard dev (commit unknown"},
		{"no build info", nil, "", "", "switchyard dev (commit unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := readVersion(tc.info, tc.ldVer, tc.ldCommit).String()
			if !strings.HasPrefix(got, tc.want+", go") || !strings.HasSuffix(got, ")") {
				t.Errorf("got  %s\nwant %s, go…)", got, tc.want)
			}
		})
	}
}

func TestVersionCommand(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		if !strings.HasPrefix(out.String(), "switchyard ") || !strings.Contains(out.String(), "(commit ") {
			t.Errorf("%v: %q", args, out.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version", "extra"}, &out, &errOut); code != 2 {
		t.Errorf("version extra: exit %d, want 2 (%s)", code, errOut.String())
	}
}

// `make build` names the commit it was built from, even where Go's own VCS
// stamping is off (this machine's go env sets -buildvcs=false) or cannot
// see git (worktrees).
func TestMakeBuildNamesCommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for _, tool := range []string{"git", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	head, err := exec.CommandContext(ctx, "git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	root, err := exec.CommandContext(ctx, "git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "switchyard")
	cmd := exec.CommandContext(ctx, "make", "-C", strings.TrimSpace(string(root)), "build", "BIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.CommandContext(ctx, bin, arg).Output()
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if want := "(commit " + strings.TrimSpace(string(head)); !strings.Contains(string(out), want) {
			t.Errorf("switchyard %s: %q does not contain %q", arg, out, want)
		}
	}
}
