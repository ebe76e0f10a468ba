package split

import (
	"fmt"
	"math"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard/gateway/reqkey"
)

// Defaults for the Config fields; see DefaultConfig.
const (
	DefaultBuckets        = 10000
	MaxBuckets            = 1 << 20
	DefaultOverrideHeader = "X-Switchyard-Variant"
	DefaultVariantHeader  = "X-Switchyard-Variant"
)

// Config describes one route's split. Process it in the order parse,
// defaults, Validate (New does the last two). Its zero value plus Variants
// is usable; each field states its default. A Config is not changed after
// New; a new config builds a new Splitter.
type Config struct {
	// Variants lists the variants and their weights, in bucket-layout order
	// (required, at least one, names unique, weights >= 0 and not all 0).
	// In YAML either a mapping in document order
	//
	//	variants: {model-a: 90, model-b: 10}
	//
	// or a list of {name, weight, target}. Keep the order stable across
	// reloads: the order decides which buckets each variant owns.
	Variants Variants `yaml:"variants"`
	// Key says where the sticky key comes from (default: client address).
	Key KeyConfig `yaml:"key"`
	// Buckets is the number of fixed hash buckets, 1..MaxBuckets (0 means
	// the default DefaultBuckets = 10,000, so weights resolve to 0.01 %).
	// Changing it reshuffles every user.
	Buckets int `yaml:"buckets"`
	// Salt is mixed into the hash so that two experiments over the same
	// keys are independent (default ""). Changing it reshuffles every user.
	Salt string `yaml:"salt"`
	// OverrideHeader is the request header that forces a variant by name
	// (default DefaultOverrideHeader; "-" disables overrides).
	OverrideHeader string `yaml:"override_header"`
	// Overridable lists the variants the override header may force
	// (default: all of them). Each must name a variant.
	Overridable []string `yaml:"overridable"`
	// VariantHeader is the response header the gateway sets to the name of
	// the variant that served (default DefaultVariantHeader).
	VariantHeader string `yaml:"variant_header"`
}

// KeyConfig says where the sticky key comes from: Header, then Cookie,
// then the client IP address; a request with none of them (no IP, e.g. an
// in-memory listener) is assigned at random. See reqkey.Config.
type KeyConfig = reqkey.Config

// Variant is one arm of the split.
type Variant struct {
	// Name identifies the variant in the override and response headers
	// and in metrics (required).
	Name string `yaml:"name"`
	// Weight is the variant's share relative to the sum of all weights
	// (>= 0; 0 = receives no hashed traffic, but can still be forced).
	Weight float64 `yaml:"weight"`
	// Target is the app or model the gateway routes this variant to
	// (default: Name).
	Target string `yaml:"target"`
}

// Variants is an ordered list of variants. It decodes from a YAML mapping
// (name: weight, in document order) or from a YAML sequence of Variant.
type Variants []Variant

// UnmarshalYAML implements yaml.Unmarshaler.
func (v *Variants) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		out := make(Variants, 0, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, w := n.Content[i], n.Content[i+1]
			var name string
			var weight float64
			// The decoder's own errors name the line and value.
			if err := k.Decode(&name); err != nil {
				return err
			}
			if err := w.Decode(&weight); err != nil {
				return err
			}
			out = append(out, Variant{Name: name, Weight: weight})
		}
		*v = out
		return nil
	case yaml.SequenceNode:
		out := make(Variants, len(n.Content))
		for i, e := range n.Content {
			if err := reqkey.StrictKeys(e, Variant{}, fmt.Sprintf("split: variants[%d]: ", i)); err != nil {
				return err
			}
			if err := e.Decode(&out[i]); err != nil {
				return fmt.Errorf("split: variants[%d]: line %d: %w", i, e.Line, err)
			}
		}
		*v = out
		return nil
	default:
		return fmt.Errorf("split: variants: line %d: want a mapping {name: weight} or a list of {name, weight, target}", n.Line)
	}
}

