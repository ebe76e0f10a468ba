package policysim

import (
	"fmt"

	"github.com/switchyard-dev/switchyard/balancer"
)

// Policies lists the policies the comparison runs, the default first.
func Policies() []string {
	return []string{"dynamic-swrr", "seed-swrr", "static-swrr", "round-robin", "p2c", "ring-hash", "random"}
}

// FormulaOnly is DynamicWeigher with the feedback and adaptive step of
// issue 7 turned off: the default weigher as it was before, kept so the
// report can show what the change did.
const FormulaOnly = "dynamic-formula-only"

// BoundedPrototype is dynamic-swrr plus an in-flight bound applied where
// the gateway picks (a node over 1.25 × its weighted share of the route's
// in-flight requests is skipped, ring-hash's bound): a prototype of a
// proposed change, not something the balancer or gateway does today.
const BoundedPrototype = "dynamic-swrr+bound"

// Extras lists the extra rows of the report: FormulaOnly and
// BoundedPrototype.
func Extras() []string { return []string{FormulaOnly, BoundedPrototype} }

// extra holds configurations that tests add by name.
var extra = map[string]balancer.Config{}

// balancerConfig returns the balancer configuration of a policy name.
func balancerConfig(name string) (balancer.Config, error) {
	if c, ok := extra[name]; ok {
		return c, nil
	}
	switch name {
	case FormulaOnly:
		return balancer.Config{Policy: balancer.SWRR, Weigher: balancer.DynamicWeigher{Config: balancer.WeightConfig{Learn: -1, AdaptStep: -1}}}, nil
	case BoundedPrototype:
		name = "dynamic-swrr"
	}
	c, err := balancer.NamedConfig(name)
	if err != nil {
		return c, fmt.Errorf("policysim: %w", err)
	}
	return c, nil
}
