package policysim

import (
	"fmt"

	"github.com/switchyard-dev/switchyard/balancer"
)

// Policies lists the policies the comparison runs, the default first.
func Policies() []string {
	return []string{"dynamic-swrr", "seed-swrr", "static-swrr", "round-robin", "p2c", "ring-hash", "random"}
}

// balancerConfig returns the balancer configuration of a policy name.
func balancerConfig(name string) (balancer.Config, error) {
	c, err := balancer.NamedConfig(name)
	if err != nil {
		return c, fmt.Errorf("policysim: %w", err)
	}
	return c, nil
}
