package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
)

// version and commit are set at link time by the Makefile and the
// Dockerfile (-ldflags "-X main.version=v1.2.3 -X main.commit=SHA"). When
// they are empty, the build information Go stamps into a binary built in
// a git checkout gives them (vcs.revision, vcs.modified; the main
// module's version).
var (
	version string
	commit  string
)

// buildVersion is what `switchyard version` prints.
type buildVersion struct {
	Version  string // "v1.2.3", "v0.0.0-2026…-abcdef", or "dev"
	Commit   string // full revision, or "unknown"
	Modified bool   // built from a tree with uncommitted changes
	Time     string // the commit's time (RFC 3339), when known
	Go       string // e.g. "go1.26.8 linux/amd64"
}

// readVersion combines the link-time values with the build information;
// link-time values win.
func readVersion(info *debug.BuildInfo, ldVersion, ldCommit string) buildVersion {
	v := buildVersion{Version: ldVersion, Commit: ldCommit, Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}
	var rev string
	if info != nil {
		if v.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			case "vcs.time":
				v.Time = s.Value
			}
		}
	}
	if v.Commit == "" {
		v.Commit = rev
	} else if rev != "" && rev != v.Commit {
		// The stamped revision describes another tree than the link-time
		// commit: its modified flag and time do not apply.
		v.Modified, v.Time = false, ""
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

// String is one line: "switchyard VERSION (commit SHA[, modified][, TIME], GO)".
func (v buildVersion) String() string {
	parts := []string{"commit " + v.Commit}
	if v.Modified {
		parts = append(parts, "modified")
	}
	if v.Time != "" {
		parts = append(parts, v.Time)
	}
	parts = append(parts, v.Go)
	return fmt.Sprintf("switchyard %s (%s)", v.Version, strings.Join(parts, ", "))
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "version", stdout, stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "switchyard version: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	fmt.Fprintln(stdout, buildInfo())
	return nil
}

// buildInfo is the binary's version and commit, as `switchyard version`
// prints them; the gateway's and the Resource's switchyard_build_info
// carry them.
func buildInfo() buildVersion {
	info, _ := debug.ReadBuildInfo()
	return readVersion(info, version, commit)
}
