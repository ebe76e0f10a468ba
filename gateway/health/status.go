package health

import (
	"time"

	"github.com/switchyard-dev/switchyard/balancer"
)

// Status is what the checker knows of one node, for the admin API.
type Status struct {
	// Watch says how the node is watched: "health check and outliers",
	// "outliers only" (no health endpoint, or health checks off),
	// "health check only" (outlier detection off).
	Watch string `json:"watch"`
	// Check is the probe ("GET http://10.0.0.1:8000/health"), and Rule
	// which rule chose its path; empty when the node is not probed.
	Check string `json:"check,omitempty"`
	Rule  string `json:"rule,omitempty"`
	// NoHealthEndpoint says why the node is watched by outlier detection
	// alone (a 404 on the path, a gRPC-only port...).
	NoHealthEndpoint string `json:"no_health_endpoint,omitempty"`
	// LastProbe is the last probe's result ("ok", "no answer within
	// 500ms"...).
	LastProbe string `json:"last_probe,omitempty"`
	// Healthy is false while the health check holds the node failing.
	Healthy bool `json:"healthy"`
	// ConsecutiveFailures of the health check.
	ConsecutiveFailures int `json:"consecutive_failures,omitempty"`
	// Ejected says the outlier detection ejected the node, until when.
	Ejected      bool       `json:"ejected,omitempty"`
	EjectedUntil *time.Time `json:"ejected_until,omitempty"`
	// Reason and Detail say why the node is out (or would be).
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Capped: outlier detection would eject the node, but
	// max_ejection_percent keeps it in; why.
	Capped string `json:"capped,omitempty"`
	// Excluded: the node is out of picks (balancer.ExcludeHealth). Held:
	// it would be, but it is the last node that can take requests.
	Excluded bool `json:"excluded"`
	Held     bool `json:"held,omitempty"`
	// MeanTTFBSeconds is the node's recent mean time to first byte (0
	// with too few answers); SilentSeconds how long it has not answered
	// while requests wait on it.
	MeanTTFBSeconds float64 `json:"mean_ttfb_seconds"`
	SilentSeconds   float64 `json:"silent_seconds"`
}

// publish makes the nodes' status readable (Status).
func (c *Checker) publish() {
	m := make(map[string]Status, len(c.order))
	for _, st := range c.order {
		s := Status{
			Healthy: !st.unhealthy, ConsecutiveFailures: st.failures, LastProbe: st.lastProbe,
			Ejected: st.ejected, Excluded: st.ep.Exclusions()&balancer.ExcludeHealth != 0, Held: st.held,
			MeanTTFBSeconds: st.lastMean.Seconds(), SilentSeconds: st.silent.Seconds(),
		}
		if st.out() {
			s.Reason, s.Detail = st.reason()
		}
		s.Capped = st.capped
		if st.ejected {
			u := st.until
			s.EjectedUntil = &u
		}
		probed := c.active && st.target.none == ""
		if probed {
			s.Check, s.Rule = "GET "+st.target.url, st.target.src
		}
		switch {
		case st.target.none != "":
			s.NoHealthEndpoint = st.target.none
		case st.none != "":
			s.NoHealthEndpoint = st.none
		}
		switch {
		case probed && st.none == "" && c.detect:
			s.Watch = "health check and outliers"
		case probed && st.none == "":
			s.Watch = "health check only"
		case c.detect:
			s.Watch = "outliers only"
		default:
			s.Watch = "none"
		}
		m[st.id] = s
	}
	c.status.Store(&m)
}
