package engines

import (
	"encoding/json"
	"math"
	"strconv"
)

// Value is a number that may be unknown. The zero Value is unknown, so a
// field nobody filled in never reads as a valid 0. It marshals to JSON as
// the number, or null when unknown.
//
// Value is a small immutable value type; copy it freely.
type Value struct {
	v  float64
	ok bool
}

// Unknown is the unknown Value (the zero Value).
var Unknown = Value{}

// Known returns a known Value. NaN and ±Inf give Unknown.
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
	if math.Abs(x.v) < 1e21 {
		// Plain decimal: byte counts read as integers, not 3.9e+10.
		return strconv.AppendFloat(nil, x.v, 'f', -1, 64), nil
	}
	return strconv.AppendFloat(nil, x.v, 'g', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler: null gives Unknown.
func (x *Value) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*x = Unknown
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*x = Known(f)
	return nil
}
