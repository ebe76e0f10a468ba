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

func TestAgentProbeBadFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dir := t.TempDir()
	cases := []struct{ kind, body, want string }{
		{"vllm", "vllm:num_requests_running{model_name=\"x\"} 1\nvllm:num_requests_waiting{model_name=\n", "line 2"},
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
}
