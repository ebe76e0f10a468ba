package shadow_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

func TestValidateRefusesBadConfigs(t *testing.T) {
	base := func(f func(*shadow.Config)) shadow.Config {
		c := shadow.DefaultConfig()
		c.Target = "candidate"
		f(&c)
		return c
	}
	cases := []struct {
		name string
		cfg  shadow.Config
		want string
	}{
		{"valid", base(func(*shadow.Config) {}), ""},
		{"valid 0 %", base(func(c *shadow.Config) { c.SampleRate = 0 }), ""},
		{"no target", base(func(c *shadow.Config) { c.Target = "" }), "target: empty"},
		{"sample rate above 100", base(func(c *shadow.Config) { c.SampleRate = 150 }), "sample_rate: must be a percentage in 0..100, got 150"},
		{"sample rate negative", base(func(c *shadow.Config) { c.SampleRate = -1 }), "sample_rate: must be a percentage in 0..100, got -1"},
		{"sample by", base(func(c *shadow.Config) { c.SampleBy = "user" }), `sample_by: must be "random" or "key", got "user"`},
		{"zero queue", base(func(c *shadow.Config) { c.QueueSize = 0 }), "queue_size: must be > 0, got 0"},
		{"zero concurrency", base(func(c *shadow.Config) { c.Concurrency = 0 }), "concurrency: must be > 0"},
		{"zero body", base(func(c *shadow.Config) { c.MaxBodyBytes = 0 }), "max_body_bytes: must be > 0"},
		{"zero timeout", base(func(c *shadow.Config) { c.Timeout = 0 }), "timeout: must be > 0"},
		{"bad field path", base(func(c *shadow.Config) { c.Compare.Fields = []string{"ok", "choices[x]"} }), `compare.fields[1]: shadow: field path "choices[x]": position 8: index "x" is not a number`},
		{"duplicate field", base(func(c *shadow.Config) { c.Compare.Fields = []string{"a", "a"} }), `compare.fields[1]: duplicate field "a"`},
		{"negative tolerance", base(func(c *shadow.Config) { c.Compare.RelTolerance = -0.1 }), "compare.rel_tolerance: must be >= 0"},
		{"log sample rate", base(func(c *shadow.Config) { c.Log.Path = "x.jsonl"; c.Log.SampleRate = 101 }), "log.sample_rate: must be a percentage in 0..100, got 101"},
		{"log files", base(func(c *shadow.Config) { c.Log.Path = "x.jsonl"; c.Log.MaxFiles = 0 }), "log.max_files: must be > 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "shadow: invalid config: ") {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
			if !errors.Is(err, shadow.ErrInvalidConfig) {
				t.Fatalf("%v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}

func TestYAMLStartsFromDefaults(t *testing.T) {
	var r struct {
		Shadow *shadow.Config `yaml:"shadow"`
	}
	doc := "shadow:\n  target: candidate\n  sample_rate: 12.5\n  timeout: 2s\n  compare:\n    fields:\n      - choices[0].message.content\n      - usage.completion_tokens\n"
	if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
		t.Fatal(err)
	}
	c := r.Shadow
	if c.Target != "candidate" || c.SampleRate != 12.5 || c.Timeout != 2*time.Second || len(c.Compare.Fields) != 2 {
		t.Fatalf("decoded %+v", c)
	}
	if c.QueueSize != shadow.DefaultQueueSize || c.MarkerHeader != shadow.DefaultMarkerHeader || c.SampleBy != shadow.SampleRandom {
		t.Fatalf("defaults not kept: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateTargets(func(s string) bool { return s == "other" }); err == nil || !strings.Contains(err.Error(), `target: unknown app or model "candidate"`) {
		t.Fatalf("ValidateTargets = %v", err)
	}
	// An explicit zero is refused rather than defaulted.
	if err := yaml.Unmarshal([]byte("shadow: {target: x, queue_size: 0}\n"), &r); err != nil {
		t.Fatal(err)
	}
	if err := r.Shadow.Validate(); err == nil || !strings.Contains(err.Error(), "queue_size") {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestYAMLRefusesUnknownFields(t *testing.T) {
	cases := []struct{ doc, want string }{
		{"target: x\nsample_percent: 5\n", `shadow: line 2: unknown field "sample_percent"`},
		{"target: x\ncompare: {feilds: [a]}\n", `shadow: compare: line 2: unknown field "feilds"`},
		{"target: x\nlog: {path: a, max_size: 3}\n", `shadow: log: line 2: unknown field "max_size"`},
		{"target: x\nkey: ip\n", `shadow: key: line 2: "ip": want header:NAME`},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			var c shadow.Config
			err := yaml.Unmarshal([]byte(tc.doc), &c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	var c shadow.Config
	if err := yaml.Unmarshal([]byte("target: x\nsample_by: key\nkey: header:X-User-ID\nlog: {path: /tmp/x}\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Key.Header != "X-User-ID" || c.Log.MaxFiles != shadow.DefaultLogMaxFiles || c.Log.Path != "/tmp/x" {
		t.Fatalf("decoded %+v", c)
	}
}
