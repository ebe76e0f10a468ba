package triton

import (
	"io"

	"github.com/switchyard-dev/switchyard/engines"
)

// Name is the registry key.
const Name = "triton"

// Dialect is this engine's entry in the engines dialect table (names,
// labels, rank rules, probes); the table in engines/dialects.go is where
// it is defined and cited.
var Dialect = engines.MustDialect(Name)

// Spec describes Triton's HTTP/gRPC endpoints.
var Spec = Dialect.Spec

// ParseLoad parses one /metrics exposition (Dialect.ParseLoad).
func ParseLoad(r io.Reader) (engines.Load, error) { return Dialect.ParseLoad(r) }
