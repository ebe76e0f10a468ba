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
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
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
		{"ray_vllm", "vllm/metrics-v0-qwen2.5-coder-aibrix-docs.prom", "0", "0", "0", "vllm", "", "metrics"},
		{"sglang", "sglang/metrics-production-metrics-docs-llama3.1-8b.prom", "162", "2826", "0.28", "sglang", "", "metrics"},
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
		{"rayserve-apps", "{\n  \"applications\": {\n", "line 3"},
		{"nvidia-smi", "name, utilization.gpu [%]\nNVIDIA A10, lots %\n", "line 2"},
	}
	for _, c := range cases {
		t.Run(c.kind, func(t *testing.T) {
			p := filepath.Join(dir, c.kind)
			if err := os.WriteFile(p, []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := run(ctx, []string{"agent", "probe", "--source", c.kind, "--file", p}, &out, &errb)
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
