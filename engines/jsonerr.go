package engines

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// JSONError turns an encoding/json error on data into one naming the
// line and column, wrapping ErrMalformed.
func JSONError(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
		line, col := LineCol(data, len(data))
		if len(bytes.TrimSpace(data)) == 0 {
			return fmt.Errorf("%w: empty input", ErrMalformed)
		}
		return fmt.Errorf("%w: line %d column %d: truncated: input ends inside a JSON value", ErrMalformed, line, col)
	}
	if off < 0 || off > int64(len(data)) {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	line, col := LineCol(data, int(off))
	return fmt.Errorf("%w: line %d column %d: %w", ErrMalformed, line, col, err)
}

// LineCol returns the 1-based line and column of byte offset off.
func LineCol(data []byte, off int) (line, col int) {
	if off > len(data) {
		off = len(data)
	}
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = off - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}
