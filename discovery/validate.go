package discovery

import (
	"math"
	"net"
	"strconv"
)

// Limits on heartbeat fields. A heartbeat outside them is rejected.
const (
	MaxIDLen          = 253 // node id, app, host names
	MaxNameLen        = 64  // engine, accelerator model, protocol names
	MaxAddresses      = 16  // engine protocols per node
	MaxCards          = 4096
	MaxCapacity       = 1e6
	MaxConcurrency    = 1e7
	MaxQueue          = 1e8 // running, waiting
	MaxHeartbeatBytes = 16 << 10
	MaxCounter        = 1e15 // prefix-cache hits and queries
)

// Validate checks a heartbeat and returns an *InputError naming the first bad
// field, or nil. It never modifies hb.
func (hb *Heartbeat) Validate() error {
	if err := checkName("id", hb.ID, MaxIDLen); err != nil {
		return err
	}
	if err := checkName("app", hb.App, MaxIDLen); err != nil {
		return err
	}
	if len(hb.Addresses) == 0 {
		return inputErr(ReasonInvalid, "addresses", "at least one engine address is required")
	}
	if len(hb.Addresses) > MaxAddresses {
		return inputErr(ReasonOversized, "addresses", "%d entries, at most %d", len(hb.Addresses), MaxAddresses)
	}
	for proto, addr := range hb.Addresses {
		if err := checkName("addresses", proto, MaxNameLen); err != nil {
			return err
		}
		if err := checkHostPort("addresses."+proto, addr); err != nil {
			return err
		}
	}
	if hb.Engine != "" {
		if err := checkName("engine", hb.Engine, MaxNameLen); err != nil {
			return err
		}
	}
	if hb.Accelerator.Model != "" {
		if err := checkLabel("accelerator.model", hb.Accelerator.Model, MaxNameLen); err != nil {
			return err
		}
	}
	if c := hb.Accelerator.Count; c < 0 || c > MaxCards {
		return inputErr(ReasonInvalid, "accelerator.count", "%d cards, want 0..%d", c, MaxCards)
	}
	if err := checkFloat("capacity", hb.Capacity, 0, MaxCapacity); err != nil {
		return err
	}
	switch hb.State {
	case StateReady, StateDraining, StateOffline:
	default:
		return inputErr(ReasonInvalid, "state", "%q is not a state a node may declare (ready, draining, offline)", hb.State.String())
	}
	return hb.Load.validate()
}

func (l *Load) validate() error {
	if err := checkValue("load.utilisation", l.Utilisation, 0, 1); err != nil {
		return err
	}
	if err := checkValue("load.concurrency", l.Concurrency, 0, MaxConcurrency); err != nil {
		return err
	}
	if err := checkValue("load.running", l.Running, 0, MaxQueue); err != nil {
		return err
	}
	if err := checkValue("load.waiting", l.Waiting, 0, MaxQueue); err != nil {
		return err
	}
	if err := checkValue("load.kv_cache_usage", l.KVCacheUsage, 0, 1); err != nil {
		return err
	}
	if err := checkValue("load.prefix_cache_hits", l.PrefixCacheHits, 0, MaxCounter); err != nil {
		return err
	}
	if err := checkValue("load.prefix_cache_queries", l.PrefixCacheQueries, 0, MaxCounter); err != nil {
		return err
	}
	if err := checkValue("load.prefix_cache_hit_rate", l.PrefixCacheHitRate, 0, 1); err != nil {
		return err
	}
	if l.Readiness >= numReadiness {
		return inputErr(ReasonInvalid, "load.readiness", "%d is not a readiness (0..%d)", uint8(l.Readiness), numReadiness-1)
	}
	return nil
}

// checkValue checks a known value's range; unknown is always valid.
func checkValue(field string, v Value, lo, hi float64) error {
	if !v.ok {
		return nil
	}
	return checkFloat(field, v.v, lo, hi)
}

func checkFloat(field string, v, lo, hi float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return inputErr(ReasonInvalid, field, "%v is not a finite number", v)
	}
	if v < lo || v > hi {
		return inputErr(ReasonInvalid, field, "%g out of range [%g, %g]", v, lo, hi)
	}
	return nil
}

// checkName accepts 1..max printable ASCII bytes without spaces.
func checkName(field, s string, max int) error {
	if s == "" {
		return inputErr(ReasonInvalid, field, "empty")
	}
	if len(s) > max {
		return inputErr(ReasonOversized, field, "%d bytes, at most %d", len(s), max)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return inputErr(ReasonInvalid, field, "byte %d (0x%02x) is not printable ASCII", i, c)
		}
	}
	return nil
}

// checkLabel is checkName for human-facing names that vendors spell with
// spaces ("NVIDIA H100 80GB HBM3"): inner single spaces are allowed, leading
// or trailing ones are not.
func checkLabel(field, s string, max int) error {
	if s == "" || len(s) > max {
		return checkName(field, s, max)
	}
	if s[0] == ' ' || s[len(s)-1] == ' ' {
		return inputErr(ReasonInvalid, field, "%q has a leading or trailing space", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c >= 0x7f {
			return inputErr(ReasonInvalid, field, "byte %d (0x%02x) is not printable ASCII", i, c)
		}
	}
	return nil
}

func checkHostPort(field, addr string) error {
	if len(addr) > MaxIDLen+6 {
		return inputErr(ReasonOversized, field, "%d bytes, too long for host:port", len(addr))
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return inputErr(ReasonInvalid, field, "%q is not host:port", addr)
	}
	if err := checkName(field, host, MaxIDLen); err != nil {
		return inputErr(ReasonInvalid, field, "%q has an empty or unprintable host", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return inputErr(ReasonInvalid, field, "%q: port must be 1..65535", addr)
	}
	return nil
}
