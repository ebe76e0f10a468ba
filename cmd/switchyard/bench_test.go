package main

import (
	"os"
	"testing"
)

// TestCommandLineQuotes: the command a report shows can be pasted into a
// shell: arguments with spaces or shell characters are quoted.
func TestCommandLineQuotes(t *testing.T) {
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	t.Setenv("SWITCHYARD_BENCH_CMD", "")
	os.Args = []string{"./bin/switchyard", "bench", "chaos", "--note", "a busy machine, it's shared", "--out=x.md", ""}
	want := `./bin/switchyard bench chaos --note 'a busy machine, it'\''s shared' --out=x.md ''`
	if got := commandLine(); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if os.Args[4] != "a busy machine, it's shared" {
		t.Fatal("commandLine changed os.Args")
	}
}
