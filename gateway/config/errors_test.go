package config

import (
	"errors"
	"fmt"
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

// TestAtLine: an error found after loading gets the line of the field it
// names, a route's part the line of its field in that route; others stay
// as they are.
func TestAtLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gw.yaml")
	yaml := "listen:\n  client: 127.0.0.1:0\nroutes:\n  - name: a\n    match: {models: [a]}\n    nodes: ['127.0.0.1:1']\n" +
		"  - name: b\n    match: {models: [b]}\n    nodes: ['127.0.0.1:2']\n    tls: {ca_file: ca.pem}\n"
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	base := errors.New("open x: no such file")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("gateway: tls: listen.client: %w", base), "line 2: tls: listen.client: open x: no such file"},
		{fmt.Errorf("gateway: route %q: tls.ca_file: %w", "b", base), `line 10: route "b": tls.ca_file: open x: no such file`},
		{fmt.Errorf("gateway: no routes: %w", base), "gateway: no routes: open x: no such file"},
		{fmt.Errorf("gateway: route %q: tls.ca_file: %w", "zz", base), `gateway: route "zz": tls.ca_file: open x: no such file`},
	} {
		got := c.AtLine(tc.err)
		if got.Error() != tc.want {
			t.Errorf("AtLine(%q) = %q, want %q", tc.err, got, tc.want)
		}
		if !errors.Is(got, base) {
			t.Errorf("AtLine(%q) does not wrap the error", tc.err)
		}
	}
	if (&Config{}).AtLine(base) != base || c.AtLine(nil) != nil {
		t.Error("a config built in code, or no error, changed the error")
	}
}
