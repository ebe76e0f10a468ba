package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/engines"
)

func fx(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSourceEveryFixture(t *testing.T) {
	cases := []struct {
		kind, file string
		check      func(t *testing.T, r Report)
	}{
		{"vllm", "vllm/metrics-v0-qwen2.5-coder-aibrix-docs.prom", func(t *testing.T, r Report) {
			if r.Engine.Load.Running.String() != "0" || r.Concurrency.String() != "0" {
				t.Errorf("%+v", r.Engine.Load)
			}
		}},
		{"sglang", "sglang/metrics-v0.5.10-datadog-fixture-trimmed.prom", func(t *testing.T, r Report) {
			if r.Engine.Load.KVCache.String() != "0.25" {
				t.Errorf("%+v", r.Engine.Load)
			}
		}},
		{"tgi", "tgi/metrics-datadog-fixture-trimmed.prom", nil},
		{"triton", "triton/metrics-t4-datadog-fixture.prom", func(t *testing.T, r Report) {
			if r.Concurrency.IsKnown() {
				t.Errorf("triton has no running gauge; concurrency = %s", r.Concurrency)
			}
		}},
		{"mindie", "ascend/mindie-server-metrics-llama65b-motor-testdata.prom", nil},
		{"rayserve-apps", "rayserve/api-serve-applications-ray-docs.json", func(t *testing.T, r Report) {
			if len(r.Engine.Ray.Routes) != 1 {
				t.Errorf("%+v", r.Engine.Ray)
			}
		}},
		{"nvidia-smi", "nvidia/nvidia-smi-query-gpu-csv-h100-load.csv", func(t *testing.T, r Report) {
			if r.Capacity.Value != 3.17 || r.Utilization.String() != "1" || r.Capacity.Warning != "" {
				t.Errorf("capacity %+v util %s", r.Capacity, r.Utilization)
			}
		}},
		{"dcgm", "nvidia/dcgm-exporter-t4-datadog-fixture.prom", func(t *testing.T, r Report) {
			if r.Capacity.Units != 3 {
				t.Errorf("capacity %+v", r.Capacity)
			}
		}},
		{"npu-smi", "ascend/npu-smi-info-a3-ascend910-26.1.0.txt", func(t *testing.T, r Report) {
			if r.Capacity.Units != 16 || r.Capacity.Value < 19 || r.Capacity.Value > 20 {
				t.Errorf("capacity %+v", r.Capacity)
			}
		}},
		{"npu-smi-usages", "ascend/npu-smi-info-t-usages-i0-910.txt", func(t *testing.T, r Report) {
			// usages does not name the model: default coefficient + warning.
			if r.Capacity.Warning == "" || len(r.Warnings) == 0 {
				t.Errorf("want unknown-model warning, got %+v", r)
			}
		}},
		{"npu-exporter", "ascend/npu-exporter-metrics-910a-testdata.prom", func(t *testing.T, r Report) {
			if r.Capacity.Units != 8 || r.Capacity.Coefficient != 0.82 {
				t.Errorf("capacity %+v", r.Capacity)
			}
		}},
		{"trtllm-serve", "trtllm/metrics-collector-sample-iteration-stats-derived.prom", func(t *testing.T, r Report) {
			if r.Concurrency.String() != "5" || r.Engine.Load.Waiting.String() != "3" || r.Engine.Load.KVCache.String() != "0.6" {
				t.Errorf("%+v", r.Engine.Load)
			}
		}},
		{"sglang-loads", "sglang/v1-loads-dp2-derived.json", func(t *testing.T, r Report) {
			if r.Engine.Name != "sglang" || r.Engine.Load.Running.String() != "21" || r.Engine.Load.Source != "/v1/loads" {
				t.Errorf("%+v", r.Engine)
			}
		}},
		{"kserve", "triton/metrics-tensorrtllm-backend-readme.prom", func(t *testing.T, r Report) {
			if r.Engine.Name != "triton" || r.Concurrency.String() != "1" {
				t.Errorf("alias kserve: %+v", r.Engine)
			}
		}},
		{"npu-smi", "ascend/npu-smi-info-a5-ascend950dt-26.2.0.txt", func(t *testing.T, r Report) {
			if r.Capacity.Units != 8 || r.Capacity.Coefficient != 1.6 || r.Capacity.Warning != "" || r.Utilization.String() != "0" {
				t.Errorf("capacity %+v util %s", r.Capacity, r.Utilization)
			}
		}},
		{"amd-smi", "amd/amd-smi-metric-gpu-data-rx7800xt-derived.json", func(t *testing.T, r Report) {
			if r.Utilization.String() != "0.02" || r.Capacity.Units != 1 {
				t.Errorf("capacity %+v util %s", r.Capacity, r.Utilization)
			}
		}},
		{"rocm-smi", "amd/rocm-smi-json-rx6600xt-marimo-test.txt", func(t *testing.T, r Report) {
			if r.Capacity.Coefficient != 0.068 {
				t.Errorf("capacity %+v", r.Capacity)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.kind+" "+filepath.Base(c.file), func(t *testing.T) {
			r, err := ParseSource(c.kind, bytes.NewReader(fx(t, c.file)), SourceOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatal(err)
			}
			if c.check != nil {
				c.check(t, r)
			}
		})
	}
	for _, k := range []string{"nope", "tgi-loads", "-loads"} {
		if _, err := ParseSource(k, strings.NewReader(""), SourceOptions{}); !errors.Is(err, ErrUnknownKind) {
			t.Errorf("unknown kind %q: %v", k, err)
		}
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSampleLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	metrics := "vllm:num_requests_running{model_name=\"m\"} 7\nvllm:num_requests_waiting{model_name=\"m\"} 1\nvllm:gpu_cache_usage_perc{model_name=\"m\"} 0.5\n"
	apps := fx(t, "rayserve/api-serve-applications-ray-docs.json")
	dcgm := "DCGM_FI_DEV_GPU_UTIL{gpu=\"0\",UUID=\"a\",modelName=\"NVIDIA A10\"} 40\nDCGM_FI_DEV_GPU_UTIL{gpu=\"1\",UUID=\"b\",modelName=\"NVIDIA A10\"} 60\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			_, _ = w.Write([]byte(metrics))
		case "/dcgm":
			_, _ = w.Write([]byte(dcgm))
		case "/api/serve/applications/":
			_, _ = w.Write(apps)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	stat := writeFile(t, dir, "stat", "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 1 1 1\ncpu1 1 1 1 1\n")
	p, err := New(Config{Engine: "vllm", MetricsURL: srv.URL + "/metrics", RayDashboard: srv.URL, DCGMURL: srv.URL + "/dcgm", NoTools: true,
		ProcStat: stat, CPUMax: filepath.Join(dir, "missing"), CPUInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Concurrency.String() != "7" || r.Engine.Load.KVCache.String() != "0.5" {
		t.Errorf("engine %+v concurrency %s", r.Engine, r.Concurrency)
	}
	if r.Engine.Ray == nil || len(r.Engine.Ray.Routes) != 1 {
		t.Errorf("ray = %+v", r.Engine.Ray)
	}
	if r.Capacity.Units != 2 || r.Capacity.Coefficient != 0.4 || r.Utilization.String() != "0.5" {
		t.Errorf("capacity %+v util %s", r.Capacity, r.Utilization)
	}
	if r.CPU == nil || r.CPU.Count != 2 || r.CPU.Utilization.IsKnown() {
		t.Errorf("cpu %+v (identical stat samples give unknown utilisation)", r.CPU)
	}
	// Second sample: CPU advanced; no accelerator URL now → CPU capacity.
	writeFile(t, dir, "stat", "cpu  200 0 100 900 0 0 0 0 0 0\ncpu0 1 1 1 1\ncpu1 1 1 1 1\n")
	writeFile(t, dir, "cpu.max", "100000 100000\n")
	p2, _ := New(Config{ProcStat: stat, CPUMax: filepath.Join(dir, "cpu.max"), NoTools: true, CPUInterval: time.Millisecond})
	p2.lastCPU = p.lastCPU
	r, err = p2.Sample(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Utilization.String() != "0.5" || r.Capacity.Model != "cpu" || r.Capacity.Units != 1 {
		t.Errorf("cpu-only: util %s capacity %+v", r.Utilization, r.Capacity)
	}
}

func TestSampleEngineDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("vllm:num_requests_running 1")) // cut: no final newline
	}))
	defer srv.Close()
	dir := t.TempDir()
	stat := writeFile(t, dir, "stat", "cpu  1 0 1 8 0 0 0 0 0 0\n")
	r, err := Sample(ctx, Config{Engine: "vllm", MetricsURL: srv.URL, NoTools: true, ProcStat: stat, CPUInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Engine.Load != nil || !strings.Contains(r.Engine.Error, "truncated") || r.Concurrency.IsKnown() {
		t.Errorf("engine = %+v", r.Engine)
	}
	if _, err := New(Config{Engine: "vllm"}); !errors.Is(err, ErrConfig) {
		t.Errorf("engine without url: %v", err)
	}
	if _, err := New(Config{Engine: "nope", MetricsURL: "http://x"}); !errors.Is(err, engines.ErrUnknownEngine) {
		t.Errorf("unknown engine: %v", err)
	}
}
