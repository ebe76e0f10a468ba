package engines

import "errors"

var (
	// ErrUnknownEngine: no adapter registered under that name.
	ErrUnknownEngine = errors.New("unknown engine")
	// ErrMalformed: the input could not be parsed; the wrapping error
	// names the line or field.
	ErrMalformed = errors.New("malformed input")
	// ErrNoLoadMetrics: the exposition parsed but holds none of the
	// metrics the adapter needs.
	ErrNoLoadMetrics = errors.New("no load metrics")
	// ErrTooLarge: the input exceeds MaxInput.
	ErrTooLarge = errors.New("input too large")
)

// MaxInput caps how many bytes a parser reads (16 MiB).
const MaxInput = 16 << 20
