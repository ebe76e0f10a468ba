package tenant

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MinKeyLength is the shortest key the file accepts, in bytes: a short key
// can be guessed.
const MinKeyLength = 16

// Priority is a tenant's class for the gateway's admission queue.
type Priority uint8

const (
	// Interactive requests are served before batch ones. The default.
	Interactive Priority = iota
	// Batch requests wait while interactive ones are queued.
	Batch
)

// String returns the name used in the file: "interactive" or "batch".
func (p Priority) String() string {
	if p == Batch {
		return "batch"
	}
	return "interactive"
}

// Limits are one tenant's limits. A zero number means unlimited.
type Limits struct {
	RequestsPerMinute int64
	// TokensPerMinute counts input and output tokens, charged when the
	// usage is known.
	TokensPerMinute int64
	MaxConcurrent   int64
	Priority        Priority
	// Models is the allowlist of model names; empty: every model. Sorted;
	// must not be modified.
	Models []string
}

func (l *Limits) equal(o *Limits) bool {
	return l.RequestsPerMinute == o.RequestsPerMinute && l.TokensPerMinute == o.TokensPerMinute &&
		l.MaxConcurrent == o.MaxConcurrent && l.Priority == o.Priority && slices.Equal(l.Models, o.Models)
}

// entry is one item of the file's keys list.
type entry struct {
	index, line int
	digest      [sha256.Size]byte
	tenant      string
	limits      Limits
}

// fields lists the fields of a keys entry, in the order errors name them.
var fields = []string{"key", "key_sha256", "tenant", "requests_per_minute", "tokens_per_minute", "max_concurrent", "priority", "models"}

// parseFile reads an API-key file:
//
//	keys:
//	  - key: sk-...              # or key_sha256: <64 hex digits>
//	    tenant: team-a
//	    requests_per_minute: 600  # 0 or absent: unlimited
//	    tokens_per_minute: 200000 # input + output
//	    max_concurrent: 32
//	    priority: interactive     # or batch (default interactive)
//	    models: [llama-3-70b]     # optional allowlist
//
// Unknown fields, a field given twice, a key given twice and two entries
// of one tenant with different limits are errors. Every error names the
// line and the field, and never shows a key.
func parseFile(data []byte) ([]entry, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, errors.New("empty file: want a mapping with a keys: list")
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping with a keys: list", root.Line)
	}
	var list *yaml.Node
	keysLine := 0
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolve(root.Content[i+1])
		if k.Value != "keys" {
			return nil, fmt.Errorf("line %d: unknown field %s (want keys)", k.Line, fieldName(k.Value))
		}
		if list != nil {
			return nil, fmt.Errorf("line %d: keys: given twice (line %d)", k.Line, keysLine)
		}
		if v.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("line %d: keys: want a list of entries", v.Line)
		}
		list, keysLine = v, k.Line
	}
	if list == nil || len(list.Content) == 0 {
		return nil, errors.New("keys: no key (a file without keys would refuse every request)")
	}
	out := make([]entry, 0, len(list.Content))
	digests := make(map[[sha256.Size]byte]int)
	firstOfTenant := make(map[string]int)
	for i, item := range list.Content {
		e, err := parseEntry(i, resolve(item))
		if err != nil {
			return nil, err
		}
		if j, dup := digests[e.digest]; dup {
			return nil, fmt.Errorf("line %d: keys[%d]: the same key as keys[%d] (line %d)", e.line, i, j, out[j].line)
		}
		digests[e.digest] = i
		if j, seen := firstOfTenant[e.tenant]; seen {
			if !e.limits.equal(&out[j].limits) {
				return nil, fmt.Errorf("line %d: keys[%d] (tenant %s): limits differ from keys[%d] (line %d); the keys of one tenant share its limits, so give them the same ones",
					e.line, i, e.tenant, j, out[j].line)
			}
		} else {
			firstOfTenant[e.tenant] = i
		}
		out = append(out, e)
	}
	return out, nil
}

