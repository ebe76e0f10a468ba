package split

import "errors"

// ErrInvalidConfig is wrapped by every error Config.Validate returns, so
// callers can tell a bad config from other failures with errors.Is.
var ErrInvalidConfig = errors.New("split: invalid config")
