package shadow

import (
	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard/gateway/reqkey"
)

// UnmarshalYAML implements yaml.Unmarshaler; it refuses unknown fields and
// keeps the values already set (the defaults) for omitted ones.
func (c *CompareConfig) UnmarshalYAML(n *yaml.Node) error {
	if err := reqkey.StrictKeys(n, CompareConfig{}, "compare: "); err != nil {
		return err
	}
	type plain CompareConfig
	return n.Decode((*plain)(c))
}

// UnmarshalYAML implements yaml.Unmarshaler; it refuses unknown fields and
// keeps the values already set (the defaults) for omitted ones.
func (l *LogConfig) UnmarshalYAML(n *yaml.Node) error {
	if err := reqkey.StrictKeys(n, LogConfig{}, "log: "); err != nil {
		return err
	}
	type plain LogConfig
	return n.Decode((*plain)(l))
}
