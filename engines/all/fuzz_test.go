package all

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-dev/switchyard/engines"
)

// FuzzParseLoad feeds every input to every registered engine adapter's
// load parser. Each must return a typed error (malformed input, or no load
// metrics) or a load with running or waiting known and KV usage within 0..1; none
// may panic. Seeds: every Prometheus fixture.
func FuzzParseLoad(f *testing.F) {
	seeds, err := filepath.Glob("../testdata/fixtures/*/*.prom")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no fixtures to seed from: %v", err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("vllm:num_requests_running 1\n"))
	f.Add([]byte("num_requests_running{model_name=\"m\"} 2 1606402000\n"))
	names := engines.Names()
	if len(names) < 6 {
		f.Fatalf("only %d adapters registered: %v", len(names), names)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		for _, name := range names {
			a, err := engines.Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			l, err := a.ParseLoad(bytes.NewReader(b))
			if err != nil {
				if !errors.Is(err, engines.ErrMalformed) && !errors.Is(err, engines.ErrNoLoadMetrics) {
					t.Fatalf("%s: untyped error: %v", name, err)
				}
				continue
			}
			if !l.Running.IsKnown() && !l.Waiting.IsKnown() {
				t.Fatalf("%s: success with nothing known", name)
			}
			if kv, ok := l.KVCache.Get(); ok && (kv < 0 || kv > 1) {
				t.Fatalf("%s: kv %v outside 0..1", name, kv)
			}
		}
	})
}
