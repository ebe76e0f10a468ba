package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAgentProbeFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fix := filepath.Join("..", "..", "engines", "testdata", "fixtures")
	cases := []struct{ kind, file, want string }{
		{"vllm", "vllm/metrics-v0-qwen2.5-coder-aibrix-docs.prom", `"kv_cache_usage": 0`},
		{"sglang", "sglang/metrics-v0.5.10-datadog-fixture-trimmed.prom", `"kv_cache_usage": 0.25`},
		{"tgi", "tgi/metrics-datadog-fixture-trimmed.prom", `"kv_cache_usage": null`},
		{"triton", "triton/metrics-t4-datadog-fixture.prom", `"waiting": 0`},
		{"mindie", "ascend/mindie-server-metrics-llama65b-motor-testdata.prom", `"kv_cache_usage": 0.1`},
		{"rayserve-apps", "rayserve/api-serve-applications-ray-docs.json", `"http_addr": "10.0.29.214:8000"`},
		{"nvidia-smi", "nvidia/nvidia-smi-query-gpu-csv-h100-load.csv", `"memory_total_bytes": 85520809984`},
		{"dcgm", "nvidia/dcgm-exporter-t4-datadog-fixture.prom", `"model": "Tesla T4"`},
		{"npu-smi", "ascend/npu-smi-info-a3-ascend910-26.1.0.txt", `"count": 16`},
		{"npu-smi-usages", "ascend/npu-smi-info-t-usages-i0-910.txt", `"memory_total_bytes": 34359738368`},
		{"npu-exporter", "ascend/npu-exporter-metrics-910a-testdata.prom", `"count": 8`},
		{"rocm-smi", "amd/rocm-smi-json-rx6600xt-marimo-test.txt", `"model": "AMD Radeon RX 6600 XT"`},
		{"npu-smi", "ascend/npu-smi-info-a5-ascend950dt-26.2.0.txt", `"count": 8`},
		{"amd-smi", "amd/amd-smi-metric-gpu-data-rx7800xt-derived.json", `"memory_total_bytes": 17163091968`},
		{"amd-smi", "amd/amd-smi-metric-power-json-amdsmi-changelog.json", `"count": 1`},
	}
	for _, c := range cases {
		t.Run(c.kind+" "+filepath.Base(c.file), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(ctx, []string{"agent", "probe", "--source", c.kind, "--file", filepath.Join(fix, c.file)}, &out, &errb)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if !json.Valid(out.Bytes()) || !strings.Contains(out.String(), c.want) {
				t.Errorf("output lacks %s:\n%s", c.want, out.String())
			}
		})
	}
}

