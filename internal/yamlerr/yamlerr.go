package yamlerr

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DecodeStrict decodes the YAML document data into v, which must be a
// pointer: unknown fields are errors, and every error is described
// (Describe). An empty document gives io.EOF.
func DecodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return err
		}
		return Describe(data, reflect.TypeOf(v), err)
	}
	return nil
}

// Lines maps each field path of data (limits.read_timeout,
// routes[0].match.models, routes[1]) to its key's line (a list item's own
// line); nil for a document that does not parse.
func Lines(data []byte) map[string]int {
	fields := indexYAML(data)
	if fields == nil {
		return nil
	}
	lines := make(map[string]int, len(fields))
	for _, f := range fields {
		lines[f.path] = f.keyLine
	}
	return lines
}

// yamlField is one key or list item of a YAML document.
type yamlField struct {
	path     string // routes[0].match.models
	keyLine  int    // the key's line (an item's own line in a list)
	valLine  int    // the value's line
	value    string // a scalar value; "" otherwise
	valKind  yaml.Kind
	lastName string // the last key of path ("" for a list item)
}

// indexYAML lists the fields of the document data, parents first. A
// document that does not parse gives none.
func indexYAML(data []byte) []yamlField {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return nil
	}
	var out []yamlField
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				out = append(out, yamlField{path: p, keyLine: k.Line, valLine: v.Line, value: scalar(v), valKind: v.Kind, lastName: k.Value})
				walk(v, p)
			}
		case yaml.SequenceNode:
			for i, v := range n.Content {
				p := path + "[" + strconv.Itoa(i) + "]"
				out = append(out, yamlField{path: p, keyLine: v.Line, valLine: v.Line, value: scalar(v), valKind: v.Kind})
				walk(v, p)
			}
		}
	}
	walk(&doc, "")
	return out
}

func scalar(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return n.Value
	}
	return ""
}

var (
	// The tag is !!int, !!seq... or a custom one (!x).
	reUnmarshal = regexp.MustCompile("(?s)^line (\\d+): cannot unmarshal !!?(\\S*?)(?: `(.*)`)? into (\\S+)$")
	reUnknown   = regexp.MustCompile(`^line (\d+): field (.+) not found in type \S+$`)
	reTwice     = regexp.MustCompile(`^line (\d+): field (.+) already set in type \S+$`)
	reLine      = regexp.MustCompile(`^line (\d+): `)
	// reGoType finds the Go type in a line none of the above matched.
	reGoType = regexp.MustCompile(` (in type|into) \S+`)
)

// Describe rewrites a decoding error of data (decoded into a value of
// type root) for its reader, one line per problem: "line 2:
// limits.read_timeout: 30 is not a duration: give it a unit, e.g. 30s",
// "line 3: routes[0].match: unknown field "hots" (known: adapters,
// ...)". A prefix that a custom decoder put before the decoder's
// message is kept; an error that is not the decoder's type error is
// returned as it is.
func Describe(data []byte, root reflect.Type, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	fields := indexYAML(data)
	lines := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		lines[i] = describeLine(fields, root, e)
	}
	// A custom decoder (a node, a split) may have wrapped the
	// decoder's message in its own prefix: keep that prefix.
	msg := err.Error()
	prefix, _, _ := strings.Cut(msg, "yaml: unmarshal errors:")
	return errors.New(prefix + strings.Join(lines, "\n"))
}

// describeLine rewrites one of the decoder's lines.
func describeLine(fields []yamlField, root reflect.Type, e string) string {
	if m := reUnmarshal.FindStringSubmatch(e); m != nil {
		line, _ := strconv.Atoi(m[1])
		tag, value, goType := m[2], m[3], m[4]
		where := fmt.Sprintf("line %d", line)
		if f, ok := fieldAtValue(fields, line, tag, value); ok {
			where += ": " + f.path
		}
		return where + ": " + wantedValue(goType, tag, value)
	}
	if m := reUnknown.FindStringSubmatch(e); m != nil {
		line, _ := strconv.Atoi(m[1])
		name := m[2]
		f, ok := fieldAtKey(fields, line, name)
		if !ok {
			return fmt.Sprintf("line %d: unknown field %q", line, name)
		}
		parent := strings.TrimSuffix(strings.TrimSuffix(f.path, name), ".")
		msg := fmt.Sprintf("line %d: unknown field %q", line, name)
		if parent != "" {
			msg = fmt.Sprintf("line %d: %s: unknown field %q", line, parent, name)
		}
		if known := knownFields(root, parent); len(known) > 0 {
			msg += " (known: " + strings.Join(known, ", ") + ")"
		}
		return msg
	}
	if m := reTwice.FindStringSubmatch(e); m != nil {
		return fmt.Sprintf("line %s: field %q is set twice", m[1], m[2])
	}
	if m := reLine.FindStringSubmatch(e); m != nil && strings.Contains(e, "unmarshal") {
		return "line " + m[1] + ": a value of the wrong kind"
	}
	return reGoType.ReplaceAllString(e, "")
}

