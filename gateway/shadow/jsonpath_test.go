package shadow_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

func TestParsePathAndExtract(t *testing.T) {
	const doc = `{"choices":[{"message":{"content":"hi"}},{"message":{"content":"yo"}}],
		"outputs":[{"name":"y","data":[1.5,2,3]}],"usage":{"completion_tokens":12},"a.b":1}`
	cases := []struct {
		path    string
		want    string // JSON of the value; "" = missing
		wantErr string
	}{
		{"choices[0].message.content", `"hi"`, ""},
		{"choices[1].message.content", `"yo"`, ""},
		{"choices[2].message.content", "", ""},
		{"outputs[0].data", `[1.5,2,3]`, ""},
		{"outputs[0].data[1]", `2`, ""},
		{"usage.completion_tokens", `12`, ""},
		{"usage", `{"completion_tokens":12}`, ""},
		{"choices.message", "", ""},
		{"usage[0]", "", ""},
		{"", "", "empty"},
		{"a..b", "", "position 2: empty key"},
		{".a", "", "position 0: empty key"},
		{"a.", "", "trailing '.'"},
		{"a[", "", "'[' without ']'"},
		{"a]", "", "']' without '['"},
		{"a[-1]", "", `index "-1" is not a number`},
		{"a[1]b", "", "want '.' or '[' after ']'"},
		{"a.[1]", "", "'.' must be followed by a key"},
		{"a[99999999999]", "", "is not a number in 0..1048576"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			p, err := shadow.ParsePath(tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParsePath(%q) = %v, want %q", tc.path, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v, ok, err := p.Extract([]byte(doc))
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if ok {
					t.Fatalf("Extract found %v, want missing", v)
				}
				return
			}
			b, _ := json.Marshal(v)
			if !ok || string(b) != tc.want {
				t.Fatalf("Extract = %s (%v), want %s", b, ok, tc.want)
			}
		})
	}
	p, _ := shadow.ParsePath("a")
	if _, _, err := p.Extract([]byte(`{"a":1} x`)); err == nil {
		t.Fatal("trailing data accepted")
	}
}

// FuzzFieldPath: the path parser and the extractor never panic; a parsed
// path prints back as written; extraction agrees with a walk over the
// document decoded by encoding/json (the reference).
func FuzzFieldPath(f *testing.F) {
	seeds := []struct{ path, doc string }{
		{"choices[0].message.content", `{"choices":[{"message":{"content":"x"}}]}`},
		{"outputs[0].data", `{"outputs":[{"data":[1,2.5e3,-4]}]}`},
		{"[0][1]", `[[1,2]]`},
		{"a.b[3]", `{"a":{"b":[0,1,2,{"c":null}]}}`},
		{"a[", `{}`},
		{"x.y.z", `{"x":{"y":{"z":"\u00e9"}}}`},
	}
	for _, s := range seeds {
		f.Add(s.path, s.doc)
	}
	f.Fuzz(func(t *testing.T, path, doc string) {
		if len(path) > 512 || len(doc) > 4096 {
			return
		}
		p, err := shadow.ParsePath(path)
		if err != nil {
			return
		}
		if p.String() != path {
			t.Fatalf("String() = %q, want %q", p.String(), path)
		}
		v, ok, err := p.Extract([]byte(doc))
		if err != nil {
			return
		}
		// Reference: walk the path's segments over a plain json.Unmarshal.
		var ref any
		if err := json.Unmarshal([]byte(doc), &ref); err != nil {
			t.Fatalf("Extract decoded %q but encoding/json refuses it: %v", doc, err)
		}
		rv, rok := refWalk(ref, path)
		if ok != rok {
			t.Fatalf("path %q doc %q: found %v, reference found %v", path, doc, ok, rok)
		}
		if ok {
			a, _ := json.Marshal(v)
			b, _ := json.Marshal(rv)
			var x, y any
			_ = json.Unmarshal(a, &x)
			_ = json.Unmarshal(b, &y)
			ja, _ := json.Marshal(x)
			jb, _ := json.Marshal(y)
			if string(ja) != string(jb) {
				t.Fatalf("path %q: %s, reference %s", path, ja, jb)
			}
		}
	})
}

// refWalk is an independent, naive path walker: split on '.', then peel
// "[n]" suffixes.
func refWalk(v any, path string) (any, bool) {
	for _, part := range strings.Split(path, ".") {
		key := part
		var idx []int
		if i := strings.IndexByte(part, '['); i >= 0 {
			key = part[:i]
			rest := part[i:]
			for rest != "" {
				j := strings.IndexByte(rest, ']')
				n := 0
				for _, c := range rest[1:j] {
					n = n*10 + int(c-'0')
				}
				idx = append(idx, n)
				rest = rest[j+1:]
			}
		}
		if key != "" {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[key]; !ok {
				return nil, false
			}
		}
		for _, n := range idx {
			a, ok := v.([]any)
			if !ok || n >= len(a) {
				return nil, false
			}
			v = a[n]
		}
	}
	return v, true
}
