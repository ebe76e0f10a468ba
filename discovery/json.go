package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// DecodeHeartbeatJSON decodes one JSON heartbeat (the body of POST
// /v1/heartbeat) into hb and validates it. It returns an *InputError naming
// the field: ReasonOversized above MaxHeartbeatBytes, ReasonMalformed for bad
// JSON or trailing data, ReasonWrongType for a field of the wrong type and
// ReasonInvalid for an absurd or missing value. Unknown fields are ignored so
// newer agents can add fields.
func DecodeHeartbeatJSON(body []byte, hb *Heartbeat) error {
	if len(body) > MaxHeartbeatBytes {
		return inputErr(ReasonOversized, "", "body of %d bytes, at most %d", len(body), MaxHeartbeatBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(hb); err != nil {
		return jsonErr(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return inputErr(ReasonMalformed, "", "trailing data after the heartbeat object")
	}
	return hb.Validate()
}

func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	var ie *InputError
	switch {
	case errors.As(err, &ie):
		return ie
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(root)"
		}
		return inputErr(ReasonWrongType, field, "JSON %s where %s belongs", te.Value, te.Type)
	case errors.As(err, &se):
		return inputErr(ReasonMalformed, "", "bad JSON at byte %d: %v", se.Offset, se)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return inputErr(ReasonMalformed, "", "empty or truncated JSON")
	default:
		return inputErr(ReasonMalformed, "", "%v", err)
	}
}
