package all

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchyard-dev/switchyard/engines"
)

// FuzzParseLoad feeds every input to every dialect's parsers: the
// metrics parser of each registered adapter and the JSON fallback parser
// of each dialect that has one. Each must return a typed error
// (malformed input, no load metrics, too large) or a load with running or
// waiting known, counts ≥ 0, fractions within 0..1 and at most MaxNotes
// notes; none may panic. Seeds: every engine fixture.
func FuzzParseLoad(f *testing.F) {
	var seeds []string
	for _, pat := range []string{"../testdata/fixtures/*/*.prom", "../testdata/fixtures/sglang/*.json"} {
		m, err := filepath.Glob(pat)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, m...)
	}
	if len(seeds) < 10 {
		f.Fatalf("only %d fixtures to seed from", len(seeds))
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
	f.Add([]byte("sglang:num_running_reqs{tp_rank=\"1\",dp_rank=\"0\"} 3\nsglang:num_running_reqs{tp_rank=\"0\",dp_rank=\"0\"} 3\n"))
	f.Add([]byte("nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"used\"} 1\nnv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"max\"} 0\nnv_trt_llm_request_metrics{request_type=\"scheduled\"} 1\n"))
	f.Add([]byte(`{"loads": [{"num_running_reqs": 1, "token_usage": 2}]}`))
	dialects := engines.Dialects()
	names := engines.Names()
	if len(names) < 7 || len(dialects) < 7 {
		f.Fatalf("only %d adapters / %d dialects registered: %v", len(names), len(dialects), names)
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
			check(t, name+" metrics", l, err)
		}
		for _, d := range dialects {
			if d.Fallback == nil {
				continue
			}
			l, err := d.ParseFallback(bytes.NewReader(b))
			check(t, d.Name+" "+d.Fallback.Path, l, err)
		}
	})
}

func check(t *testing.T, what string, l engines.Load, err error) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, engines.ErrMalformed) && !errors.Is(err, engines.ErrNoLoadMetrics) && !errors.Is(err, engines.ErrTooLarge) {
			t.Fatalf("%s: untyped error: %v", what, err)
		}
		return
	}
	if !l.Running.IsKnown() && !l.Waiting.IsKnown() {
		t.Fatalf("%s: success with nothing known", what)
	}
	for _, v := range []engines.Value{l.Running, l.Waiting, l.PrefixCacheHits, l.PrefixCacheQueries} {
		if x, ok := v.Get(); ok && (x < 0 || x > engines.MaxCount*1e3) {
			t.Fatalf("%s: count %v", what, x)
		}
	}
	for _, v := range []engines.Value{l.KVCache, l.PrefixCacheHitRate} {
		if x, ok := v.Get(); ok && (x < 0 || x > 1) {
			t.Fatalf("%s: fraction %v outside 0..1", what, x)
		}
	}
	if len(l.Notes) > engines.MaxNotes || l.Anomalies < len(l.Notes) {
		t.Fatalf("%s: %d anomalies, notes %v", what, l.Anomalies, l.Notes)
	}
}
