package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/yamlerr"
)

// FleetConfig describes many nodes (YAML):
//
//	defaults:            # applied to every node (any Config field)
//	  model: llama-3-8b
//	  override: {prefill: 20ms, per_token: 4ms}
//	nodes:
//	  - {id: h100-a, profile: h100, listen: "127.0.0.1:9001", grpc_listen: "127.0.0.1:9101"}
//	  - {id: a10, profile: a10, count: 4}   # a10-0..a10-3 on free ports
//
// A "ray" section adds a simulated Ray Serve cluster (see RayConfig);
// "nodes" may then be empty.
type FleetConfig struct {
	Defaults Config      `yaml:"defaults"`
	Nodes    []FleetNode `yaml:"nodes"`
	Ray      *RayConfig  `yaml:"ray"`
}

// FleetNode is one entry; Count > 1 starts that many copies, with ids
// suffixed -0, -1, ... and, when the listen ports are not 0, ports
// incremented per copy.
type FleetNode struct {
	Config `yaml:",inline"`
	Count  int `yaml:"count"`
}

// LoadFleet reads a fleet YAML file.
func LoadFleet(path string) (FleetConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return FleetConfig{}, fmt.Errorf("sim: %w", err)
	}
	return ParseFleet(b)
}

// ParseFleet parses fleet YAML; unknown fields are errors.
func ParseFleet(b []byte) (FleetConfig, error) {
	var fc FleetConfig
	if err := yamlerr.DecodeStrict(b, &fc); err != nil {
		if errors.Is(err, io.EOF) {
			return FleetConfig{}, errors.New("sim: fleet: empty file")
		}
		return FleetConfig{}, fmt.Errorf("sim: fleet: %w", err)
	}
	if len(fc.Nodes) == 0 && fc.Ray == nil {
		return FleetConfig{}, fmt.Errorf("sim: fleet: no nodes")
	}
	for i, n := range fc.Nodes {
		if n.Count < 0 {
			return FleetConfig{}, fmt.Errorf("sim: fleet: nodes[%d].count must be >= 0", i)
		}
	}
	return fc, nil
}

