package yamlerr

import (
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
)

type inner struct {
	Every time.Duration `yaml:"every"`
	Tags  []string      `yaml:"tags"`
}

type shared struct {
	Weight float64 `yaml:"weight"`
}

type item struct {
	shared `yaml:",inline"`
	Name   string `yaml:"name"`
	Count  int    `yaml:"count"`
	On     bool   `yaml:"on"`
	Inner  inner  `yaml:"inner"`
}

type doc struct {
	Items  []item            `yaml:"items"`
	Limits map[string]inner  `yaml:"limits"`
	Where  *inner            `yaml:"where"`
	Names  map[string]string `yaml:"names"`
}

// goWords are what the decoder says in Go: type names, tags, "unmarshal".
var goWords = regexp.MustCompile(`\b(yamlerr|time)\.[A-Za-z]\w*|\[\]string|!!(int|str|seq|map|bool|float)|float64|unmarshal|not found in type`)

func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"bare duration", "items:\n  - inner: {every: 30}\n",
			[]string{"line 2: items[0].inner.every: 30 is not a duration: give it a unit, e.g. 30s (units: ms, s, m, h)"}},
		{"word for a duration", "where:\n  every: soon\n",
			[]string{`line 2: where.every: want a duration such as 30s, 500ms or 2m, got "soon"`}},
		{"scalar for a list", "items:\n  - inner: {tags: a}\n",
			[]string{`line 2: items[0].inner.tags: want a list, e.g. [a], got "a"`}},
		{"scalar for a list of structs", "items: 3\n",
			[]string{`line 1: items: want a list, e.g. [3], got "3"`}},
		{"word for a number", "items:\n  - count: many\n",
			[]string{`line 2: items[0].count: want a whole number, got "many"`}},
		{"word for a float (inline field)", "items:\n  - weight: heavy\n",
			[]string{`line 2: items[0].weight: want a number, got "heavy"`}},
		{"word for a bool", "items:\n  - on: sometimes\n",
			[]string{`line 2: items[0].on: want true or false, got "sometimes"`}},
		{"list for a string", "items:\n  - name: [a, b]\n",
			[]string{"line 2: items[0].name: want a single value, got a list"}},
		{"scalar for a struct", "where: x\n",
			[]string{`line 1: where: want a mapping (name: value), got "x"`}},
		{"map value", "limits:\n  a: {every: 5}\n",
			[]string{"line 2: limits.a.every: 5 is not a duration"}},
		{"unknown field lists the inline ones", "items:\n  - {name: a, wieght: 1}\n",
			[]string{`line 2: items[0]: unknown field "wieght" (known: count, inner, name, on, weight)`}},
		{"unknown top-level field", "item: []\n",
			[]string{`line 1: unknown field "item" (known: items, limits, names, where)`}},
		{"two problems, two lines", "items:\n  - count: x\n    on: maybe\n",
			[]string{"line 2: items[0].count", "\nline 3: items[0].on"}},
		{"field set twice", "where: {every: 1s}\nwhere: {every: 2s}\n",
			[]string{"line 2: ", `"where"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var d doc
			err := DecodeStrict([]byte(tc.yaml), &d)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\nwant it to contain %q", msg, w)
				}
			}
			if m := goWords.FindString(msg); m != "" {
				t.Errorf("error %q shows Go's words: %q", msg, m)
			}
		})
	}
	var d doc
	if err := DecodeStrict(nil, &d); !errors.Is(err, io.EOF) {
		t.Errorf("empty document: %v, want io.EOF", err)
	}
	if err := DecodeStrict([]byte("items:\n  - {name: a, inner: {every: 2s, tags: [x]}}\n"), &d); err != nil ||
		d.Items[0].Inner.Every != 2*time.Second || d.Items[0].Inner.Tags[0] != "x" {
		t.Errorf("good document: %v %+v", err, d)
	}
	// A syntax error is not the decoder's type error: it comes back as it is.
	if err := DecodeStrict([]byte("items: [\n"), &d); err == nil || !strings.Contains(err.Error(), "line") {
		t.Errorf("syntax error: %v", err)
	}
}

func TestLines(t *testing.T) {
	got := Lines([]byte("items:\n  - name: a\n    inner:\n      every: 1s\n  - name: b\nwhere: {every: 2s}\n"))
	want := map[string]int{"items": 1, "items[0]": 2, "items[0].name": 2, "items[0].inner": 3, "items[0].inner.every": 4,
		"items[1]": 5, "items[1].name": 5, "where": 6, "where.every": 6}
	for path, line := range want {
		if got[path] != line {
			t.Errorf("%s: line %d, want %d", path, got[path], line)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if Lines([]byte("a: [\n")) != nil {
		t.Error("a document that does not parse has lines")
	}
}

// FuzzDecodeStrict: any document decodes or gives an error, never a
// panic, and the error never shows the decoder's Go words.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		"items:\n  - inner: {every: 30}\n", "items: 3\n", "where: x\n", "limits:\n  a: {every: 5}\n",
		"items:\n  - {name: a, wieght: 1}\n", "items:\n  - count: x\n    on: y\n", "items: [\n", "&a [*a]\n",
		"where: {every: 1s}\nwhere: {every: 2s}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		var d doc
		err := DecodeStrict(data, &d)
		if err == nil || errors.Is(err, io.EOF) || strings.HasPrefix(err.Error(), "yaml: ") {
			return // decoded, empty, or a syntax error (the decoder's own words, no Go types)
		}
		if m := goWords.FindString(err.Error()); m != "" {
			t.Errorf("error %q shows Go's words: %q", err, m)
		}
	})
}
