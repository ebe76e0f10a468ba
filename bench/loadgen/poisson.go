package loadgen

import (
	"math/rand/v2"
	"time"
)

// PoissonSchedule returns the send offsets of a Poisson arrival process of
// rate per second over [0, d): exponential gaps with mean 1/rate, at most
// limit offsets (limit <= 0: no count bound). It is deterministic given r.
func PoissonSchedule(r *rand.Rand, rate float64, d time.Duration, limit int) []time.Duration {
	if !(rate > 0) || d <= 0 {
		return nil
	}
	n := int(rate*d.Seconds()*1.05) + 16
	if limit > 0 {
		n = min(n, limit)
	}
	out := make([]time.Duration, 0, n)
	var t float64
	end := d.Seconds()
	for limit <= 0 || len(out) < limit {
		t += r.ExpFloat64() / rate
		if t >= end {
			break
		}
		out = append(out, time.Duration(t*1e9))
	}
	return out
}
