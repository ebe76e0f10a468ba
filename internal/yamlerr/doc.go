// Package yamlerr words the errors of the YAML decoder
// (go.yaml.in/yaml/v3) for the person who wrote the file. The decoder
// speaks Go ("cannot unmarshal !!int `30` into time.Duration", "field foo
// not found in type config.MatchConfig"); Describe says the field's path
// and line, what the value should look like (a duration's unit, a list)
// and the known fields of a misspelt one, with no Go type names. Lines
// gives every field path's line, for errors found after decoding.
//
// It is a leaf: it imports nothing of Switchyard's, so that every part
// (the gateway's config, the Resource's credentials, the capacity table,
// the simulated fleet) may use it. Its functions are safe for concurrent
// use.
package yamlerr
