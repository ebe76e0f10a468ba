package rayserve

import (
	"io"

	"github.com/switchyard-dev/switchyard/engines"
)

// Name is the registry key.
const Name = "rayserve"

// Dialect is Ray Serve's entry in the engines dialect table (see
// engines/dialects.go).
var Dialect = engines.MustDialect(Name)

// Spec describes the Ray Serve proxies.
var Spec = Dialect.Spec

// ParseLoad parses a Ray metrics-export-port exposition
// (Dialect.ParseLoad).
func ParseLoad(r io.Reader) (engines.Load, error) { return Dialect.ParseLoad(r) }
