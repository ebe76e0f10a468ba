package engines_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/engines"
)

func fixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func lookup(t testing.TB, name string) engines.Adapter {
	t.Helper()
	a, err := engines.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// fixtureCase is one engine fixture and the exact values it must give.
type fixtureCase struct {
	name, engine, file string
	running, waiting   string
	kv, hitRate        string
	hits, queries      string
	models             string
	sleep              engines.SleepState
	lora               string // running|waiting|max, "" = no LoRA state
}

// fixtureCases lists every engine fixture; the non-idle ones are the
// reason the table exists (an idle fixture cannot tell sum from max).
var fixtureCases = []fixtureCase{
	{name: "vllm v0 idle", engine: "vllm", file: "vllm/metrics-v0-qwen2.5-coder-aibrix-docs.prom",
		running: "0", waiting: "0", kv: "0", hitRate: "unknown", hits: "unknown", queries: "unknown", models: "Qwen/Qwen2.5-Coder-1.5B-Instruct",
		lora: "||0"},
	{name: "vllm v1 two DP engines (derived)", engine: "vllm", file: "vllm/metrics-v1-dp2-engine-label-derived.prom",
		running: "12", waiting: "2", kv: "0.36", hitRate: "unknown", hits: "40960", queries: "122880", models: "Qwen/Qwen3-8B",
		sleep: engines.SleepAwake, lora: "sql-lora,chat-lora|summ-lora|4"},
	{name: "sglang idle", engine: "sglang", file: "sglang/metrics-v0.5.10-datadog-fixture-trimmed.prom",
		running: "0", waiting: "0", kv: "0.25", hitRate: "0.2", hits: "unknown", queries: "unknown", models: "facebook/opt-125m"},
	{name: "sglang busy (production-metrics docs)", engine: "sglang", file: "sglang/metrics-production-metrics-docs-llama3.1-8b.prom",
		running: "162", waiting: "2826", kv: "0.28", hitRate: "0.007507552643049313", hits: "unknown", queries: "unknown", models: "meta-llama/Llama-3.1-8B-Instruct"},
	{name: "tgi", engine: "tgi", file: "tgi/metrics-datadog-fixture-trimmed.prom",
		running: "0", waiting: "0", kv: "unknown", hitRate: "unknown", hits: "unknown", queries: "unknown"},
	{name: "triton plain", engine: "triton", file: "triton/metrics-t4-datadog-fixture.prom",
		running: "unknown", waiting: "0", kv: "unknown", hitRate: "unknown", hits: "unknown", queries: "unknown",
		models: "densenet_onnx,inception_graphdef,simple,simple_dyna_sequence,simple_identity,simple_int8,simple_sequence,simple_string"},
	{name: "triton tensorrt-llm (backend README)", engine: "triton", file: "triton/metrics-tensorrtllm-backend-readme.prom",
		running: "1", waiting: "1", kv: "0.4875", hitRate: "unknown", hits: "unknown", queries: "unknown", models: "tensorrt_llm"},
	{name: "mindie idle (motor testdata)", engine: "mindie", file: "ascend/mindie-server-metrics-llama65b-motor-testdata.prom",
		running: "0", waiting: "0", kv: "0.1", hitRate: "0.1", hits: "unknown", queries: "unknown", models: "llama_65b"},
	{name: "mindie full KV (motor API docs)", engine: "mindie", file: "ascend/mindie-motor-api-doc-metrics-llama3-8b.prom",
		running: "0", waiting: "0", kv: "1", hitRate: "0.5", hits: "unknown", queries: "unknown", models: "llama3-8b"},
	{name: "trtllm-serve (derived)", engine: "trtllm-serve", file: "trtllm/metrics-collector-sample-iteration-stats-derived.prom",
		running: "5", waiting: "3", kv: "0.6", hitRate: "0.85", hits: "unknown", queries: "unknown", models: "test_model"},
}

func TestDialectsOnFixtures(t *testing.T) {
	for _, c := range fixtureCases {
		t.Run(c.name, func(t *testing.T) {
			l, err := lookup(t, c.engine).ParseLoad(bytes.NewReader(fixture(t, c.file)))
			if err != nil {
				t.Fatalf("ParseLoad: %v", err)
			}
			checkLoad(t, l, c)
		})
	}
}

func checkLoad(t *testing.T, l engines.Load, c fixtureCase) {
	t.Helper()
	for _, f := range []struct {
		what      string
		got, want string
	}{
		{"running", l.Running.String(), c.running},
		{"waiting", l.Waiting.String(), c.waiting},
		{"kv", l.KVCache.String(), c.kv},
		{"hit rate", l.PrefixCacheHitRate.String(), c.hitRate},
		{"prefix hits", l.PrefixCacheHits.String(), c.hits},
		{"prefix queries", l.PrefixCacheQueries.String(), c.queries},
		{"models", strings.Join(l.Models, ","), c.models},
		{"sleep", string(l.Sleep), string(c.sleep)},
		{"engine", l.Engine, mustDialectName(t, c.engine)},
	} {
		if f.got != f.want {
			t.Errorf("%s = %q, want %q", f.what, f.got, f.want)
		}
	}
	lora := ""
	if l.LoRA != nil {
		lora = strings.Join(l.LoRA.Running, ",") + "|" + strings.Join(l.LoRA.Waiting, ",") + "|" + l.LoRA.Max.String()
	}
	if lora != c.lora {
		t.Errorf("lora = %q, want %q", lora, c.lora)
	}
	if l.Anomalies != 0 {
		t.Errorf("anomalies %d in a real fixture: %v", l.Anomalies, l.Notes)
	}
}

func mustDialectName(t *testing.T, name string) string {
	d, err := engines.LookupDialect(name)
	if err != nil {
		t.Fatal(err)
	}
	return d.Name
}

type inline struct {
	name, text                  string
	running, waiting, kv, sleep string
	anomalies                   int
}

func runInline(t *testing.T, engine string, cases []inline) {
	t.Helper()
	a := lookup(t, engine)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := a.ParseLoad(strings.NewReader(c.text))
			if err != nil {
				t.Fatal(err)
			}
			got := []string{l.Running.String(), l.Waiting.String(), l.KVCache.String(), string(l.Sleep)}
			want := []string{c.running, c.waiting, c.kv, c.sleep}
			if strings.Join(got, " ") != strings.Join(want, " ") || l.Anomalies != c.anomalies {
				t.Errorf("running/waiting/kv/sleep = %q, anomalies %d (%v); want %q, %d", got, l.Anomalies, l.Notes, want, c.anomalies)
			}
		})
	}
}

