package engines_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/engines"
	_ "github.com/switchyard-dev/switchyard/engines/all"
)

func fixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func val(v engines.Value) string { return v.String() }

func TestAdaptersOnFixtures(t *testing.T) {
	cases := []struct {
		name, engine, file string
		running, waiting   string
		kv                 string
		models             string
	}{
		{"vllm v0", "vllm", "vllm/metrics-v0-qwen2.5-coder-aibrix-docs.prom", "0", "0", "0", "Qwen/Qwen2.5-Coder-1.5B-Instruct"},
		{"sglang", "sglang", "sglang/metrics-v0.5.10-datadog-fixture-trimmed.prom", "0", "0", "0.25", "facebook/opt-125m"},
		{"tgi", "tgi", "tgi/metrics-datadog-fixture-trimmed.prom", "0", "0", "unknown", ""},
		{"triton", "triton", "triton/metrics-t4-datadog-fixture.prom", "unknown", "0", "unknown", "densenet_onnx,inception_graphdef,simple,simple_dyna_sequence,simple_identity,simple_int8,simple_sequence,simple_string"},
		{"mindie", "mindie", "ascend/mindie-server-metrics-llama65b-motor-testdata.prom", "0", "0", "0.1", "llama_65b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := engines.Lookup(c.engine)
			if err != nil {
				t.Fatal(err)
			}
			l, err := a.ParseLoad(bytes.NewReader(fixture(t, c.file)))
			if err != nil {
				t.Fatalf("ParseLoad: %v", err)
			}
			if got := val(l.Running); got != c.running {
				t.Errorf("running = %s, want %s", got, c.running)
			}
			if got := val(l.Waiting); got != c.waiting {
				t.Errorf("waiting = %s, want %s", got, c.waiting)
			}
			if got := val(l.KVCache); got != c.kv {
				t.Errorf("kv = %s, want %s", got, c.kv)
			}
			if got := strings.Join(l.Models, ","); got != c.models {
				t.Errorf("models = %q, want %q", got, c.models)
			}
			if l.Engine != c.engine {
				t.Errorf("engine = %q", l.Engine)
			}
		})
	}
}

func TestVLLMNamingVariants(t *testing.T) {
	a, _ := engines.Lookup("vllm")
	cases := []struct {
		name, text           string
		running, waiting, kv string
	}{
		{"v1 kv_cache_usage_perc", "vllm:num_requests_running{model_name=\"m\"} 3\nvllm:num_requests_waiting{model_name=\"m\"} 2\nvllm:kv_cache_usage_perc{model_name=\"m\"} 0.5\n", "3", "2", "0.5"},
		{"ray_vllm prefix", "# TYPE ray_vllm:num_requests_running gauge\nray_vllm:num_requests_running{model_name=\"m\",ReplicaId=\"r1\"} 4\nray_vllm:num_requests_running{model_name=\"m\",ReplicaId=\"r2\"} 1\nray_vllm:num_requests_waiting{model_name=\"m\"} 0\nray_vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.75\n", "5", "0", "0.75"},
		{"two models max kv", "vllm:num_requests_running{model_name=\"a\"} 1\nvllm:num_requests_running{model_name=\"b\"} 2\nvllm:gpu_cache_usage_perc{model_name=\"a\"} 0.2\nvllm:gpu_cache_usage_perc{model_name=\"b\"} 0.9\n", "3", "unknown", "0.9"},
		{"NaN kv is unknown", "vllm:num_requests_running 1\nvllm:gpu_cache_usage_perc NaN\n", "1", "unknown", "unknown"},
		{"exponent and timestamp", "vllm:num_requests_running 1e1 1606402000\n", "10", "unknown", "unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := a.ParseLoad(strings.NewReader(c.text))
			if err != nil {
				t.Fatal(err)
			}
			if val(l.Running) != c.running || val(l.Waiting) != c.waiting || val(l.KVCache) != c.kv {
				t.Errorf("got running=%s waiting=%s kv=%s, want %s %s %s", l.Running, l.Waiting, l.KVCache, c.running, c.waiting, c.kv)
			}
		})
	}
}

