package tenant

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// secret is the key the tests write into files; no error may show it.
const secret = "sk-test-SECRET-0123456789abcdef"

func TestParseGood(t *testing.T) {
	sum := sha256.Sum256([]byte("sk-hashed-key-0123456789"))
	file := `
# team-a has two keys (a rotation), team-b a hashed one.
keys:
  - key: ` + secret + `
    tenant: team-a
    requests_per_minute: 600
    tokens_per_minute: 200000
    max_concurrent: 32
    priority: interactive
    models: [llama-3-70b, llama-3-8b]
  - key: sk-test-NEW-KEY-0123456789
    tenant: team-a
    requests_per_minute: 600
    tokens_per_minute: 200000
    max_concurrent: 32
    models: [llama-3-8b, llama-3-70b]
  - key_sha256: ` + strings.ToUpper(hex.EncodeToString(sum[:])) + `
    tenant: team-b
    priority: batch
`
	s, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if s.Keys() != 3 || len(s.Tenants()) != 2 {
		t.Fatalf("%d keys, %d tenants", s.Keys(), len(s.Tenants()))
	}
	a, ok := s.Lookup([]byte(secret))
	if !ok || a.Name() != "team-a" {
		t.Fatalf("lookup of team-a's first key: %v %v", a, ok)
	}
	if a2, ok := s.Lookup([]byte("sk-test-NEW-KEY-0123456789")); !ok || a2 != a {
		t.Error("the second key of team-a is not the same tenant")
	}
	want := Limits{RequestsPerMinute: 600, TokensPerMinute: 200000, MaxConcurrent: 32, Priority: Interactive, Models: []string{"llama-3-70b", "llama-3-8b"}}
	if got := a.Limits(); !got.equal(&want) {
		t.Errorf("limits %+v, want %+v", got, want)
	}
	b, ok := s.Lookup([]byte("sk-hashed-key-0123456789"))
	if !ok || b.Name() != "team-b" || b.Priority() != Batch || b.Limits().RequestsPerMinute != 0 {
		t.Errorf("team-b: %v %v", b, ok)
	}
	for _, k := range []string{"", "sk-unknown-0123456789", secret + "x", secret[:len(secret)-1]} {
		if _, ok := s.Lookup([]byte(k)); ok {
			t.Errorf("lookup of %q succeeded", k)
		}
	}
	if names := []string{s.Tenants()[0].Name(), s.Tenants()[1].Name()}; !slices.Equal(names, []string{"team-a", "team-b"}) {
		t.Errorf("tenants %q", names)
	}
}

func TestParseErrors(t *testing.T) {
	entry := "keys:\n  - key: " + secret + "\n    tenant: a\n"
	for _, tc := range []struct{ name, file, want string }{
		{"empty", "", "empty file"},
		{"not a mapping", "- a\n", "line 1: want a mapping with a keys: list"},
		{"unknown top-level field", "kes: []\n", `line 1: unknown field "kes" (want keys)`},
		{"no keys", "keys: []\n", "keys: no key"},
		{"keys twice", entry + "keys: []\n", "line 4: keys: given twice (line 1)"},
		{"keys not a list", "keys: 3\n", "line 1: keys: want a list"},
		{"entry not a mapping", "keys:\n  - " + secret + "\n", "line 2: keys[0]: want a mapping"},
		{"unknown field", entry + "    tenat: b\n", `line 4: keys[0]: unknown field "tenat"`},
		{"key as a field name", "keys:\n  - " + secret + ": a\n", "line 2: keys[0]: unknown field (name not shown)"},
		{"field twice", entry + "    tenant: b\n", "line 4: keys[0].tenant: given twice (line 3)"},
		{"short key", "keys:\n  - key: sk-short\n    tenant: a\n", "line 2: keys[0].key: too short: want at least 16 bytes"},
		{"key with a space", "keys:\n  - key: \"sk-has a space-0123456789\"\n    tenant: a\n", "line 2: keys[0].key: has a space"},
		{"key not a scalar", "keys:\n  - key: [" + secret + "]\n    tenant: a\n", "line 2: keys[0].key: want a single value"},
		{"bad digest", "keys:\n  - key_sha256: abc\n    tenant: a\n", "line 2: keys[0].key_sha256: want 64 hexadecimal digits"},
		{"key and digest", entry + "    key_sha256: " + strings.Repeat("ab", 32) + "\n", "line 2: keys[0]: give key or key_sha256, not both"},
		{"no key", "keys:\n  - tenant: a\n", "line 2: keys[0]: missing key (or key_sha256)"},
		{"no tenant", "keys:\n  - key: " + secret + "\n", "line 2: keys[0]: missing tenant"},
		{"bad tenant", "keys:\n  - key: " + secret + "\n    tenant: team a\n", `line 3: keys[0].tenant: "team a": want 1 to 64 letters`},
		{"negative limit", entry + "    requests_per_minute: -1\n", `line 4: keys[0].requests_per_minute: "-1": want a whole number`},
		{"quoted limit", entry + "    tokens_per_minute: \"600\"\n", `line 4: keys[0].tokens_per_minute: "600": want a whole number`},
		{"fractional limit", entry + "    max_concurrent: 1.5\n", `line 4: keys[0].max_concurrent: "1.5": want a whole number`},
		{"bad priority", entry + "    priority: urgent\n", `line 4: keys[0].priority: "urgent": want interactive or batch`},
		{"empty allowlist", entry + "    models: []\n", "line 4: keys[0].models: empty: an empty allowlist would allow nothing"},
		{"models not a list", entry + "    models: llama\n", "line 4: keys[0].models: want a list of model names"},
		{"empty model", entry + "    models: [\"\"]\n", "line 4: keys[0].models[0]: want a model name"},
		{"same key twice", entry + "  - key: " + secret + "\n    tenant: b\n", "line 4: keys[1]: the same key as keys[0] (line 2)"},
		{"same key, once hashed", entry + "  - key_sha256: " + hexSum(secret) + "\n    tenant: b\n", "line 4: keys[1]: the same key as keys[0] (line 2)"},
		{"one tenant, two limits", entry + "    max_concurrent: 2\n  - key: sk-other-0123456789abc\n    tenant: a\n    max_concurrent: 3\n",
			"line 5: keys[1] (tenant a): limits differ from keys[0] (line 2)"},
		{"yaml syntax", "keys:\n  - key: " + secret + "\n   tenant: [a\n", "line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q, want one containing %q", msg, tc.want)
			}
			if strings.Contains(msg, secret) || strings.Contains(msg, "sk-short") || strings.Contains(msg, "has a space-") {
				t.Errorf("the error shows a key: %q", msg)
			}
			if strings.Contains(msg, "tenant.") || strings.Contains(msg, "entry") {
				t.Errorf("the error shows a Go name: %q", msg)
			}
		})
	}
}