func TestVLLMNamingVariants(t *testing.T) {
	runInline(t, "vllm", []inline{
		{name: "v1 kv_cache_usage_perc", text: "vllm:num_requests_running{model_name=\"m\"} 3\nvllm:num_requests_waiting{model_name=\"m\"} 2\nvllm:kv_cache_usage_perc{model_name=\"m\"} 0.5\n",
			running: "3", waiting: "2", kv: "0.5"},
		{name: "old ray_vllm: prefix, two replicas", text: "# TYPE ray_vllm:num_requests_running gauge\nray_vllm:num_requests_running{model_name=\"m\",ReplicaId=\"r1\"} 4\nray_vllm:num_requests_running{model_name=\"m\",ReplicaId=\"r2\"} 1\nray_vllm:num_requests_waiting{model_name=\"m\"} 0\nray_vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.75\n",
			running: "5", waiting: "0", kv: "0.75"},
		{name: "sanitised ray_vllm_ names (current Ray)", text: "ray_vllm_num_requests_running{ReplicaId=\"a\",engine=\"0\",model_name=\"m\"} 6\nray_vllm_num_requests_running{ReplicaId=\"b\",engine=\"0\",model_name=\"m\"} 2\nray_vllm_num_requests_waiting{ReplicaId=\"a\",engine=\"0\",model_name=\"m\"} 1\nray_vllm_kv_cache_usage_perc{ReplicaId=\"a\",engine=\"0\",model_name=\"m\"} 0.2\nray_vllm_kv_cache_usage_perc{ReplicaId=\"b\",engine=\"0\",model_name=\"m\"} 0.6\nray_vllm_engine_sleep_state{ReplicaId=\"a\",engine=\"0\",model_name=\"m\",sleep_state=\"awake\"} 1\n",
			running: "8", waiting: "1", kv: "0.4", sleep: "awake"},
		{name: "engine label: sum counts, mean kv", text: "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 1\nvllm:num_requests_running{engine=\"1\",model_name=\"m\"} 2\nvllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.2\nvllm:kv_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.6\n",
			running: "3", waiting: "unknown", kv: "0.4"},
		{name: "two models: max over models of the mean", text: "vllm:num_requests_running{model_name=\"a\"} 1\nvllm:num_requests_running{model_name=\"b\"} 2\nvllm:gpu_cache_usage_perc{model_name=\"a\"} 0.2\nvllm:gpu_cache_usage_perc{model_name=\"b\"} 0.9\n",
			running: "3", waiting: "unknown", kv: "0.9"},
		{name: "asleep: not idle", text: "vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 0\nvllm:num_requests_waiting{engine=\"0\",model_name=\"m\"} 0\nvllm:engine_sleep_state{engine=\"0\",model_name=\"m\",sleep_state=\"awake\"} 0\nvllm:engine_sleep_state{engine=\"0\",model_name=\"m\",sleep_state=\"weights_offloaded\"} 1\n",
			running: "0", waiting: "0", kv: "unknown", sleep: "asleep"},
		{name: "NaN kv is unknown", text: "vllm:num_requests_running 1\nvllm:gpu_cache_usage_perc NaN\n", running: "1", waiting: "unknown", kv: "unknown"},
		{name: "exponent and timestamp", text: "vllm:num_requests_running 1e1 1606402000\n", running: "10", waiting: "unknown", kv: "unknown"},
	})
}

