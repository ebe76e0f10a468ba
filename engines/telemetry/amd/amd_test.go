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

func fx(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/fixtures/amd/rocm-smi-json-rx6600xt-marimo-test.txt")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseSMIFixture(t *testing.T) {
	rep, err := ParseSMI(bytes.NewReader(fx(t)))
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Cards[0]
	if rep.Count != 1 || rep.Model != "AMD Radeon RX 6600 XT" || c.Utilization.String() != "0" || c.MemoryTotal.String() != "8.573157376e+09" || c.MemoryUsed.String() != "1.069268992e+09" {
		t.Errorf("report = %+v", rep)
	}
}

func TestParseSMIMulti(t *testing.T) {
	text := `{"card1": {"GPU use (%)": "50", "VRAM Total Memory (B)": "206141652992", "VRAM Total Used Memory (B)": "1000", "Card series": "AMD Instinct MI300X OAM"}, "card0": {"GPU use (%)": "N/A", "Card series": "AMD Instinct MI300X OAM"}, "system": {"Driver version": "6.7"}}`
	rep, err := ParseSMI(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != 2 || rep.Cards[0].Index != 0 || rep.Cards[0].Utilization.IsKnown() || rep.Cards[1].Utilization.String() != "0.5" || rep.Utilization.String() != "0.5" {
		t.Errorf("report = %+v", rep)
	}
}

func TestParseSMIErrors(t *testing.T) {
	full := string(fx(t))
	cases := []struct{ name, text, mention string }{
		{"only warning", "WARNING: no devices\n", "no JSON"},
		{"truncated", full[:len(full)-30], "line 3"},
		{"bad number", `{"card0": {"GPU use (%)": "lots"}}`, "card0"},
		{"over 100", `{"card0": {"GPU use (%)": "300"}}`, "outside"},
		{"no cards", `{"system": {}}`, "no devices"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSMI(strings.NewReader(c.text))
			if err == nil || (!errors.Is(err, engines.ErrMalformed) && !errors.Is(err, telemetry.ErrNoDevices)) {
				t.Fatalf("err = %v", err)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("err %q does not mention %q", err, c.mention)
			}
		})
	}
}

func FuzzParseSMI(f *testing.F) {
	f.Add(fx(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		rep, err := ParseSMI(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, engines.ErrMalformed) && !errors.Is(err, telemetry.ErrNoDevices) {
				t.Fatalf("untyped: %v", err)
			}
			return
		}
		for _, c := range rep.Cards {
			if u, ok := c.Utilization.Get(); ok && (u < 0 || u > 1.0001) {
				t.Fatalf("util %v", u)
			}
		}
	})
}