// Configs expands the fleet into one Config per node.
func (fc FleetConfig) Configs() ([]Config, error) {
	var out []Config
	for i, fn := range fc.Nodes {
		count := max(fn.Count, 1)
		for k := 0; k < count; k++ {
			c := merge(fc.Defaults, fn.Config)
			if count > 1 {
				if c.ID == "" {
					c.ID = "node" + strconv.Itoa(i)
				}
				c.ID += "-" + strconv.Itoa(k)
				var err error
				if c.Listen, err = bump(c.Listen, k); err != nil {
					return nil, fmt.Errorf("sim: fleet: nodes[%d].listen: %w", i, err)
				}
				if c.GRPCListen, err = bump(c.GRPCListen, k); err != nil {
					return nil, fmt.Errorf("sim: fleet: nodes[%d].grpc_listen: %w", i, err)
				}
			}
			if err := c.Validate(); err != nil {
				// Validate's errors start with "sim: ", which this one
				// already says.
				return nil, fmt.Errorf("sim: fleet: nodes[%d]: %s", i, strings.TrimPrefix(err.Error(), "sim: "))
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func bump(addr string, k int) (string, error) {
	if addr == "" || k == 0 {
		return addr, nil
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", err
	}
	if port == 0 {
		return addr, nil
	}
	return net.JoinHostPort(h, strconv.Itoa(port+k)), nil
}

// merge overlays node fields on defaults (non-zero wins).
func merge(d, n Config) Config {
	c := d
	if n.ID != "" {
		c.ID = n.ID
	}
	if n.Listen != "" {
		c.Listen = n.Listen
	}
	if n.GRPCListen != "" {
		c.GRPCListen = n.GRPCListen
	}
	if n.Model != "" {
		c.Model = n.Model
	}
	if n.Engine != "" {
		c.Engine = n.Engine
	}
	if n.Profile != "" {
		c.Profile = n.Profile
	}
	if n.StartupDelay != 0 {
		c.StartupDelay = n.StartupDelay
	}
	if n.Slowdown != 0 {
		c.Slowdown = n.Slowdown
	}
	if n.ErrorRate != 0 {
		c.ErrorRate = n.ErrorRate
	}
	if n.HangTimeout != 0 {
		c.HangTimeout = n.HangTimeout
	}
	if n.DataParallel != 0 {
		c.DataParallel = n.DataParallel
	}
	if n.PrefixCache.Blocks != 0 {
		c.PrefixCache.Blocks = n.PrefixCache.Blocks
	}
	if n.PrefixCache.BlockTokens != 0 {
		c.PrefixCache.BlockTokens = n.PrefixCache.BlockTokens
	}
	if len(n.LoRA.Adapters) > 0 {
		c.LoRA.Adapters = n.LoRA.Adapters
	}
	if n.LoRA.Prefix != "" {
		c.LoRA.Prefix = n.LoRA.Prefix
	}
	if n.LoRA.MaxLoRAs != 0 {
		c.LoRA.MaxLoRAs = n.LoRA.MaxLoRAs
	}
	if n.LoRA.LoadTime != 0 {
		c.LoRA.LoadTime = n.LoRA.LoadTime
	}
	if n.TLS != nil {
		c.TLS = n.TLS
	}
	o, no := &c.Override, n.Override
	if no.Card != "" {
		o.Card = no.Card
	}
	if no.Cards != 0 {
		o.Cards = no.Cards
	}
	if no.Coefficient != 0 {
		o.Coefficient = no.Coefficient
	}
	if no.SlotsPerCoefficient != 0 {
		o.SlotsPerCoefficient = no.SlotsPerCoefficient
	}
	if no.Slots != 0 {
		o.Slots = no.Slots
	}
	if no.QueueDepth != 0 {
		o.QueueDepth = no.QueueDepth
	}
	if no.Prefill != 0 {
		o.Prefill = no.Prefill
	}
	if no.PerToken != 0 {
		o.PerToken = no.PerToken
	}
	if no.PrefillPerToken != 0 {
		o.PrefillPerToken = no.PrefillPerToken
	}
	if no.MaxTokens != 0 {
		o.MaxTokens = no.MaxTokens
	}
	return c
}

// Fleet is a set of running nodes, and the Ray cluster if configured.
type Fleet struct {
	nodes []*Node
	ray   *RayCluster
}

// StartFleet starts every node of fc; on error, the ones started are
// closed.
func StartFleet(ctx context.Context, fc FleetConfig) (*Fleet, error) {
	cfgs, err := fc.Configs()
	if err != nil {
		return nil, err
	}
	f := &Fleet{}
	for _, c := range cfgs {
		n, err := Start(ctx, c)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.nodes = append(f.nodes, n)
	}
	if fc.Ray != nil {
		rc := *fc.Ray
		// Replica templates inherit the fleet defaults.
		rc.Apps = append([]RayAppConfig(nil), rc.Apps...)
		for i := range rc.Apps {
			rc.Apps[i].Replica = merge(fc.Defaults, rc.Apps[i].Replica)
		}
		r, err := StartRay(ctx, rc)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.ray = r
	}
	return f, nil
}

// Ray returns the Ray cluster, or nil without a "ray" section.
func (f *Fleet) Ray() *RayCluster { return f.ray }

// Nodes returns the running nodes (do not modify the slice).
func (f *Fleet) Nodes() []*Node { return f.nodes }

// Node returns the node with the given id, or nil.
func (f *Fleet) Node(id string) *Node {
	for _, n := range f.nodes {
		if n.ID() == id {
			return n
		}
	}
	return nil
}

// Close closes every node and the Ray cluster.
func (f *Fleet) Close() {
	for _, n := range f.nodes {
		_ = n.Close()
	}
	if f.ray != nil {
		f.ray.Close()
	}
}