func TestSGLangRanks(t *testing.T) {
	runInline(t, "sglang", []inline{
		{name: "all schedulers, TP 4: one rank counts", text: "sglang:num_running_reqs{engine_type=\"unified\",model_name=\"m\",moe_ep_rank=\"0\",pp_rank=\"0\",tp_rank=\"0\"} 9\nsglang:num_running_reqs{engine_type=\"unified\",model_name=\"m\",moe_ep_rank=\"1\",pp_rank=\"0\",tp_rank=\"1\"} 9\nsglang:num_running_reqs{engine_type=\"unified\",model_name=\"m\",moe_ep_rank=\"2\",pp_rank=\"0\",tp_rank=\"2\"} 9\nsglang:num_running_reqs{engine_type=\"unified\",model_name=\"m\",moe_ep_rank=\"3\",pp_rank=\"0\",tp_rank=\"3\"} 9\nsglang:num_queue_reqs{engine_type=\"unified\",model_name=\"m\",moe_ep_rank=\"0\",pp_rank=\"0\",tp_rank=\"0\"} 4\nsglang:num_queue_reqs{engine_type=\"unified\",model_name=\"m\",moe_ep_rank=\"1\",pp_rank=\"0\",tp_rank=\"1\"} 4\nsglang:token_usage{engine_type=\"unified\",model_name=\"m\",moe_ep_rank=\"0\",pp_rank=\"0\",tp_rank=\"0\"} 0.5\nsglang:token_usage{engine_type=\"unified\",model_name=\"m\",moe_ep_rank=\"1\",pp_rank=\"0\",tp_rank=\"1\"} 0.5\n",
			running: "9", waiting: "4", kv: "0.5"},
		{name: "DP 2 x TP 2: one rank per DP group", text: "sglang:num_running_reqs{dp_rank=\"0\",model_name=\"m\",tp_rank=\"0\"} 3\nsglang:num_running_reqs{dp_rank=\"0\",model_name=\"m\",tp_rank=\"1\"} 3\nsglang:num_running_reqs{dp_rank=\"1\",model_name=\"m\",tp_rank=\"2\"} 5\nsglang:num_running_reqs{dp_rank=\"1\",model_name=\"m\",tp_rank=\"3\"} 5\nsglang:token_usage{dp_rank=\"0\",model_name=\"m\",tp_rank=\"0\"} 0.2\nsglang:token_usage{dp_rank=\"0\",model_name=\"m\",tp_rank=\"1\"} 0.2\nsglang:token_usage{dp_rank=\"1\",model_name=\"m\",tp_rank=\"2\"} 0.4\nsglang:token_usage{dp_rank=\"1\",model_name=\"m\",tp_rank=\"3\"} 0.4\n",
			running: "8", waiting: "unknown", kv: "0.30000000000000004"},
		{name: "the /v1/loads?format=prometheus names", text: "# TYPE sglang_num_running_reqs gauge\nsglang_num_running_reqs{dp_rank=\"0\"} 2\nsglang_num_running_reqs{dp_rank=\"1\"} 3\n# TYPE sglang_num_waiting_reqs gauge\nsglang_num_waiting_reqs{dp_rank=\"0\"} 1\nsglang_num_waiting_reqs{dp_rank=\"1\"} 0\n# TYPE sglang_token_usage gauge\nsglang_token_usage{dp_rank=\"0\"} 0.1\nsglang_token_usage{dp_rank=\"1\"} 0.3\n",
			running: "5", waiting: "1", kv: "0.2"},
	})
}

