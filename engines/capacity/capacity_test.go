package capacity

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestLookupVendorSpellings(t *testing.T) {
	tab := Default()
	cases := []struct{ model, want string }{
		{"NVIDIA H100 80GB HBM3", "H100 SXM"},
		{"NVIDIA H100 PCIe", "H100 PCIe"},
		{"H100", "H100 SXM"},
		{"NVIDIA H200", "H200"},
		{"NVIDIA A100-SXM4-80GB", "A100"},
		{"NVIDIA A10", "A10"},
		{"NVIDIA A10G", "A10G"},
		{"NVIDIA L40S", "L40S"},
		{"NVIDIA L4", "L4"},
		{"Tesla T4", "T4"},
		{"Tesla V100-SXM2-32GB", "V100"},
		{"Ascend910B3", "Ascend 910B3"},
		{"910B", "Ascend 910B"},
		{"910B3", "Ascend 910B3"},
		{"910Awn-Ascend-V1", "Ascend 910A"},
		{"Ascend910", "Ascend 910 A3 die"},
		{"310P3", "Ascend 310P"},
		{"Ascend950DT", "Ascend 950"},
		{"Ascend950PR", "Ascend 950"},
		{"AMD Instinct MI300X", "MI300X"},
		{"AMD Instinct MI250X/MI250", "MI250X"},
		{"MI250", "MI250"},
		{"AMD Radeon RX 6600 XT", "RX 6600 XT"},
	}
	for _, c := range cases {
		t.Run(c.model, func(t *testing.T) {
			m := tab.Lookup(c.model)
			if !m.Known || m.Entry.Name != c.want || m.Warning != "" {
				t.Errorf("Lookup(%q) = %q known=%v, want %q", c.model, m.Entry.Name, m.Known, c.want)
			}
			if m.Coefficient() <= 0 || m.Entry.Basis == "" {
				t.Errorf("entry %+v lacks coefficient or basis", m.Entry)
			}
		})
	}
}

func TestUnknownModelWarnsAndDefaults(t *testing.T) {
	tab := Default()
	for _, model := range []string{"", "Matrox Millennium", "   "} {
		m := tab.Lookup(model)
		if m.Known || m.Coefficient() != tab.Default || !strings.Contains(m.Warning, "unknown card model") {
			t.Errorf("Lookup(%q) = %+v", model, m)
		}
	}
	c := tab.ForCards("Matrox Millennium", 4)
	if c.Value != 4*tab.Default || c.Warning == "" {
		t.Errorf("capacity = %+v", c)
	}
}

func TestRelativeOrder(t *testing.T) {
	tab := Default()
	h100 := tab.Lookup("H100").Coefficient()
	a100 := tab.Lookup("A100").Coefficient()
	a10 := tab.Lookup("A10").Coefficient()
	if a100 != 1 || !(h100 > 3*a100) || !(a10 < a100) {
		t.Errorf("h100 %g a100 %g a10 %g", h100, a100, a10)
	}
	if c := tab.CPU(8); c.Value <= 0 || c.Value >= a10 {
		t.Errorf("8 cores = %+v", c)
	}
}

func TestLoadOverride(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "cap.yaml")
	if err := os.WriteFile(p, []byte("default: 0.5\ncards:\n  - {name: MyChip, vendor: acme, match: [mychip], coefficient: 2.5, basis: measured}\n  - {name: A10 measured, vendor: nvidia, match: [a10], coefficient: 0.6, basis: measured tokens/s}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tab, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if m := tab.Lookup("ACME MyChip v2"); m.Coefficient() != 2.5 {
		t.Errorf("mychip = %+v", m)
	}
	if m := tab.Lookup("NVIDIA A10"); m.Coefficient() != 0.6 {
		t.Errorf("override a10 = %+v", m)
	}
	if m := tab.Lookup("NVIDIA H100"); m.Coefficient() != 3.17 {
		t.Errorf("builtin h100 kept = %+v", m)
	}
	if m := tab.Lookup("unknown"); m.Coefficient() != 0.5 {
		t.Errorf("default = %+v", m)
	}
	bad := filepath.Join(dir, "bad.yaml")
	for _, body := range []string{"cards:\n  - {name: X, coefficient: 0}\n", "cards: [\n", "colour: red\n"} {
		_ = os.WriteFile(bad, []byte(body), 0o600)
		if _, err := Load(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: err = %v", body, err)
		}
	}
}

// TestErrorsSpeakYAML: a table's decoding errors name the line and the
// field in words, without Go type names.
func TestErrorsSpeakYAML(t *testing.T) {
	goWords := regexp.MustCompile(`\bcapacity\.[A-Z]\w*|\[\]|!!(int|str|seq|map)|float64|unmarshal|not found in type`)
	for _, tc := range []struct{ yaml, want string }{
		{"cards:\n  - {name: X, coeficient: 2}\n", `line 2: cards[0]: unknown field "coeficient" (known: basis, coefficient, match, name, tflops, vendor)`},
		{"cards:\n  - {name: X, coefficient: lots}\n", `line 2: cards[0].coefficient: want a number, got "lots"`},
		{"default: x\n", `line 1: default: want a number, got "x"`},
		{"cards: 3\n", `line 1: cards: want a list, e.g. [3], got "3"`},
	} {
		_, err := Parse([]byte(tc.yaml))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v\nwant ErrInvalid containing %q", tc.yaml, err, tc.want)
			continue
		}
		if m := goWords.FindString(err.Error()); m != "" {
			t.Errorf("error %q shows Go's words: %q", err, m)
		}
	}
}
