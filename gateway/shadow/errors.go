package shadow

import "errors"

var (
	// ErrInvalidConfig is wrapped by every error Config.Validate returns.
	ErrInvalidConfig = errors.New("shadow: invalid config")
	// ErrClosed is returned by Close when called twice.
	ErrClosed = errors.New("shadow: mirror closed")
	// ErrCloseTimeout is returned by Close when a Sender did not return
	// within Config.CloseTimeout after cancellation; its goroutines finish
	// on their own when Send returns.
	ErrCloseTimeout = errors.New("shadow: close timed out waiting for senders")
)