func hexSum(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestParseAliases(t *testing.T) {
	file := "keys:\n  - key: " + secret + "\n    tenant: a\n    models: &m [x, y]\n  - key: sk-other-0123456789abc\n    tenant: b\n    models: *m\n"
	s, err := Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Tenant("b")
	if !b.Allows([]byte("y")) || b.Allows([]byte("z")) {
		t.Errorf("b's allowlist: %v", b.Limits().Models)
	}
}

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		in, tok string
		ok      bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER  abc ", "abc", true},
		{" Bearer abc", "abc", true},
		{"Bearer\tabc", "", false}, // the scheme is followed by a space
		{"Bearer ", "", false},
		{"Bearer", "", false},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"", "", false},
	} {
		tok, ok := BearerToken([]byte(tc.in))
		if ok != tc.ok || string(tok) != tc.tok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tc.in, tok, ok, tc.tok, tc.ok)
		}
	}
}

func TestLookupHeaders(t *testing.T) {
	s, err := Parse([]byte("keys:\n  - key: " + secret + "\n    tenant: a\n  - key: sk-other-0123456789abc\n    tenant: b\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, auth, apiKey, want string
	}{
		{"bearer", "Bearer " + secret, "", "a"},
		{"x-api-key", "", secret, "a"},
		{"x-api-key with spaces", "", " " + secret + " ", "a"},
		{"bearer wins", "Bearer sk-other-0123456789abc", secret, "b"},
		{"another scheme falls back to x-api-key", "Basic dXNlcjpwYXNz", secret, "a"},
		{"unknown bearer does not fall back", "Bearer sk-unknown-0123456789", secret, ""},
		{"nothing", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var auth, key []byte
			if tc.auth != "" {
				auth = []byte(tc.auth)
			}
			if tc.apiKey != "" {
				key = []byte(tc.apiKey)
			}
			ten, ok := s.LookupHeaders(auth, key)
			switch {
			case tc.want == "" && ok:
				t.Errorf("found %s", ten.Name())
			case tc.want != "" && (!ok || ten.Name() != tc.want):
				t.Errorf("got %v %v, want %s", ten, ok, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("keys:\n  - key: " + secret + "\n    tenant: a\n    requests_per_minute: 5\n    models: [m]\n"))
	f.Add([]byte("keys:\n  - key_sha256: " + hexSum(secret) + "\n    tenant: b\n    priority: batch\n"))
	f.Add([]byte("keys: [{key: " + secret + ", tenant: c, max_concurrent: 2}]\n"))
	f.Add([]byte("keys:\n  - &x {key: " + secret + ", tenant: a}\n  - *x\n"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4096 {
			return
		}
		s, err := Parse(data)
		if err != nil {
			if s != nil {
				t.Fatal("a set with an error")
			}
			return
		}
		if s.Keys() == 0 || len(s.Tenants()) == 0 || len(s.Tenants()) > s.Keys() {
			t.Fatalf("%d keys, %d tenants", s.Keys(), len(s.Tenants()))
		}
		for i, ten := range s.Tenants() {
			if !validName(ten.Name()) || (i > 0 && s.Tenants()[i-1].Name() >= ten.Name()) {
				t.Fatalf("tenant %q at %d", ten.Name(), i)
			}
			if got, ok := s.Tenant(ten.Name()); !ok || got != ten {
				t.Fatalf("Tenant(%q)", ten.Name())
			}
			l := ten.Limits()
			if l.RequestsPerMinute < 0 || l.TokensPerMinute < 0 || l.MaxConcurrent < 0 || !slices.IsSorted(l.Models) {
				t.Fatalf("limits %+v", l)
			}
		}
	})
}

// TestExampleFile: the documented example parses and means what its
// comments say.
func TestExampleFile(t *testing.T) {
	s, err := LoadFile("testdata/keys.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	a, ok := s.Lookup([]byte("sk-example-team-a-0123456789abcdef"))
	a2, ok2 := s.Lookup([]byte("sk-example-team-a-rotated-0123456789"))
	if !ok || !ok2 || a != a2 || a.Name() != "team-a" || a.Allows([]byte("llama-3-8b")) || !a.Allows([]byte("llama-3-70b")) {
		t.Errorf("team-a: %v %v", a, a2)
	}
	b, ok := s.Lookup([]byte("sk-example-batch-0123456789abcdef"))
	if !ok || b.Name() != "nightly-batch" || b.Priority() != Batch || b.Limits().TokensPerMinute != 1000000 {
		t.Errorf("nightly-batch: %v %v", b, ok)
	}
}
