package amd

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/telemetry"
)

func fxa(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/fixtures/amd/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseAMDSMIShapes(t *testing.T) {
	// The newer {"gpu_data": [...]} shape.
	rep, err := ParseAMDSMI(bytes.NewReader(fxa(t, "amd-smi-metric-gpu-data-rx7800xt-derived.json")))
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Cards[0]
	if rep.Count != 1 || rep.Source != "amd-smi" || rep.Model != "AMD Radeon RX 7800 XT" || c.Utilization.String() != "0.02" ||
		c.MemoryUsed.String() != "1.5276703744e+10" || c.MemoryTotal.String() != "1.7163091968e+10" {
		t.Errorf("gpu_data shape: %+v", rep)
	}
	// The older plain-array shape, here with only the power block.
	rep, err = ParseAMDSMI(bytes.NewReader(fxa(t, "amd-smi-metric-power-json-amdsmi-changelog.json")))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != 1 || rep.Cards[0].Utilization.IsKnown() || rep.Cards[0].MemoryTotal.IsKnown() || rep.Utilization.IsKnown() {
		t.Errorf("plain array without usage: %+v", rep)
	}
	// Both shapes, several GPUs out of order, bare numbers, N/A, a warning line.
	for _, text := range []string{
		"WARNING: something\n\n" + `[{"gpu": 1, "usage": {"gfx_activity": {"value": 42, "unit": "%"}}, "mem_usage": {"used_vram": {"value": 1, "unit": "GB"}, "total_vram": {"value": 4, "unit": "GB"}}}, {"gpu": 0, "usage": {"gfx_activity": "N/A"}, "mem_usage": "N/A"}]`,
		`{"gpu_data": [{"gpu": 0, "usage": {"gfx_activity": "N/A"}}, {"gpu": 1, "usage": {"gfx_activity": 42}, "mem_usage": {"used_vram": 1024, "total_vram": 4096}}]}`,
	} {
		rep, err := ParseAMDSMI(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Count != 2 || rep.Cards[0].Index != 0 || rep.Cards[0].Utilization.IsKnown() || rep.Cards[1].Utilization.String() != "0.42" ||
			rep.Cards[1].MemoryTotal.String() != "4.294967296e+09" || rep.Utilization.String() != "0.42" {
			t.Errorf("%s: %+v", text[:20], rep)
		}
	}
}

func TestParseAMDSMINames(t *testing.T) {
	names, err := ParseAMDSMINames(strings.NewReader(`{"gpu_data": [{"gpu": 0, "asic": {"market_name": "AMD Instinct MI300X"}}, {"gpu": 1, "asic": {"market_name": "N/A"}}]}`))
	if err != nil || names[0] != "AMD Instinct MI300X" || names[1] != "" {
		t.Errorf("names %v err %v", names, err)
	}
}

func TestParseAMDSMIErrors(t *testing.T) {
	full := string(fxa(t, "amd-smi-metric-gpu-data-rx7800xt-derived.json"))
	cases := []struct{ name, text, mention string }{
		{"empty", "", "no JSON"},
		{"only a warning", "WARNING: no devices\n", "no JSON"},
		{"cut", full[:len(full)/2], "truncated"},
		{"object without gpu_data", `{"gpus": []}`, `"gpu_data"`},
		{"not a list", "{\"gpu_data\": 3}", `"gpu_data"`},
		{"item not an object", `[1]`, "gpu_data[0]: want an object"},
		{"bad utilisation", `[{"gpu": 0, "usage": {"gfx_activity": {"value": "lots"}}}]`, "gpu_data[0].usage.gfx_activity: want a number"},
		{"over 100", `[{"gpu": 0, "usage": {"gfx_activity": 300}}]`, "outside"},
		{"bad unit", `[{"gpu": 0, "mem_usage": {"total_vram": {"value": 1, "unit": "furlong"}}}]`, "not a memory size"},
		{"no gpus", `{"gpu_data": []}`, "no devices"},
		{"trailing", `[] []`, "after the JSON"},
		{"trailing bracket", `[{"gpu": 0}]]`, "after the JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseAMDSMI(strings.NewReader(c.text))
			if err == nil || (!errors.Is(err, engines.ErrMalformed) && !errors.Is(err, telemetry.ErrNoDevices)) {
				t.Fatalf("err = %v", err)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("err %q does not mention %q", err, c.mention)
			}
		})
	}
}

func FuzzParseAMDSMI(f *testing.F) {
	f.Add(fxa(f, "amd-smi-metric-gpu-data-rx7800xt-derived.json"))
	f.Add(fxa(f, "amd-smi-metric-power-json-amdsmi-changelog.json"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		rep, err := ParseAMDSMI(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, engines.ErrMalformed) && !errors.Is(err, telemetry.ErrNoDevices) {
				t.Fatalf("untyped: %v", err)
			}
			return
		}
		if len(rep.Cards) == 0 {
			t.Fatal("success without cards")
		}
		for _, c := range rep.Cards {
			if u, ok := c.Utilization.Get(); ok && (u < 0 || u > 1.0001) {
				t.Fatalf("util %v", u)
			}
			if m, ok := c.MemoryUsed.Get(); ok && m < 0 {
				t.Fatalf("memory %v", m)
			}
		}
	})
}
