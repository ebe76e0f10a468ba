package sim

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/engines/capacity"
)

// Profile is how a simulated node performs.
//
// Continuous batching is modelled as Slots requests decoding at once,
// each at PerToken per output token after Prefill, independent of how
// many slots are busy; requests beyond Slots wait in a queue of at most
// QueueDepth, and beyond that are refused (429). A card with twice the
// coefficient gets twice the slots at the same PerToken, so it sustains
// about twice the throughput at the same latency.
type Profile struct {
	// Name is the profile name ("h100", "a10", "910b", "cpu").
	Name string `yaml:"name" json:"name"`
	// Card is the accelerator model as a telemetry tool reports it.
	Card string `yaml:"card" json:"card"`
	// Cards is the number of cards (CPU cores for "cpu").
	Cards int `yaml:"cards" json:"cards"`
	// Coefficient is the per-card coefficient from the capacity table.
	Coefficient float64 `yaml:"coefficient" json:"coefficient"`
	// SlotsPerCoefficient converts capacity into batch slots (default 8:
	// an A100-equivalent card runs 8 sequences at PerToken).
	SlotsPerCoefficient float64 `yaml:"slots_per_coefficient" json:"slots_per_coefficient"`
	// Slots overrides the computed slot count when > 0.
	Slots int `yaml:"slots" json:"slots"`
	// QueueDepth bounds waiting requests (default 4 × slots); 0 after
	// defaults means no queue. Set -1 for "no queue".
	QueueDepth int `yaml:"queue_depth" json:"queue_depth"`
	// Prefill is the fixed part of the time to first token (default
	// 30ms).
	Prefill time.Duration `yaml:"prefill" json:"prefill"`
	// PrefillPerToken is added to Prefill per prompt token not found in
	// the prefix cache (default 0: prefill independent of the prompt).
	PrefillPerToken time.Duration `yaml:"prefill_per_token" json:"prefill_per_token"`
	// PerToken is the decode time per output token (default 5ms).
	PerToken time.Duration `yaml:"per_token" json:"per_token"`
	// MaxTokens is the output length when a request does not set one
	// (default 16).
	MaxTokens int `yaml:"max_tokens" json:"max_tokens"`
}

// Capacity is Cards × Coefficient (CPU cores × core coefficient for cpu).
func (p Profile) Capacity() float64 { return float64(p.Cards) * p.Coefficient }

// SlotCount is the number of concurrent sequences.
func (p Profile) SlotCount() int {
	if p.Slots > 0 {
		return p.Slots
	}
	n := int(math.Round(p.SlotsPerCoefficient * p.Capacity()))
	if n < 1 {
		n = 1
	}
	return n
}

var builtinProfiles = map[string]struct {
	card  string
	cards int
	cpu   bool
}{
	"h100": {card: "NVIDIA H100 80GB HBM3", cards: 1},
	"a10":  {card: "NVIDIA A10", cards: 1},
	"910b": {card: "Ascend910B3", cards: 1},
	"cpu":  {card: "cpu", cards: 8, cpu: true},
}

// ProfileNames lists the built-in profiles.
func ProfileNames() []string {
	out := make([]string, 0, len(builtinProfiles))
	for k := range builtinProfiles {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// LookupProfile returns a built-in profile with its coefficient taken
// from the capacity table (tab nil: capacity.Default()), so the sim and
// the agent's capacity term agree.
func LookupProfile(name string, tab *capacity.Table) (Profile, error) {
	b, ok := builtinProfiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("sim: unknown profile %q (known: %s)", name, strings.Join(ProfileNames(), ", "))
	}
	if tab == nil {
		tab = capacity.Default()
	}
	p := Profile{Name: name, Card: b.card, Cards: b.cards}
	if b.cpu {
		p.Coefficient = tab.CPUCore.Coefficient
	} else {
		p.Coefficient = tab.Lookup(b.card).Coefficient()
	}
	p.applyDefaults()
	return p, nil
}

func (p *Profile) applyDefaults() {
	if p.Cards <= 0 {
		p.Cards = 1
	}
	if p.Coefficient <= 0 {
		p.Coefficient = 1
	}
	if p.SlotsPerCoefficient <= 0 {
		p.SlotsPerCoefficient = 8
	}
	if p.Prefill <= 0 {
		p.Prefill = 30 * time.Millisecond
	}
	if p.PerToken <= 0 {
		p.PerToken = 5 * time.Millisecond
	}
	if p.MaxTokens <= 0 {
		p.MaxTokens = 16
	}
	switch {
	case p.QueueDepth < 0:
		p.QueueDepth = 0
	case p.QueueDepth == 0:
		p.QueueDepth = 4 * p.SlotCount()
	}
}
