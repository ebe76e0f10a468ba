package shadow

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestDiffLogRotatesAndBoundsSize: the log rotates before a file exceeds
// MaxFileBytes, keeps MaxFiles files, and every line is one JSON report;
// the newest reports are kept.
func TestDiffLogRotatesAndBoundsSize(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "diff.jsonl")
	cfg := DefaultConfig().Log
	cfg.Path, cfg.MaxFileBytes, cfg.MaxFiles, cfg.QueueSize = path, 1000, 3, 1000
	l, err := newDiffLog(ctx, cfg, &logCounters{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	for i := 0; i < n; i++ {
		if !l.offer(&Report{RequestID: "r" + strconv.Itoa(i), Target: "t", PrimaryStatus: 200, ShadowStatus: 500}) {
			t.Fatal("queue full")
		}
	}
	l.close()
	if l.c.written.Load() != n || l.c.failed.Load() != 0 {
		t.Fatalf("written %d failed %d", l.c.written.Load(), l.c.failed.Load())
	}
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Fatalf("%s.3 exists (err %v); want at most 3 files", path, err)
	}
	last := -1
	for _, p := range []string{path + ".2", path + ".1", path} { // oldest first
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > cfg.MaxFileBytes {
			t.Fatalf("%s is %d bytes > %d", p, st.Size(), cfg.MaxFileBytes)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r Report
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %q: %v", p, sc.Text(), err)
			}
			i, _ := strconv.Atoi(r.RequestID[1:])
			if i != last+1 && last != -1 {
				t.Fatalf("%s: report %d after %d: order broken", p, i, last)
			}
			last = i
		}
		_ = f.Close()
	}
	if last != n-1 {
		t.Fatalf("newest report %d, want %d", last, n-1)
	}
}
