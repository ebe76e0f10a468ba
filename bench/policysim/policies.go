package policysim

import (
	"fmt"

	"github.com/switchyard-dev/switchyard/balancer"
)

// Policies lists the policies the comparison runs, the default first.
func Policies() []string {
	return []string{"dynamic-swrr", "seed-swrr", "static-swrr", "round-robin", "p2c", "ring-hash", "random"}
}

// Extras lists the extra rows of the report, which take the default
// apart: queue-blind (the default with the engines' queues unknown, as
// before issue 13: in-flight counts alone), headroom-swrr (the default
// until issue 7's follow-up: HeadroomWeigher, one choice with the in-flight
// bound), capacity-c2 (the default's two choices over plain capacity
// weights: what the weigher adds) and throughput-c1 (the default's weigher
// with one choice: what the second choice adds).
func Extras() []string {
	return []string{"queue-blind", "headroom-swrr", "capacity-c2", "throughput-c1"}
}

// ExtraNote returns the report's note on an extra row, or "".
func ExtraNote(name string) string {
	switch name {
	case "queue-blind":
		return "the default with engine queues unknown: before issue 13"
	case "headroom-swrr":
		return "the default before issue 7's follow-up"
	case "capacity-c2":
		return "the default's two choices, capacity weights"
	case "throughput-c1":
		return "the default's weights, one choice"
	}
	return ""
}

// extra holds configurations that tests add by name.
var extra = map[string]balancer.Config{}

// balancerConfig returns the balancer configuration of a policy name.
func balancerConfig(name string) (balancer.Config, error) {
	if c, ok := extra[name]; ok {
		return c, nil
	}
	switch name {
	case "queue-blind":
		return balancer.Config{}, nil // the default; its nodes hide their queues (hideQueue)
	case "capacity-c2":
		return balancer.Config{Policy: balancer.SWRR, Weigher: balancer.StaticWeigher{}, Choices: 2}, nil
	case "throughput-c1":
		return balancer.Config{Policy: balancer.SWRR, Weigher: balancer.ThroughputWeigher{}, Choices: 1, LoadBound: -1}, nil
	}
	c, err := balancer.NamedConfig(name)
	if err != nil {
		return c, fmt.Errorf("policysim: %w", err)
	}
	return c, nil
}