func TestTritonTensorRTLLM(t *testing.T) {
	runInline(t, "triton", []inline{
		{name: "kv from used/max when fraction is missing", text: "nv_trt_llm_request_metrics{model=\"t\",request_type=\"scheduled\",version=\"1\"} 6\nnv_trt_llm_request_metrics{model=\"t\",request_type=\"waiting\",version=\"1\"} 2\nnv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"used\",model=\"t\",version=\"1\"} 300\nnv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"max\",model=\"t\",version=\"1\"} 1200\nnv_inference_pending_request_count{model=\"t\",version=\"1\"} 0\n",
			running: "6", waiting: "2", kv: "0.25"},
		{name: "max 0 gives unknown kv, not a division by zero", text: "nv_trt_llm_request_metrics{model=\"t\",request_type=\"scheduled\",version=\"1\"} 0\nnv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"used\",model=\"t\",version=\"1\"} 0\nnv_trt_llm_kv_cache_block_metrics{kv_cache_block_type=\"max\",model=\"t\",version=\"1\"} 0\n",
			running: "0", waiting: "unknown", kv: "unknown"},
	})
}

func TestTRTLLMServeBlocks(t *testing.T) {
	runInline(t, "trtllm-serve", []inline{
		{name: "utilization absent: used/max blocks", text: "trtllm_num_requests_running{engine_type=\"trtllm\",model_name=\"m\"} 2\ntrtllm_kv_cache_used_blocks{engine_type=\"trtllm\",model_name=\"m\"} 50\ntrtllm_kv_cache_max_blocks{engine_type=\"trtllm\",model_name=\"m\"} 200\n",
			running: "2", waiting: "unknown", kv: "0.25"},
	})
}

// TestAnomalies: one value out of range does not throw away the scrape.
func TestAnomalies(t *testing.T) {
	runInline(t, "vllm", []inline{
		{name: "kv 1.2 dropped, counts kept", text: "vllm:num_requests_running 3\nvllm:num_requests_waiting 4\nvllm:kv_cache_usage_perc 1.2\n",
			running: "3", waiting: "4", kv: "unknown", anomalies: 1},
		{name: "one bad engine's kv dropped, the other kept", text: "vllm:num_requests_running{engine=\"0\"} 1\nvllm:kv_cache_usage_perc{engine=\"0\"} 57\nvllm:kv_cache_usage_perc{engine=\"1\"} 0.5\n",
			running: "1", waiting: "unknown", kv: "0.5", anomalies: 1},
		{name: "negative running dropped, waiting kept", text: "vllm:num_requests_running -1\nvllm:num_requests_waiting 2\nvllm:kv_cache_usage_perc 0.1\n",
			running: "unknown", waiting: "2", kv: "0.1", anomalies: 1},
		{name: "+Inf count dropped", text: "vllm:num_requests_running{engine=\"0\"} +Inf\nvllm:num_requests_running{engine=\"1\"} 2\n",
			running: "2", waiting: "unknown", kv: "unknown", anomalies: 1},
		{name: "float noise clamped silently", text: "vllm:num_requests_running 1\nvllm:kv_cache_usage_perc 1.0000000001\n",
			running: "1", waiting: "unknown", kv: "1"},
	})
	a := lookup(t, "vllm")
	l, err := a.ParseLoad(strings.NewReader("vllm:num_requests_running 1\nvllm:kv_cache_usage_perc 1.2\n"))
	if err != nil || len(l.Notes) != 1 || !strings.Contains(l.Notes[0], "vllm:kv_cache_usage_perc = 1.2") {
		t.Errorf("notes %q err %v", l.Notes, err)
	}
	_, err = a.ParseLoad(strings.NewReader("vllm:num_requests_running -1\nvllm:num_requests_waiting -3\n"))
	if !errors.Is(err, engines.ErrMalformed) || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("every count bad: err = %v", err)
	}
}

