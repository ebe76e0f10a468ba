package live

import (
	"context"
	"fmt"
	"slices"

	"github.com/switchyard-dev/switchyard/bench/gwproc"
)

// configYAML is the gateway's config for one run: one route over the
// app's nodes from Resource, affinity on or off, listening on ports of
// the gateway's choosing.
func configYAML(resource string, affinityOn bool) string {
	off := ""
	if !affinityOn {
		off = "    affinity: {off: true}\n"
	}
	return fmt.Sprintf(`listen: {client: %q, admin: %q}
discovery: {servers: [%q], token: %q}
weight_period: 1s
routes:
  - name: %s
    app: %s
    match: {models: [%s]}
    timeouts: {first_byte: 60s, total: 120s}
%s`, gwproc.AnyPort, gwproc.AnyPort, resource, token, Model, Model, Model, off)
}

// startGateway runs the gateway command with a config for the fleet and
// waits until it serves.
func startGateway(ctx context.Context, cfg *Config, resource string, affinityOn bool) (*gwproc.Proc, error) {
	const conf = "gateway.yaml" // in the gateway's working directory
	p, err := gwproc.Start(ctx, gwproc.Config{
		Command: append(slices.Clone(cfg.Gateway), "--config", conf),
		Env:     cfg.Env,
		Files:   map[string]string{conf: configYAML(resource, affinityOn)},
	})
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	return p, nil
}