// wantedValue says what a value of Go type goType looks like in YAML.
func wantedValue(goType, tag, value string) string {
	got := fmt.Sprintf("%q", value)
	switch tag {
	case "seq":
		got = "a list"
	case "map":
		got = "a mapping"
	}
	switch {
	case goType == "time.Duration":
		if _, err := strconv.ParseFloat(value, 64); err == nil && tag != "seq" && tag != "map" {
			return fmt.Sprintf("%s is not a duration: give it a unit, e.g. %ss (units: ms, s, m, h)", value, value)
		}
		return fmt.Sprintf("want a duration such as 30s, 500ms or 2m, got %s", got)
	case strings.HasPrefix(goType, "[]"):
		if value != "" {
			return fmt.Sprintf("want a list, e.g. [%s], got %s", value, got)
		}
		return "want a list, got " + got
	case strings.HasPrefix(goType, "map["), strings.Contains(goType, "."):
		return "want a mapping (name: value), got " + got
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "want a whole number, got " + got
	case strings.HasPrefix(goType, "float"):
		return "want a number, got " + got
	case goType == "bool":
		return "want true or false, got " + got
	case goType == "string":
		return "want a single value, got " + got
	}
	return "a value of the wrong kind: " + got
}

// fieldAtValue finds the field whose value the decoder refused: on line,
// with that scalar value (or that kind of collection), the deepest one.
func fieldAtValue(fields []yamlField, line int, tag, value string) (yamlField, bool) {
	var best yamlField
	found := false
	for _, f := range fields {
		if f.valLine != line {
			continue
		}
		switch {
		case tag == "seq" && f.valKind == yaml.SequenceNode,
			tag == "map" && f.valKind == yaml.MappingNode,
			f.valKind == yaml.ScalarNode && f.value == value:
			best, found = f, true
		}
	}
	return best, found
}

// fieldAtKey finds the field named name whose key is on line.
func fieldAtKey(fields []yamlField, line int, name string) (yamlField, bool) {
	for _, f := range fields {
		if f.keyLine == line && f.lastName == name {
			return f, true
		}
	}
	return yamlField{}, false
}

// knownFields lists the YAML field names of the struct at path (a field
// path such as routes[0].match) inside root, sorted; none when the path
// does not lead to a struct.
func knownFields(root reflect.Type, path string) []string {
	t := root
	for _, tok := range splitPath(path) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Slice, reflect.Array, reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			ft, ok := fieldType(t, tok)
			if !ok {
				return nil
			}
			t = ft
		default:
			return nil
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	structFields(t, func(name string, _ reflect.Type) bool {
		names = append(names, name)
		return true
	})
	sort.Strings(names)
	return names
}

// splitPath splits routes[0].match into routes, [0], match.
func splitPath(path string) []string {
	var toks []string
	for _, part := range strings.Split(path, ".") {
		if part == "" {
			continue
		}
		name, idx, hasIdx := strings.Cut(part, "[")
		if name != "" {
			toks = append(toks, name)
		}
		for hasIdx {
			var rest string
			_, rest, _ = strings.Cut(idx, "]")
			toks = append(toks, "[]")
			idx = rest
			_, idx, hasIdx = strings.Cut(idx, "[")
		}
	}
	return toks
}

// fieldType is the type of t's YAML field name.
func fieldType(t reflect.Type, name string) (reflect.Type, bool) {
	var out reflect.Type
	structFields(t, func(n string, ft reflect.Type) bool {
		if n == name {
			out = ft
			return false
		}
		return true
	})
	return out, out != nil
}

// structFields calls f with each YAML field of struct t (inline ones
// flattened) until f returns false.
func structFields(t reflect.Type, f func(name string, ft reflect.Type) bool) bool {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		inline := strings.Contains(","+opts+",", ",inline,")
		if tag == "-" || (!sf.IsExported() && !inline) {
			continue
		}
		if inline { // an embedded struct, exported or not
			ft := sf.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && !structFields(ft, f) {
				return false
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		if !f(name, sf.Type) {
			return false
		}
	}
	return true
}