// TestAgentProbeDialects: `agent probe --source KIND --file PATH` gives
// the exact running, waiting and KV values of every dialect's fixture,
// busy ones included.
func TestAgentProbeDialects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fix := filepath.Join("..", "..", "engines", "testdata", "fixtures")
	cases := []struct {
		kind, file            string
		running, waiting, kv  string
		engine, sleep, source string
	}{
		{"vllm", "vllm/metrics-v1-dp2-engine-label-derived.prom", "12", "2", "0.36", "vllm", "awake", "metrics"},
		{"ray_vllm", "vllm/metrics-ray-vllm-sanitised-derived.prom", "0", "0", "0", "vllm", "", "metrics"},
		{"sglang", "sglang/metrics-production-metrics-docs-llama3.1-8b.prom", "162", "2826", "0.28", "sglang", "", "metrics"},
		// TP ranks repeat their DP group's batch: one rank per group
		// counts (10 and 2, not 20 and 4), KV the groups' mean.
		{"sglang", "sglang/metrics-dp2-tp2-all-schedulers-derived.prom", "10", "2", "0.3", "sglang", "", "metrics"},
		{"sglang-loads", "sglang/v1-loads-dp2-derived.json", "21", "3", "0.3", "sglang", "", "/v1/loads"},
		{"triton", "triton/metrics-tensorrtllm-backend-readme.prom", "1", "1", "0.4875", "triton", "", "metrics"},
		{"triton", "triton/metrics-t4-datadog-fixture.prom", "null", "0", "null", "triton", "", "metrics"},
		{"trtllm-serve", "trtllm/metrics-collector-sample-iteration-stats-derived.prom", "5", "3", "0.6", "trtllm-serve", "", "metrics"},
		{"mindie", "ascend/mindie-motor-api-doc-metrics-llama3-8b.prom", "0", "0", "1", "mindie", "", "metrics"},
		{"tgi", "tgi/metrics-datadog-fixture-trimmed.prom", "0", "0", "null", "tgi", "", "metrics"},
	}
	for _, c := range cases {
		t.Run(c.kind+" "+filepath.Base(c.file), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(ctx, []string{"agent", "probe", "--source", c.kind, "--file", filepath.Join(fix, c.file)}, &out, &errb)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			var rep struct {
				Engine struct {
					Name string `json:"name"`
					Load struct {
						Engine  string          `json:"engine"`
						Source  string          `json:"source"`
						Running json.RawMessage `json:"running"`
						Waiting json.RawMessage `json:"waiting"`
						KV      json.RawMessage `json:"kv_cache_usage"`
						Sleep   string          `json:"sleep"`
					} `json:"load"`
				} `json:"engine"`
			}
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			l := rep.Engine.Load
			got := []string{string(l.Running), string(l.Waiting), string(l.KV), l.Engine, l.Sleep, l.Source}
			want := []string{c.running, c.waiting, c.kv, c.engine, c.sleep, c.source}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("running waiting kv engine sleep source = %q, want %q", got, want)
			}
		})
	}
}

// TestAgentProbeAccelerators: `agent probe --source KIND --file PATH`
// gives the exact accelerator view of the Ascend 950 capture and of both
// amd-smi shapes: cards, model, utilisation (unknown when the output has
// none), card 0's memory and the capacity coefficient.
func TestAgentProbeAccelerators(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fix := filepath.Join("..", "..", "engines", "testdata", "fixtures")
	cases := []struct {
		kind, file               string
		count                    int
		model, util, used, total string
		coefficient              float64
	}{
		{"npu-smi", "ascend/npu-smi-info-a5-ascend950dt-26.2.0.txt", 8, "Ascend950DT", "0", "5333057536", "103079215104", 1.6},
		{"npu-smi", "ascend/npu-smi-info-a3-ascend910-26.1.0.txt", 16, "Ascend910", "0", "39213596672", "68719476736", 0},
		{"amd-smi", "amd/amd-smi-metric-gpu-data-rx7800xt-derived.json", 1, "AMD Radeon RX 7800 XT", "0.02", "15276703744", "17163091968", 1},
		{"amd-smi", "amd/amd-smi-metric-power-json-amdsmi-changelog.json", 1, "", "null", "null", "null", 1},
	}
	for _, c := range cases {
		t.Run(c.kind+" "+filepath.Base(c.file), func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(ctx, []string{"agent", "probe", "--source", c.kind, "--file", filepath.Join(fix, c.file)}, &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			var rep struct {
				Accelerators []struct {
					Model string          `json:"model"`
					Count int             `json:"count"`
					Util  json.RawMessage `json:"utilization"`
					Cards []struct {
						Used  json.RawMessage `json:"memory_used_bytes"`
						Total json.RawMessage `json:"memory_total_bytes"`
					} `json:"cards"`
				} `json:"accelerators"`
				Capacity struct {
					Coefficient float64 `json:"coefficient"`
				} `json:"capacity"`
			}
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Accelerators) != 1 {
				t.Fatalf("%v\n%s", err, out.String())
			}
			a := rep.Accelerators[0]
			if a.Count != c.count || a.Model != c.model || string(a.Util) != c.util || len(a.Cards) != c.count ||
				string(a.Cards[0].Used) != c.used || string(a.Cards[0].Total) != c.total {
				t.Errorf("got %d x %q util %s card 0 %s/%s; want %d x %q util %s card 0 %s/%s",
					a.Count, a.Model, a.Util, a.Cards[0].Used, a.Cards[0].Total, c.count, c.model, c.util, c.used, c.total)
			}
			if c.coefficient != 0 && rep.Capacity.Coefficient != c.coefficient {
				t.Errorf("coefficient %g, want %g", rep.Capacity.Coefficient, c.coefficient)
			}
		})
	}
}

func TestAgentProbeBadFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dir := t.TempDir()
	cases := []struct{ kind, body, want string }{
		{"vllm", "vllm:num_requests_running{model_name=\"x\"} 1\nvllm:num_requests_waiting{model_name=\n", "line 2"},
		{"vllm", "vllm:num_requests_running{model_name=\"x\"} 1\nvllm:num_requests_waiting{model_name=\"x\"} 1", "line 2: truncated"},
		{"sglang", "sglang:num_running_reqs 16", "truncated"},
		{"sglang-loads", "{\"loads\": [{\"num_running_reqs\": 1", "truncated"},
		{"triton", "nv_trt_llm_request_metrics{model=\"t\",request_type=\"sched", "truncated"},
		{"trtllm-serve", "trtllm_num_requests_running{model_name=\"m\"} 5.0\ntrtllm_num_requests_wait", "line 2: truncated"},
		{"mindie", "num_requests_running{model_name=\"llama3-8b\"} 0\nnum_requests_waiting{mod", "line 2: truncated"},
		{"tgi", "tgi_queue_size 3", "truncated"},
		{"npu-smi", strings.Repeat("x", 10) + "\n| NPU ID | Name | Health |\n|        |      | Bus-Id |\n| 0 | Ascend950DT | OK", "truncated"},
		{"amd-smi", "{\"gpu_data\": [{\"gpu\": 0, \"usage\"", "truncated"},
		{"npu-smi", "| NPU Name | Health |\n| 0 Ascend910 | OK", "line 2: truncated"},
		// The first 12 lines of the real 950 capture end on a rule: once
		// 2 NPUs and exit 0 (issue 13).
		{"npu-smi-950-cut", firstLines(t, "ascend/npu-smi-info-a5-ascend950dt-26.2.0.txt", 12), "truncated (no process table"},
		{"rayserve-apps", "{\n  \"applications\": {\n", "line 3"},
		{"nvidia-smi", "name, utilization.gpu [%]\nNVIDIA A10, lots %\n", "line 2"},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			p := filepath.Join(dir, c.kind)
			if err := os.WriteFile(p, []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			kind, _, _ := strings.Cut(c.kind, "-950")
			var out, errb bytes.Buffer
			code := run(ctx, []string{"agent", "probe", "--source", kind, "--file", p}, &out, &errb)
			if code == 0 {
				t.Fatalf("exit 0 for bad input; stdout %s", out.String())
			}
			if !strings.Contains(errb.String(), c.want) {
				t.Errorf("stderr %q lacks %q", errb.String(), c.want)
			}
		})
	}
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"agent", "probe", "--source", "vllm"}, &out, &errb); code != 2 {
		t.Errorf("--source without --file: exit %d", code)
	}
	// An unknown kind: a usage error naming the known kinds, before the
	// file is even opened.
	out.Reset()
	errb.Reset()
	code := run(ctx, []string{"agent", "probe", "--source", "vllm2", "--file", filepath.Join(dir, "missing")}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), `unknown source kind "vllm2"`) || !strings.Contains(errb.String(), "trtllm-serve") || out.Len() != 0 {
		t.Errorf("unknown kind: exit %d stderr %q stdout %q", code, errb.String(), out.String())
	}
}

// firstLines returns the first n lines of a fixture.
func firstLines(t *testing.T, file string, n int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "engines", "testdata", "fixtures", file))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	return strings.Join(lines[:n], "")
}
