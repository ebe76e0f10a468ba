package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestErrorsSpeakYAML: a file's errors name the YAML line and field path,
// say what the value should look like (a duration's unit, a list), list
// the known fields of a misspelt one, never show Go type names and never
// repeat their prefix.
func TestErrorsSpeakYAML(t *testing.T) {
	const route = "routes:\n  - name: r\n    match: {models: [a]}\n    nodes: ['127.0.0.1:1']\n"
	tests := []struct {
		name, yaml string
		want       []string // each must appear
	}{
		{"bare duration", "limits:\n  read_timeout: 30\n" + route,
			[]string{"line 2: limits.read_timeout: 30 is not a duration: give it a unit, e.g. 30s"}},
		{"word for a duration", "limits:\n  read_timeout: soon\n" + route,
			[]string{`line 2: limits.read_timeout: want a duration such as 30s, 500ms or 2m, got "soon"`}},
		{"scalar for a list", "routes:\n  - name: r\n    match: {models: a}\n    nodes: ['127.0.0.1:1']\n",
			[]string{`line 3: routes[0].match.models: want a list, e.g. [a], got "a"`}},
		{"word for a number", "limits:\n  max_concurrent: many\n" + route,
			[]string{`line 2: limits.max_concurrent: want a whole number, got "many"`}},
		{"list for a string", "listen:\n  client: [a, b]\n" + route,
			[]string{"line 2: listen.client: want a single value, got a list"}},
		{"word for a bool", "admin:\n  pprof: sometimes\n" + route,
			[]string{`line 2: admin.pprof: want true or false, got "sometimes"`}},
		{"two at once", "limits:\n  read_timeout: 30\n  max_concurrent: x\n" + route,
			[]string{"line 2: limits.read_timeout", "line 3: limits.max_concurrent"}},
		{"misspelt field", "routes:\n  - name: r\n    match: {models: [a], hots: x}\n    nodes: ['127.0.0.1:1']\n",
			[]string{`line 3: routes[0].match: unknown field "hots" (known: adapters, headers, host, models, path_prefix, ray_prefix)`}},
		{"misspelt top-level field", "limit: {}\n" + route,
			[]string{`line 1: unknown field "limit" (known: `, "limits"}},
		{"bad node", "routes:\n  - name: r\n    match: {models: [a]}\n    nodes: ['http://x:1/v1']\n",
			[]string{`line 4: node "http://x:1/v1": a path is not supported`}},
		{"split weight", route + "    split: {variants: {a: lots}}\n",
			[]string{`line 5: routes[0].split.variants.a: want a number, got "lots"`}},
		{"validation gets its line", route + "  - name: r\n    match: {models: [b]}\n    nodes: ['127.0.0.1:1']\n",
			[]string{`line 5: routes[1].name "r": duplicate route name`}},
		{"validation of a nested field", route + "    stream: sometimes\n",
			[]string{"line 5: routes[0].stream"}},
	}
	goType := regexp.MustCompile(`\b(config|split|shadow|reqkey|time|flow)\.[A-Z]\w*|\[\]string|!!(int|str|seq|map)|float64|unmarshal`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "gw.yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(p)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\nwant it to contain %q", msg, w)
				}
			}
			if m := goType.FindString(msg); m != "" {
				t.Errorf("error %q shows Go's words: %q", msg, m)
			}
			if strings.Count(msg, ErrConfig.Error()) != 1 {
				t.Errorf("error %q: want the prefix %q once", msg, ErrConfig.Error())
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %q is not ErrConfig", msg)
			}
		})
	}
}
