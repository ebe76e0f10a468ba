package flow

import (
	"errors"
	"fmt"
)

// Outcome is how a request that found its route full left the queue
// (Config.Observe): the "outcome" label of the gateway's queue metrics.
type Outcome uint8

const (
	// Dispatched: it waited and got a slot.
	Dispatched Outcome = iota
	// TimedOut: its deadline passed while it waited, or had passed when
	// it arrived (ErrQueueTimeout).
	TimedOut
	// Cancelled: its client went away while it waited (the context's
	// error).
	Cancelled
	// Displaced: a more urgent arrival took its place in the full queue
	// (ErrQueueFull after a wait).
	Displaced
	// Rejected: the queue was full when it arrived and held nothing less
	// urgent to displace (ErrQueueFull at once).
	Rejected
	// NumOutcomes is the number of outcomes.
	NumOutcomes
)

var outcomeNames = [NumOutcomes]string{"dispatched", "timeout", "cancelled", "displaced", "rejected"}

func (o Outcome) String() string {
	if o < NumOutcomes {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

// outcomeOf is the outcome of a wait that ended with err.
func outcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return Dispatched
	case errors.Is(err, ErrQueueTimeout):
		return TimedOut
	case errors.Is(err, ErrQueueFull):
		return Displaced
	}
	return Cancelled
}
