package balancer

import (
	"math"
	"time"
)

// This file turns a node's engine signals (Load.Waiting, Load.KVCache and
// readiness, issue 13) into what the table uses: the aged queue a
// two-choice pick adds to the node's in-flight count, the weight factor
// for KV-cache pressure, and slow start after a long absence.

// DefaultQueueHalfLife is Config.QueueHalfLife's default.
//
// Why age the reported queue at all: it was true at SampledAt. Since then
// the engine has kept draining it, and every request this gateway sent it
// since is already in the gateway's own in-flight count, so an old queue
// is both out of date and partly counted twice. Halving it every 2 s (two
// heartbeat periods) keeps a fresh sample almost whole (70 % at 1 s, as
// old as a sample usually is when a table is built) and lets the
// gateway's own view take over within a few seconds: 18 % at 5 s, nothing
// after signalExpiry. A node whose agent stops reporting thus falls back
// to in-flight-only picks instead of carrying a phantom queue.
// bench/results/signals.md compares half-lives.
const DefaultQueueHalfLife = 2 * time.Second

// DefaultKVPressure is Config.KVPressure's default: the KV-cache usage
// above which a node's weight is lowered. Past about 90 % an engine with
// paged attention (vLLM, SGLang) has little room left for the growing
// sequences it runs and starts holding new requests back or preempting
// running ones (recomputing them later), so new work is better sent where
// the cache has room.
const DefaultKVPressure = 0.9

// KVFloor is the share of its weight a node keeps with a full KV cache:
// the weight falls linearly from whole at Config.KVPressure to KVFloor at
// 1. It is not 0 so that a node stays on the schedule and is seen to
// recover.
const KVFloor = 0.1

// signalExpiry is how old an engine signal (waiting, KV-cache usage) may
// be and still count; the weighers' default expiry of a sample.
const signalExpiry = 10 * time.Second

// maxQueue bounds a reported queue so one absurd report cannot overflow
// the comparison.
const maxQueue = 1 << 20

// notOwn returns the waiting requests the engine reported less those that
// must be this gateway's own, which its pick already counts as in flight:
// with inflight requests from this gateway on a node that runs only
// running at a time, at least inflight − running of them are waiting. With
// one gateway that is about the whole queue, and the comparison is the
// in-flight one of before (bench/results/signals.md: counting the queue
// twice there cost p99); with several gateways, each of which sees only
// its share of a node's requests, the rest of the queue counts. Unknown
// running (NaN) leaves waiting as it is; unknown waiting stays unknown.
func notOwn(waiting, running float64, inflight int32) float64 {
	if running >= 0 {
		return waiting - max(float64(inflight)-running, 0)
	}
	return waiting
}

// queueTerm returns the requests a two-choice pick adds to the node's
// in-flight count: its reported waiting requests w, halved every halfLife
// of the sample's age (now and sampledAt in Unix ns; 0 for never). It is 0
// when w is unknown (NaN), not positive, older than signalExpiry (or
// further in the future, a clock far off), or when halfLife is negative.
func queueTerm(w float64, sampledAt, now int64, halfLife time.Duration) float32 {
	if !(w > 0) || halfLife < 0 || sampledAt == 0 {
		return 0
	}
	age := now - sampledAt
	if age >= int64(signalExpiry) || age <= -int64(signalExpiry) {
		return 0
	}
	w = min(w, maxQueue)
	if age <= 0 || halfLife == 0 {
		return float32(w)
	}
	return float32(w * math.Exp2(-float64(age)/float64(halfLife)))
}

// kvFactor returns the share of its weight a node keeps at KV-cache usage
// kv (sampled at sampledAt): 1 up to threshold, then falling linearly to
// KVFloor at a full cache. Unknown (NaN) or stale usage, or a threshold
// that is not in (0, 1), give 1.
func kvFactor(kv float64, sampledAt, now int64, threshold float64) float64 {
	if !(kv > threshold) || !(threshold > 0 && threshold < 1) || sampledAt == 0 {
		return 1
	}
	if age := now - sampledAt; age >= int64(signalExpiry) || age <= -int64(signalExpiry) {
		return 1
	}
	return max((1-min(kv, 1))/(1-threshold), KVFloor)
}

// readyMemory is how long a node may be out of Ready (not ready, asleep,
// draining) and still come back at full weight; after a longer absence it
// slow-starts like a new node (WeightConfig.SlowStart), its caches cold. A
// minute covers a failed probe, a brief restart of the agent or a
// MindIE-style busy spell; an engine woken from sleep or reloaded after
// minutes ramps up.
const readyMemory = time.Minute

// noteReady records whether e's node is Ready in the table being built at
// now. It returns true when the node comes back to Ready after an absence
// longer than readyMemory (its slow start then counts from now). A node
// never Ready before, listed out of Ready first, counts its absence from
// when it was first listed.
func (e *Endpoint) noteReady(ready bool, now time.Time) (restart bool) {
	if !ready {
		if e.unready.IsZero() {
			e.unready = now
		}
		return false
	}
	if e.unready.IsZero() {
		return false
	}
	restart = now.Sub(e.unready) >= readyMemory
	e.unready = time.Time{}
	return restart
}
