package machine

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A report's own output in bench/results is not an uncommitted change that
// could be in the binary; a change to a source file is.
func TestDescribeIgnoresResults(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	write := func(name, text string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write("main.go", "package main\n")
	write("bench/results/r.md", "old\n")
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "init")
	t.Chdir(filepath.Join(dir, "bench"))

	write("bench/results/r.md", "new\n")
	if d := Describe(); !strings.Contains(d, "Work tree at commit") || strings.Contains(d, "uncommitted") {
		t.Fatalf("a changed result counted:\n%s", d)
	}
	write("main.go", "package main\n\nfunc main() {}\n")
	if d := Describe(); !strings.Contains(d, "uncommitted changes") {
		t.Fatalf("a changed source file did not count:\n%s", d)
	}
}
