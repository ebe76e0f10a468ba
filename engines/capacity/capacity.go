package capacity

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unicode"

	"github.com/switchyard-dev/switchyard/internal/yamlerr"
)

//go:embed coefficients.yaml
var builtin []byte

// ErrInvalid wraps table validation errors.
var ErrInvalid = errors.New("capacity: invalid table")

// Entry is one card (or the CPU core).
type Entry struct {
	Name        string   `yaml:"name" json:"name"`
	Vendor      string   `yaml:"vendor" json:"vendor"`
	Match       []string `yaml:"match" json:"-"`
	TFLOPS      float64  `yaml:"tflops" json:"tflops,omitempty"`
	Coefficient float64  `yaml:"coefficient" json:"coefficient"`
	Basis       string   `yaml:"basis" json:"basis"`
	norm        []string
}

// Table is a coefficient table.
type Table struct {
	Reference string  `yaml:"reference"`
	Basis     string  `yaml:"basis"`
	Default   float64 `yaml:"default"`
	CPUCore   Entry   `yaml:"cpu_core"`
	Cards     []Entry `yaml:"cards"`
}

// Match is the result of a lookup.
type Match struct {
	// Model is the name looked up.
	Model string `json:"model"`
	// Entry is the matched entry; for an unknown model its Name is "" and
	// Coefficient the table default.
	Entry Entry `json:"entry"`
	// Known is false when no entry matched.
	Known bool `json:"known"`
	// Warning explains an unknown model; log it.
	Warning string `json:"warning,omitempty"`
}

// Coefficient returns the matched or default coefficient.
func (m Match) Coefficient() float64 { return m.Entry.Coefficient }

var (
	defOnce sync.Once
	defTab  *Table
	defErr  error
)

// Default returns the embedded table.
func Default() *Table {
	defOnce.Do(func() { defTab, defErr = Parse(builtin) })
	if defErr != nil {
		panic("BUG: capacity: embedded coefficients.yaml: " + defErr.Error())
	}
	return defTab
}

// Parse parses and validates a table.
func Parse(b []byte) (*Table, error) {
	var t Table
	if err := yamlerr.DecodeStrict(b, &t); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// Load reads a user table from path and returns it merged over the
// embedded one: its cards are tried first, and its default and cpu_core
// replace the embedded ones when set.
func Load(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("capacity: %w", err)
	}
	var over Table
	if err := yamlerr.DecodeStrict(b, &over); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, path, err)
	}
	base := Default()
	t := Table{Reference: base.Reference, Basis: base.Basis, Default: base.Default, CPUCore: base.CPUCore}
	if over.Reference != "" {
		t.Reference = over.Reference
	}
	if over.Basis != "" {
		t.Basis = over.Basis
	}
	if over.Default != 0 {
		t.Default = over.Default
	}
	if over.CPUCore.Coefficient != 0 {
		t.CPUCore = over.CPUCore
	}
	t.Cards = append(append([]Entry{}, over.Cards...), base.Cards...)
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &t, nil
}

// Validate checks every coefficient is positive and every card has a
// name and a match string, and prepares matching.
func (t *Table) Validate() error {
	if t.Default <= 0 {
		return fmt.Errorf("%w: default must be > 0, got %g", ErrInvalid, t.Default)
	}
	if t.CPUCore.Coefficient <= 0 {
		return fmt.Errorf("%w: cpu_core.coefficient must be > 0", ErrInvalid)
	}
	for i := range t.Cards {
		e := &t.Cards[i]
		if e.Name == "" || e.Coefficient <= 0 {
			return fmt.Errorf("%w: cards[%d] (%q): name and coefficient > 0 required", ErrInvalid, i, e.Name)
		}
		if len(e.Match) == 0 {
			e.Match = []string{e.Name}
		}
		e.norm = e.norm[:0]
		for _, m := range e.Match {
			n := Normalize(m)
			if n == "" {
				return fmt.Errorf("%w: cards[%d] (%q): match %q is empty after normalising", ErrInvalid, i, e.Name, m)
			}
			e.norm = append(e.norm, n)
		}
	}
	return nil
}

var vendorWords = []string{"nvidia", "tesla", "geforce", "amd", "instinct", "radeon", "huawei", "ascend"}

// Normalize lower-cases s, drops vendor words and keeps letters and
// digits only: "NVIDIA H100 80GB HBM3" → "h10080gbhbm3", "Ascend910B3" →
// "910b3", "AMD Instinct MI300X" → "mi300x".
func Normalize(s string) string {
	s = strings.ToLower(s)
	for _, w := range vendorWords {
		s = strings.ReplaceAll(s, w, " ")
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Lookup finds the entry for a reported model name: the longest match
// string contained in the normalised name wins (so "A10G" beats "A10"
// and "910B3" beats "910"). Unknown models get the default coefficient
// and a Warning.
func (t *Table) Lookup(model string) Match {
	n := Normalize(model)
	best, bestLen := -1, 0
	if n != "" {
		for i, e := range t.Cards {
			for _, m := range e.norm {
				if len(m) > bestLen && strings.Contains(n, m) {
					best, bestLen = i, len(m)
				}
			}
		}
	}
	if best < 0 {
		return Match{Model: model, Entry: Entry{Coefficient: t.Default, Basis: "default for unknown models"},
			Warning: fmt.Sprintf("capacity: unknown card model %q: using default coefficient %g (add it to a capacity file)", model, t.Default)}
	}
	return Match{Model: model, Entry: t.Cards[best], Known: true}
}

// Capacity is a node's capacity term.
type Capacity struct {
	// Value is Units × Coefficient.
	Value float64 `json:"value"`
	// Units is the card count, or CPU cores.
	Units float64 `json:"units"`
	// Coefficient per unit, and what it is based on.
	Coefficient float64 `json:"coefficient"`
	Basis       string  `json:"basis"`
	// Model is the card model ("cpu" for cores).
	Model string `json:"model"`
	// Warning is set when the model was unknown.
	Warning string `json:"warning,omitempty"`
}

// ForCards returns the capacity of n cards of model.
func (t *Table) ForCards(model string, n float64) Capacity {
	m := t.Lookup(model)
	return Capacity{Value: n * m.Coefficient(), Units: n, Coefficient: m.Coefficient(), Basis: m.Entry.Basis, Model: model, Warning: m.Warning}
}

// CPU returns the capacity of n CPU cores.
func (t *Table) CPU(cores float64) Capacity {
	return Capacity{Value: cores * t.CPUCore.Coefficient, Units: cores, Coefficient: t.CPUCore.Coefficient, Basis: t.CPUCore.Basis, Model: "cpu"}
}
