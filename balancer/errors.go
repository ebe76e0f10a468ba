package balancer

import (
	"errors"
	"fmt"
)

// ErrNoEndpoint is matched (errors.Is) by every error a pick returns when no
// node is eligible. Callers answer the request with 503 and do not retry on
// the same table.
var ErrNoEndpoint = errors.New("balancer: no eligible endpoint")

// NoEndpointError is the typed error returned when a pick finds nothing
// eligible. It says how many nodes the table had and how many were ready.
type NoEndpointError struct {
	Nodes int // nodes in the table
	Ready int // nodes whose table state was ready
}

func (e *NoEndpointError) Error() string {
	return fmt.Sprintf("balancer: no eligible endpoint (%d nodes, %d ready, the rest excluded)", e.Nodes, e.Ready)
}

// Is reports whether target is ErrNoEndpoint.
func (e *NoEndpointError) Is(target error) bool { return target == ErrNoEndpoint }