// UnmarshalYAML implements yaml.Unmarshaler: it starts from DefaultConfig so
// omitted fields keep their defaults, and refuses unknown fields.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	if err := reqkey.StrictKeys(n, Config{}, "split: "); err != nil {
		return err
	}
	type plain Config
	p := plain(DefaultConfig())
	if err := n.Decode(&p); err != nil {
		return reqkey.WithPrefix("split: ", err)
	}
	*c = Config(p)
	return nil
}

// DefaultConfig returns a Config with every default filled in and no
// variants.
func DefaultConfig() Config {
	return Config{
		Buckets:        DefaultBuckets,
		OverrideHeader: DefaultOverrideHeader,
		VariantHeader:  DefaultVariantHeader,
	}
}

// withDefaults fills the zero-valued optional fields, so a Config built in
// Go from a literal works too.
func (c Config) withDefaults() Config {
	if c.Buckets == 0 {
		c.Buckets = DefaultBuckets
	}
	if c.OverrideHeader == "" {
		c.OverrideHeader = DefaultOverrideHeader
	}
	if c.VariantHeader == "" {
		c.VariantHeader = DefaultVariantHeader
	}
	c.Variants = append(Variants(nil), c.Variants...)
	for i := range c.Variants {
		if c.Variants[i].Target == "" {
			c.Variants[i].Target = c.Variants[i].Name
		}
	}
	return c
}

// Validate checks the Config and returns an error naming the first bad
// field; every error wraps ErrInvalidConfig. Zero optional fields mean
// their default. It does not know which apps
// exist; use ValidateTargets for that.
func (c *Config) Validate() error {
	if len(c.Variants) == 0 {
		return fmt.Errorf("%w: variants: empty, need at least one variant", ErrInvalidConfig)
	}
	seen := make(map[string]int, len(c.Variants))
	var sum float64
	for i, v := range c.Variants {
		if v.Name == "" {
			return fmt.Errorf("%w: variants[%d].name: empty", ErrInvalidConfig, i)
		}
		if j, dup := seen[v.Name]; dup {
			return fmt.Errorf("%w: variants[%d].name: duplicate variant %q (also variants[%d])", ErrInvalidConfig, i, v.Name, j)
		}
		seen[v.Name] = i
		if math.IsNaN(v.Weight) || math.IsInf(v.Weight, 0) {
			return fmt.Errorf("%w: variants[%d] (%q).weight: must be a finite number, got %v", ErrInvalidConfig, i, v.Name, v.Weight)
		}
		if v.Weight < 0 {
			return fmt.Errorf("%w: variants[%d] (%q).weight: must be >= 0, got %v", ErrInvalidConfig, i, v.Name, v.Weight)
		}
		sum += v.Weight
	}
	if sum <= 0 || math.IsInf(sum, 0) {
		return fmt.Errorf("%w: variants: weights sum to %v, need a positive finite sum", ErrInvalidConfig, sum)
	}
	if c.Buckets < 0 || c.Buckets > MaxBuckets {
		return fmt.Errorf("%w: buckets: must be in 0..%d (0 = default %d), got %d", ErrInvalidConfig, MaxBuckets, DefaultBuckets, c.Buckets)
	}
	for i, name := range c.Overridable {
		if _, ok := seen[name]; !ok {
			return fmt.Errorf("%w: overridable[%d]: unknown variant %q (variants are %s)", ErrInvalidConfig, i, name, c.names())
		}
	}
	return nil
}

// ValidateTargets checks every variant's Target (default: its Name) with
// known, typically "is this an app or model in the routing config".
func (c *Config) ValidateTargets(known func(target string) bool) error {
	for i, v := range c.Variants {
		t := v.Target
		if t == "" {
			t = v.Name
		}
		if !known(t) {
			return fmt.Errorf("%w: variants[%d] (%q).target: unknown app or model %q", ErrInvalidConfig, i, v.Name, t)
		}
	}
	return nil
}

func (c *Config) names() string {
	s := "["
	for i, v := range c.Variants {
		if i > 0 {
			s += " "
		}
		s += v.Name
	}
	return s + "]"
}
