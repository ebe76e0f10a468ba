package nvidia

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/telemetry"
)

func fx(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/fixtures/nvidia/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSMIHeaderFixture(t *testing.T) {
	rep, err := ParseSMI(bytes.NewReader(fx(t, "nvidia-smi-query-gpu-csv-h100-load.csv")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != 1 || rep.Model != "NVIDIA H100 80GB HBM3" {
		t.Fatalf("report = %+v", rep)
	}
	c := rep.Cards[0]
	if c.Utilization.String() != "1" || c.MemoryUsed.String() != "2.0780679168e+10" || c.MemoryTotal.String() != "8.5520809984e+10" || c.ID != "GPU-00000000-0000-0000-0000-000000000000" {
		t.Errorf("card = util %s used %s total %s id %s", c.Utilization, c.MemoryUsed, c.MemoryTotal, c.ID)
	}
}

func TestParseSMINoHeader(t *testing.T) {
	text := "0, NVIDIA A10G, GPU-a, 37, 1024, 23028\n1, NVIDIA A10G, GPU-b, [N/A], 0, 23028\n"
	rep, err := ParseSMI(strings.NewReader(text), DefaultFields)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != 2 || rep.Model != "NVIDIA A10G" || rep.Cards[0].Utilization.String() != "0.37" || rep.Cards[1].Utilization.IsKnown() {
		t.Fatalf("report = %+v", rep)
	}
	if rep.Utilization.String() != "0.37" {
		t.Errorf("mean util = %s (unknown card must not count as 0)", rep.Utilization)
	}
	if rep.Cards[0].MemoryUsed.String() != "1.073741824e+09" {
		t.Errorf("used = %s", rep.Cards[0].MemoryUsed)
	}
}

func TestParseSMINoUnitsWithHeader(t *testing.T) {
	rep, err := ParseSMI(strings.NewReader("index, name, utilization.gpu [%], memory.used [MiB], memory.total [MiB]\n0, NVIDIA L4, 12, 100, 23034\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Cards[0]; c.Utilization.String() != "0.12" || c.MemoryTotal.String() != "2.4152899584e+10" {
		t.Errorf("card = %+v", c)
	}
}

func TestParseSMIErrors(t *testing.T) {
	full := fx(t, "nvidia-smi-query-gpu-csv-h100-load.csv")
	cases := []struct {
		name, text string
		fields     []string
		mention    string
	}{
		{"noheader without fields", "0, NVIDIA A10G, GPU-a, 37, 1024, 23028\n", nil, "pass the queried field list"},
		{"short row", "0, NVIDIA A10G, GPU-a\n", DefaultFields, "line 1: 3 fields"},
		{"bad util", "0, NVIDIA A10G, GPU-a, lots, 1024, 23028\n", DefaultFields, "utilization.gpu"},
		{"util over 100", "0, NVIDIA A10G, GPU-a, 250, 1024, 23028\n", DefaultFields, "outside 0..100"},
		{"truncated", string(full[:len(full)-40]), nil, "truncated"},
		{"header only", "name, utilization.gpu [%]\n", nil, "no devices"},
		{"wrong unit", "name, memory.used [MiB]\nA10, 5 GiB\n", nil, "bad number"},
		{"quote", "name\n\"A10\n", nil, "line 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSMI(strings.NewReader(c.text), c.fields)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, engines.ErrMalformed) && !errors.Is(err, telemetry.ErrNoDevices) {
				t.Errorf("untyped: %v", err)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("err %q does not mention %q", err, c.mention)
			}
		})
	}
}

func TestParseDCGMFixtures(t *testing.T) {
	rep, err := ParseDCGM(bytes.NewReader(fx(t, "dcgm-exporter-t4-datadog-fixture.prom")))
	if err != nil {
		t.Fatal(err)
	}
	// The fixture merges three hosts' scrapes (three UUIDs, all gpu="0").
	if rep.Count != 3 || !rep.Mixed {
		t.Fatalf("report = %+v", rep)
	}
	var t4 *telemetry.Card
	for i := range rep.Cards {
		if rep.Cards[i].ID == "GPU-20c56d28-0da5-6d26-a36a-e7af1ce2586e" {
			t4 = &rep.Cards[i]
		}
	}
	if t4 == nil || t4.Model != "Tesla T4" || t4.Utilization.String() != "0" || t4.MemoryUsed.String() != "0" || t4.MemoryTotal.String() != "1.5842934784e+10" {
		t.Fatalf("T4 card = %+v", t4)
	}
	rep, err = ParseDCGM(bytes.NewReader(fx(t, "dcgm-exporter-readme-sample.prom")))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != 1 || rep.Cards[0].Utilization.IsKnown() || rep.Cards[0].MemoryTotal.IsKnown() {
		t.Errorf("readme sample: %+v (values it lacks must be unknown)", rep)
	}
}

func TestParseDCGMPrefersProf(t *testing.T) {
	text := `DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="a",modelName="NVIDIA H100 80GB HBM3"} 100
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="0",UUID="a",modelName="NVIDIA H100 80GB HBM3"} 0.42
DCGM_FI_DEV_GPU_UTIL{gpu="1", UUID="b", modelName="NVIDIA H100 80GB HBM3"} 2147483632
DCGM_FI_PROF_GR_ENGINE_ACTIVE{gpu="1", UUID="b", modelName="NVIDIA H100 80GB HBM3"} 9223372036854775794
`
	rep, err := ParseDCGM(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Cards[0].Utilization.String() != "0.42" || rep.Cards[1].Utilization.IsKnown() {
		t.Errorf("cards = %+v", rep.Cards)
	}
	if _, err := ParseDCGM(strings.NewReader("DCGM_FI_DEV_GPU_UTIL{gpu=\"0\"} 150\n")); !errors.Is(err, engines.ErrMalformed) {
		t.Errorf("150%%: %v", err)
	}
	if _, err := ParseDCGM(strings.NewReader("up 1\n")); !errors.Is(err, telemetry.ErrNoDevices) {
		t.Errorf("no gpu: %v", err)
	}
}

func FuzzParseSMI(f *testing.F) {
	f.Add(fx(f, "nvidia-smi-query-gpu-csv-h100-load.csv"), false)
	f.Add([]byte("0, NVIDIA A10G, GPU-a, 37, 1024, 23028\n"), true)
	f.Fuzz(func(t *testing.T, b []byte, noheader bool) {
		if len(b) > 1<<16 {
			return
		}
		var fields []string
		if noheader {
			fields = DefaultFields
		}
		rep, err := ParseSMI(bytes.NewReader(b), fields)
		if err != nil {
			if !errors.Is(err, engines.ErrMalformed) && !errors.Is(err, telemetry.ErrNoDevices) {
				t.Fatalf("untyped: %v", err)
			}
			return
		}
		check(t, rep)
	})
}

func FuzzParseDCGM(f *testing.F) {
	f.Add(fx(f, "dcgm-exporter-t4-datadog-fixture.prom"))
	f.Add(fx(f, "dcgm-exporter-readme-sample.prom"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		rep, err := ParseDCGM(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, engines.ErrMalformed) && !errors.Is(err, telemetry.ErrNoDevices) {
				t.Fatalf("untyped: %v", err)
			}
			return
		}
		check(t, rep)
	})
}

func check(t *testing.T, rep telemetry.Report) {
	if len(rep.Cards) == 0 {
		t.Fatal("success without cards")
	}
	for _, c := range rep.Cards {
		if u, ok := c.Utilization.Get(); ok && (u < 0 || u > 1.0001) {
			t.Fatalf("util %v", u)
		}
	}
}
