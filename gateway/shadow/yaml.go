package shadow

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// strictKeys refuses mapping keys of n that are not yaml tags of v's
// struct type: yaml.v3's KnownFields does not reach into custom
// unmarshalers, so each one checks its own level.
func strictKeys(n *yaml.Node, v any, where string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	t := reflect.TypeOf(v)
	known := map[string]bool{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" {
			known[tag] = true
			names = append(names, tag)
		}
	}
	sort.Strings(names)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !known[k.Value] {
			return fmt.Errorf("shadow: %sline %d: unknown field %q (known: %s)", where, k.Line, k.Value, strings.Join(names, ", "))
		}
	}
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler. Besides the mapping
// {header: X, cookie: Y} it accepts the scalar forms "header:NAME",
// "cookie:NAME" and "client_addr".
func (k *KeyConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		kind, name, _ := strings.Cut(n.Value, ":")
		switch {
		case kind == "header" && name != "":
			*k = KeyConfig{Header: name}
		case kind == "cookie" && name != "":
			*k = KeyConfig{Cookie: name}
		case n.Value == "client_addr" || n.Value == "addr" || n.Value == "":
			*k = KeyConfig{}
		default:
			return fmt.Errorf("shadow: key: line %d: %q: want header:NAME, cookie:NAME, client_addr or {header, cookie}", n.Line, n.Value)
		}
		return nil
	}
	if err := strictKeys(n, KeyConfig{}, "key: "); err != nil {
		return err
	}
	type plain KeyConfig
	return n.Decode((*plain)(k))
}

// UnmarshalYAML implements yaml.Unmarshaler; it refuses unknown fields and
// keeps the values already set (the defaults) for omitted ones.
func (c *CompareConfig) UnmarshalYAML(n *yaml.Node) error {
	if err := strictKeys(n, CompareConfig{}, "compare: "); err != nil {
		return err
	}
	type plain CompareConfig
	return n.Decode((*plain)(c))
}

// UnmarshalYAML implements yaml.Unmarshaler; it refuses unknown fields and
// keeps the values already set (the defaults) for omitted ones.
func (l *LogConfig) UnmarshalYAML(n *yaml.Node) error {
	if err := strictKeys(n, LogConfig{}, "log: "); err != nil {
		return err
	}
	type plain LogConfig
	return n.Decode((*plain)(l))
}