func parseEntry(i int, n *yaml.Node) (entry, error) {
	e := entry{index: i, line: n.Line}
	if n.Kind != yaml.MappingNode {
		return e, fmt.Errorf("line %d: keys[%d]: want a mapping with %s", n.Line, i, strings.Join(fields, ", "))
	}
	seen := make(map[string]int)
	var haveKey bool
	for k := 0; k+1 < len(n.Content); k += 2 {
		name, v := n.Content[k], resolve(n.Content[k+1])
		field := fmt.Sprintf("keys[%d].%s", i, name.Value)
		if !slices.Contains(fields, name.Value) {
			return e, fmt.Errorf("line %d: keys[%d]: unknown field %s (want %s)", name.Line, i, fieldName(name.Value), strings.Join(fields, ", "))
		}
		if line, dup := seen[name.Value]; dup {
			return e, fmt.Errorf("line %d: %s: given twice (line %d)", name.Line, field, line)
		}
		seen[name.Value] = name.Line
		if name.Value == "models" {
			models, err := parseModels(field, v)
			if err != nil {
				return e, err
			}
			e.limits.Models = models
			continue
		}
		if v.Kind != yaml.ScalarNode {
			return e, fmt.Errorf("line %d: %s: want a single value", v.Line, field)
		}
		switch name.Value {
		case "key":
			if len(v.Value) < MinKeyLength {
				return e, fmt.Errorf("line %d: %s: too short: want at least %d bytes", v.Line, field, MinKeyLength)
			}
			if !headerSafe(v.Value) {
				return e, fmt.Errorf("line %d: %s: has a space or a control character, which no HTTP header can carry", v.Line, field)
			}
			e.digest = sha256.Sum256([]byte(v.Value))
			haveKey = true
		case "key_sha256":
			b, err := hex.DecodeString(v.Value)
			if err != nil || len(b) != sha256.Size {
				return e, fmt.Errorf("line %d: %s: want 64 hexadecimal digits (the SHA-256 of the key, e.g. from sha256sum)", v.Line, field)
			}
			copy(e.digest[:], b)
			haveKey = true
		case "tenant":
			if !validName(v.Value) {
				return e, fmt.Errorf("line %d: %s: %q: want 1 to 64 letters, digits, '.', '_' or '-'", v.Line, field, v.Value)
			}
			e.tenant = v.Value
		case "requests_per_minute", "tokens_per_minute", "max_concurrent":
			x, err := strconv.ParseInt(v.Value, 10, 64)
			if err != nil || x < 0 || (v.Tag != "!!int" && v.Tag != "") {
				return e, fmt.Errorf("line %d: %s: %q: want a whole number, 0 or more (0: unlimited)", v.Line, field, v.Value)
			}
			switch name.Value {
			case "requests_per_minute":
				e.limits.RequestsPerMinute = x
			case "tokens_per_minute":
				e.limits.TokensPerMinute = x
			default:
				e.limits.MaxConcurrent = x
			}
		case "priority":
			switch v.Value {
			case "interactive":
				e.limits.Priority = Interactive
			case "batch":
				e.limits.Priority = Batch
			default:
				return e, fmt.Errorf("line %d: %s: %q: want interactive or batch", v.Line, field, v.Value)
			}
		}
	}
	_, k1 := seen["key"]
	_, k2 := seen["key_sha256"]
	switch {
	case k1 && k2:
		return e, fmt.Errorf("line %d: keys[%d]: give key or key_sha256, not both", n.Line, i)
	case !haveKey:
		return e, fmt.Errorf("line %d: keys[%d]: missing key (or key_sha256)", n.Line, i)
	case e.tenant == "":
		return e, fmt.Errorf("line %d: keys[%d]: missing tenant", n.Line, i)
	}
	return e, nil
}

func parseModels(field string, v *yaml.Node) ([]string, error) {
	if v.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: %s: want a list of model names", v.Line, field)
	}
	if len(v.Content) == 0 {
		return nil, fmt.Errorf("line %d: %s: empty: an empty allowlist would allow nothing (leave models out to allow every model)", v.Line, field)
	}
	var out []string
	for j, m := range v.Content {
		m = resolve(m)
		if m.Kind != yaml.ScalarNode || m.Value == "" {
			return nil, fmt.Errorf("line %d: %s[%d]: want a model name", m.Line, field, j)
		}
		out = append(out, m.Value)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// resolve follows YAML aliases (*anchor) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// fieldName quotes an unknown field's name for an error, unless it could
// be a key written where a field name belongs: then it stays out of the
// message, and the line says where to look.
func fieldName(s string) string {
	if len(s) == 0 || len(s) > 24 {
		return "(name not shown)"
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && c != '_' {
			return "(name not shown)"
		}
	}
	return strconv.Quote(s)
}

// validName reports whether s is a tenant name: 1 to 64 of [A-Za-z0-9._-]
// (it goes into headers, logs and metric labels).
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// headerSafe reports whether s can travel as a header token: visible
// ASCII only.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
