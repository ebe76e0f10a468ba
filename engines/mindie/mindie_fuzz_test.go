package mindie

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/switchyard-dev/switchyard/engines"
)

func FuzzParseLoad(f *testing.F) {
	seed, err := os.ReadFile("../testdata/fixtures/ascend/mindie-server-metrics-llama65b-motor-testdata.prom")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("vllm:num_requests_running 1\n"))
	f.Add([]byte("num_requests_running{model_name=\"m\"} 2 1606402000\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		l, err := ParseLoad(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, engines.ErrMalformed) && !errors.Is(err, engines.ErrNoLoadMetrics) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if !l.Running.IsKnown() && !l.Waiting.IsKnown() {
			t.Fatal("success with neither running nor waiting known")
		}
		if kv, ok := l.KVCache.Get(); ok && (kv < 0 || kv > 1) {
			t.Fatalf("kv %v outside 0..1", kv)
		}
	})
}
