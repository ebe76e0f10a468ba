package discovery

import (
	"errors"
	"fmt"
)

// Reason classifies why Resource rejected an input. Each reason has its own
// rejection counter (see [Rejections]).
type Reason uint8

// Rejection reasons.
const (
	ReasonBadToken  Reason = iota // missing or wrong bearer token
	ReasonMalformed               // not decodable (bad JSON, truncated frame, trailing bytes)
	ReasonOversized               // frame, body or field longer than allowed
	ReasonWrongType               // a field of the wrong type (string where a number belongs)
	ReasonInvalid                 // decodable but absurd or missing (utilisation 7.3, negative cards, NaN, empty id)
	ReasonForbidden               // a valid credential that may not do this (role, app, node id, address, capacity cap)
	ReasonLimit                   // an instance limit is reached (nodes per app, apps, subscribers)
	ReasonStale                   // a heartbeat older than the one applied (its incarnation or sequence number)
	numReasons
)

var reasonNames = [numReasons]string{"bad_token", "malformed", "oversized", "wrong_type", "invalid_value", "forbidden", "limit", "stale"}

// String returns the reason's metric label.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Exported errors callers act on.
var (
	// ErrBadToken: the bearer token is missing or wrong (or the TLS identity
	// unknown). Do not retry with the same credential.
	ErrBadToken = errors.New("discovery: bad token")
	// ErrForbidden: the credential is valid but may not do this (its role,
	// or the apps, node ids or addresses it is bound to). Do not retry.
	ErrForbidden = errors.New("discovery: forbidden")
	// ErrUnreachable: no Resource instance answered. The client keeps its
	// last list and reports it stale.
	ErrUnreachable = errors.New("discovery: no resource instance reachable")
)

// InputError is a rejected input: it names the field (dotted JSON path, e.g.
// "load.utilisation"; empty for whole-input problems) and the problem.
// Match it with errors.As; Reason selects the rejection counter.
type InputError struct {
	Reason  Reason
	Field   string
	Problem string
}

func (e *InputError) Error() string {
	if e.Field == "" {
		return "discovery: " + e.Reason.String() + ": " + e.Problem
	}
	return fmt.Sprintf("discovery: %s: field %q: %s", e.Reason, e.Field, e.Problem)
}

func inputErr(r Reason, field, format string, args ...any) *InputError {
	return &InputError{Reason: r, Field: field, Problem: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the rejection reason carried by err, or ReasonMalformed if
// err carries none.
func ReasonOf(err error) Reason {
	var ie *InputError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	if errors.Is(err, ErrBadToken) {
		return ReasonBadToken
	}
	if errors.Is(err, ErrForbidden) {
		return ReasonForbidden
	}
	return ReasonMalformed
}