func TestParseLoadErrors(t *testing.T) {
	a, _ := engines.Lookup("vllm")
	cases := []struct {
		name, text string
		want       error
		mention    string
	}{
		{"empty", "", engines.ErrMalformed, "empty"},
		{"garbage", "hello world\n", engines.ErrMalformed, "line 1"},
		{"bad value", "vllm:num_requests_running abc\n", engines.ErrMalformed, "line 1"},
		{"truncated label", "vllm:num_requests_running{model_name=\"Qw\n", engines.ErrMalformed, "line 1"},
		{"no final newline", "vllm:num_requests_running 1", engines.ErrMalformed, "truncated"},
		{"other engine", "tgi_queue_size 0\n", engines.ErrNoLoadMetrics, "vllm:num_requests_running"},
		{"kv out of range", "vllm:num_requests_running 1\nvllm:gpu_cache_usage_perc 57\n", engines.ErrMalformed, "outside 0..1"},
		{"negative", "vllm:num_requests_running -1\n", engines.ErrMalformed, "negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := a.ParseLoad(strings.NewReader(c.text))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("err %q does not mention %q", err, c.mention)
			}
		})
	}
}

// TestTruncatedFixtures cuts every metrics fixture at every byte: the
// parse must never panic, a cut inside a line must fail, and a cut at a
// line boundary may only succeed with values the full file agrees with
// or Unknown - never an invented zero.
func TestTruncatedFixtures(t *testing.T) {
	files := map[string]string{
		"vllm":   "vllm/metrics-v0-qwen2.5-coder-aibrix-docs.prom",
		"sglang": "sglang/metrics-v0.5.10-datadog-fixture-trimmed.prom",
		"tgi":    "tgi/metrics-datadog-fixture-trimmed.prom",
		"mindie": "ascend/mindie-server-metrics-llama65b-motor-testdata.prom",
	}
	for eng, f := range files {
		a, _ := engines.Lookup(eng)
		data := fixture(t, f)
		full, err := a.ParseLoad(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(data); n++ {
			l, err := a.ParseLoad(bytes.NewReader(data[:n]))
			if n > 0 && data[n-1] != '\n' && err == nil {
				t.Fatalf("%s cut at %d (mid-line) parsed without error", eng, n)
			}
			if err != nil {
				continue
			}
			for _, p := range [][2]engines.Value{{l.Running, full.Running}, {l.Waiting, full.Waiting}, {l.KVCache, full.KVCache}} {
				if p[0].IsKnown() && p[0] != p[1] {
					t.Fatalf("%s cut at %d: value %s differs from full %s", eng, n, p[0], p[1])
				}
			}
		}
	}
}

func TestLookup(t *testing.T) {
	for _, n := range []string{"vllm", "ray_vllm", "sglang", "tgi", "triton", "kserve", "mindie", "rayserve"} {
		if _, err := engines.Lookup(n); err != nil {
			t.Errorf("Lookup(%q): %v", n, err)
		}
	}
	if _, err := engines.Lookup("nope"); !errors.Is(err, engines.ErrUnknownEngine) {
		t.Errorf("unknown: %v", err)
	}
}

func TestClassifyReady(t *testing.T) {
	mindie, _ := engines.Lookup("mindie")
	vllm, _ := engines.Lookup("vllm")
	cases := []struct {
		name   string
		spec   engines.Spec
		status int
		live   bool
		want   engines.Health
	}{
		{"mindie ready", mindie.Spec(), 200, true, engines.HealthReady},
		{"mindie busy", mindie.Spec(), 503, true, engines.HealthBusy},
		{"mindie 503 not live", mindie.Spec(), 503, false, engines.HealthDown},
		{"vllm 503 live", vllm.Spec(), 503, true, engines.HealthNotReady},
		{"no answer", vllm.Spec(), 0, false, engines.HealthDown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.spec.ClassifyReady(c.status, c.live); got != c.want {
				t.Errorf("got %s want %s", got, c.want)
			}
		})
	}
}