func TestParseLoadErrors(t *testing.T) {
	a := lookup(t, "vllm")
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
	for _, c := range fixtureCases {
		a := lookup(t, c.engine)
		data := fixture(t, c.file)
		full, err := a.ParseLoad(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < len(data); n++ {
			l, err := a.ParseLoad(bytes.NewReader(data[:n]))
			if n > 0 && data[n-1] != '\n' && err == nil {
				t.Fatalf("%s cut at %d (mid-line) parsed without error", c.file, n)
			}
			if err != nil {
				continue
			}
			for _, p := range [][2]engines.Value{{l.Running, full.Running}, {l.Waiting, full.Waiting}} {
				if p[0].IsKnown() && p[0] != p[1] && !sumPrefix(c) {
					t.Fatalf("%s cut at %d: value %s differs from full %s", c.file, n, p[0], p[1])
				}
			}
		}
	}
}

// sumPrefix: in a multi-engine fixture a cut between engines gives a
// partial sum, which is a true count of the engines seen.
func sumPrefix(c fixtureCase) bool { return strings.Contains(c.file, "dp2") }

func TestLookup(t *testing.T) {
	for _, n := range []string{"vllm", "ray_vllm", "sglang", "tgi", "triton", "kserve", "triton-tensorrt-llm", "mindie", "rayserve", "trtllm-serve", "trtllm"} {
		if _, err := engines.Lookup(n); err != nil {
			t.Errorf("Lookup(%q): %v", n, err)
		}
	}
	if _, err := engines.Lookup("nope"); !errors.Is(err, engines.ErrUnknownEngine) {
		t.Errorf("unknown: %v", err)
	}
	names := map[string]bool{}
	for _, d := range engines.Dialects() {
		names[d.Name] = true
	}
	for _, n := range []string{"vllm", "sglang", "tgi", "triton", "mindie", "rayserve", "trtllm-serve"} {
		if !names[n] {
			t.Errorf("dialect %s missing from Dialects()", n)
		}
	}
}

func TestClassifyReady(t *testing.T) {
	mindie, vllm := lookup(t, "mindie").Spec(), lookup(t, "vllm").Spec()
	cases := []struct {
		name   string
		spec   engines.Spec
		status int
		live   bool
		want   engines.Health
	}{
		{"mindie ready", mindie, 200, true, engines.HealthReady},
		{"mindie busy", mindie, 503, true, engines.HealthBusy},
		{"mindie 503 not live", mindie, 503, false, engines.HealthDown},
		{"vllm 503 live", vllm, 503, true, engines.HealthNotReady},
		{"no answer", vllm, 0, false, engines.HealthDown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.spec.ClassifyReady(c.status, c.live); got != c.want {
				t.Errorf("got %s want %s", got, c.want)
			}
		})
	}
}

func TestSpecURLs(t *testing.T) {
	mindie, vllm := lookup(t, "mindie").Spec(), lookup(t, "vllm").Spec()
	for _, c := range []struct{ got, want string }{
		{mindie.MetricsURL(""), "https://127.0.0.2:1027/metrics"},
		{mindie.HealthBase(""), "https://127.0.0.2:1026"},
		{mindie.MetricsURL("10.0.0.5"), "https://10.0.0.5:1027/metrics"},
		{vllm.MetricsURL("::1"), "http://[::1]:8000/metrics"},
		{lookup(t, "trtllm-serve").Spec().MetricsURL("h"), "http://h:8000/prometheus/metrics"},
	} {
		if c.got != c.want {
			t.Errorf("got %s want %s", c.got, c.want)
		}
	}
}
