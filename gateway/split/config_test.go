package split_test

import (
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard/gateway/split"
)

func TestValidateRefusesBadConfigs(t *testing.T) {
	v := func(name string, w float64) split.Variant { return split.Variant{Name: name, Weight: w} }
	cases := []struct {
		name string
		cfg  split.Config
		want string // substring of the error; "" = valid
	}{
		{"valid 90/10", split.Config{Variants: split.Variants{v("a", 90), v("b", 10)}}, ""},
		{"zero weight variant ok", split.Config{Variants: split.Variants{v("a", 1), v("b", 0)}}, ""},
		{"weights sum to zero", split.Config{Variants: split.Variants{v("a", 0), v("b", 0)}}, "variants: weights sum to 0"},
		{"negative weight", split.Config{Variants: split.Variants{v("a", 90), v("b", -10)}}, `variants[1] ("b").weight: must be >= 0, got -10`},
		{"empty variants", split.Config{}, "variants: empty"},
		{"duplicate variant", split.Config{Variants: split.Variants{v("a", 1), v("a", 2)}}, `variants[1].name: duplicate variant "a" (also variants[0])`},
		{"empty name", split.Config{Variants: split.Variants{v("", 1)}}, "variants[0].name: empty"},
		{"unknown override variant", split.Config{Variants: split.Variants{v("a", 1), v("b", 1)}, Overridable: []string{"b", "c"}}, `overridable[1]: unknown variant "c" (variants are [a b])`},
		{"buckets negative", split.Config{Variants: split.Variants{v("a", 1)}, Buckets: -1}, "buckets: must be in 0..1048576"},
		{"buckets too many", split.Config{Variants: split.Variants{v("a", 1)}, Buckets: split.MaxBuckets + 1}, "buckets: must be in"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := split.New(tc.cfg); err != nil {
					t.Fatalf("New() = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "split: ") {
				t.Fatalf("Validate() = %q, want it to start with \"split: \" and contain %q", err, tc.want)
			}
			if !errors.Is(err, split.ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			if _, err := split.New(tc.cfg); err == nil {
				t.Fatal("New accepted a config Validate refuses")
			}
		})
	}
}

func TestYAMLForms(t *testing.T) {
	type route struct {
		Name  string        `yaml:"name"`
		Split *split.Config `yaml:"split"`
	}
	cases := []struct {
		name    string
		doc     string
		want    split.Variants
		wantErr string
	}{
		{"mapping keeps document order", "name: chat\nsplit:\n  variants: {model-b: 10, model-a: 90}\n",
			split.Variants{{Name: "model-b", Weight: 10}, {Name: "model-a", Weight: 90}}, ""},
		{"list with targets", "split:\n  variants:\n    - {name: a, weight: 2.5, target: app-a}\n    - {name: b, weight: 7.5}\n",
			split.Variants{{Name: "a", Weight: 2.5, Target: "app-a"}, {Name: "b", Weight: 7.5}}, ""},
		{"weight not a number", "split:\n  variants: {a: lots}\n", nil, "line 2: cannot unmarshal !!str `lots` into float64"}, // the gateway config rewrites it (config.describe)
		{"scalar", "split:\n  variants: a\n", nil, "want a mapping"},
		{"unknown field", "split:\n  variants: {a: 1}\n  wieghts: 3\n", nil, `split: line 3: unknown field "wieghts" (known: buckets, key, overridable, override_header, salt, variant_header, variants)`},
		{"unknown variant field", "split:\n  variants:\n    - {name: a, wieght: 1}\n", nil, `split: variants[0]: line 3: unknown field "wieght"`},
		{"bad key form", "split:\n  variants: {a: 1}\n  key: session\n", nil, `split: key: line 3: "session": want header:NAME`},
		{"unknown key field", "split:\n  variants: {a: 1}\n  key: {hdr: x}\n", nil, `split: key: line 3: unknown field "hdr"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r route
			err := yaml.Unmarshal([]byte(tc.doc), &r)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Split.Variants) != len(tc.want) {
				t.Fatalf("variants = %+v, want %+v", r.Split.Variants, tc.want)
			}
			for i := range tc.want {
				if r.Split.Variants[i] != tc.want[i] {
					t.Fatalf("variants[%d] = %+v, want %+v", i, r.Split.Variants[i], tc.want[i])
				}
			}
			if r.Split.Buckets != split.DefaultBuckets || r.Split.OverrideHeader != split.DefaultOverrideHeader {
				t.Fatalf("defaults not applied: %+v", r.Split)
			}
			if err := r.Split.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestValidateTargets(t *testing.T) {
	cfg := split.Config{Variants: split.Variants{{Name: "a", Weight: 1}, {Name: "b", Weight: 1, Target: "app-x"}}}
	known := map[string]bool{"a": true, "app-b": true}
	err := cfg.ValidateTargets(func(s string) bool { return known[s] })
	if err == nil || !strings.Contains(err.Error(), `variants[1] ("b").target: unknown app or model "app-x"`) {
		t.Fatalf("ValidateTargets = %v", err)
	}
	known["app-x"] = true
	if err := cfg.ValidateTargets(func(s string) bool { return known[s] }); err != nil {
		t.Fatal(err)
	}
}

func TestKeyForms(t *testing.T) {
	cases := []struct {
		doc  string
		want split.KeyConfig
	}{
		{"key: header:X-User-ID", split.KeyConfig{Header: "X-User-ID"}},
		{"key: cookie:uid", split.KeyConfig{Cookie: "uid"}},
		{"key: client_addr", split.KeyConfig{}},
		{"key: {header: X-A, cookie: c}", split.KeyConfig{Header: "X-A", Cookie: "c"}},
	}
	for _, tc := range cases {
		t.Run(tc.doc, func(t *testing.T) {
			var c split.Config
			if err := yaml.Unmarshal([]byte("variants: {a: 1}\n"+tc.doc+"\n"), &c); err != nil {
				t.Fatal(err)
			}
			if c.Key != tc.want {
				t.Fatalf("key %+v, want %+v", c.Key, tc.want)
			}
		})
	}
}
