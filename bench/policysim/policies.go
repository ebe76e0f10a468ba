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

// Unbounded is dynamic-swrr without its in-flight bound
// (balancer.Config.LoadBound), kept so the report shows what the bound
// adds on top of the weigher.
const Unbounded = "dynamic-swrr-unbounded"

// Extras lists the extra rows of the report: FormulaOnly and
// Unbounded.
func Extras() []string { return []string{FormulaOnly, Unbounded} }

// extra holds configurations that tests add by name.
var extra = map[string]balancer.Config{}

// balancerConfig returns the balancer configuration of a policy name.
func balancerConfig(name string) (balancer.Config, error) {
	if c, ok := extra[name]; ok {
		return c, nil
	}
	switch name {
	case FormulaOnly:
		return balancer.Config{Policy: balancer.SWRR, Weigher: balancer.DynamicWeigher{Config: balancer.WeightConfig{Learn: -1, AdaptStep: -1}}, LoadBound: -1}, nil
	case Unbounded:
		c, err := balancer.NamedConfig("dynamic-swrr")
		c.LoadBound = -1
		return c, err
	}
	c, err := balancer.NamedConfig(name)
	if err != nil {
		return c, fmt.Errorf("policysim: %w", err)
	}
	return c, nil
}
