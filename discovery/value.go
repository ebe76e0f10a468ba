package discovery

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
)

// Value is a load quantity that may be unknown. The zero Value is unknown,
// so a field nobody filled in never reads as a valid 0 (issue 13: "unknown
// stays unknown end to end"). It marshals to JSON as the number, or null
// when unknown; a JSON heartbeat that leaves a field out sends it as
// unknown.
//
// Value is a small immutable value type; copy it freely.
type Value struct {
	v  float64
	ok bool
}

// Unknown is the unknown Value (the zero Value).
var Unknown = Value{}

// Known returns a known Value. NaN and ±Inf give Unknown: callers that build
// loads from probes need not filter them (the wire decoders, in contrast,
// reject a non-finite number with an error naming the field).
func Known(v float64) Value {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Unknown
	}
	return Value{v: v, ok: true}
}

// Get returns the value and whether it is known.
func (x Value) Get() (float64, bool) { return x.v, x.ok }

// IsKnown reports whether the value is known.
func (x Value) IsKnown() bool { return x.ok }

// Or returns the value, or def when unknown.
func (x Value) Or(def float64) float64 {
	if !x.ok {
		return def
	}
	return x.v
}

// String formats the value, or "unknown".
func (x Value) String() string {
	if !x.ok {
		return "unknown"
	}
	return strconv.FormatFloat(x.v, 'g', -1, 64)
}

// MarshalJSON implements json.Marshaler: a number, or null when unknown.
func (x Value) MarshalJSON() ([]byte, error) {
	if !x.ok {
		return []byte("null"), nil
	}
	if math.IsNaN(x.v) || math.IsInf(x.v, 0) {
		return nil, fmt.Errorf("discovery: cannot encode %v as JSON", x.v)
	}
	return strconv.AppendFloat(nil, x.v, 'g', -1, 64), nil
}

var float64Type = reflect.TypeOf(0.0)

// UnmarshalJSON implements json.Unmarshaler: null gives Unknown, a number a
// known Value; anything else is a *json.UnmarshalTypeError (so
// DecodeHeartbeatJSON names the field and reports ReasonWrongType).
func (x *Value) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*x = Unknown
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: float64Type}
	}
	*x = Value{v: f, ok: true}
	return nil
}

func jsonKind(b []byte) string {
	if len(b) == 0 {
		return "value"
	}
	switch b[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	}
	return "number " + string(b)
}

// Readiness is the engine's own view of whether it takes requests, as the
// node's agent probed it (engines' live and ready probes, and the engine's
// sleep state). It is separate from [State], which is the node's lifecycle
// (the agent's own declaration and Resource's liveness): a ready node whose
// engine is asleep stays in the list, and gateways decide what to do with
// it. The zero value is ReadinessUnknown (not probed, or an old agent).
type Readiness uint8

// Readiness values.
const (
	ReadinessUnknown  Readiness = iota
	ReadinessReady              // the ready probe answered 200
	ReadinessNotReady           // alive but loading, or not answering its probes
	ReadinessBusy               // alive but saturated (MindIE's 503 on its ready probe)
	ReadinessAsleep             // the engine is in sleep mode (weights offloaded)
	numReadiness
)

var readinessNames = [numReadiness]string{"unknown", "ready", "not_ready", "busy", "asleep"}

// String returns the wire name of r.
func (r Readiness) String() string {
	if r < numReadiness {
		return readinessNames[r]
	}
	return fmt.Sprintf("readiness(%d)", uint8(r))
}

// ParseReadiness parses a wire name ("unknown", "ready", "not_ready",
// "busy", "asleep").
func ParseReadiness(s string) (Readiness, error) {
	for i, n := range readinessNames {
		if n == s {
			return Readiness(i), nil
		}
	}
	return ReadinessUnknown, fmt.Errorf("discovery: unknown readiness %q", s)
}

// MarshalText implements encoding.TextMarshaler.
func (r Readiness) MarshalText() ([]byte, error) {
	if r >= numReadiness {
		return nil, fmt.Errorf("discovery: cannot encode readiness %d", uint8(r))
	}
	return []byte(readinessNames[r]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Readiness) UnmarshalText(b []byte) error {
	v, err := ParseReadiness(string(b))
	if err != nil {
		return inputErr(ReasonInvalid, "load.readiness", "%q is not a readiness (ready, not_ready, busy, asleep, unknown)", b)
	}
	*r = v
	return nil
}
