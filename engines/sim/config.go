package sim

import (
	"fmt"
	"time"
)

// Config describes one simulated node. The zero value (plus defaults)
// serves model "sim-model" with the a10 profile on 127.0.0.1:0, no gRPC.
type Config struct {
	// ID names the node in X-Sim-Node and metrics (default: the HTTP
	// address once bound).
	ID string `yaml:"id"`
	// Listen is the HTTP address (default "127.0.0.1:0").
	Listen string `yaml:"listen"`
	// GRPCListen is the KServe v2 gRPC address ("" = no gRPC server).
	GRPCListen string `yaml:"grpc_listen"`
	// Model is the served model name (default "sim-model").
	Model string `yaml:"model"`
	// Engine picks the metrics dialect and readiness semantics: "vllm"
	// (default), "sglang", "tgi", "triton" or "mindie" (whose
	// /v2/health/ready answers 503 while every slot is busy).
	Engine string `yaml:"engine"`
	// Profile names a built-in profile (default "a10").
	Profile string `yaml:"profile"`
	// Override replaces any non-zero field of the built-in profile.
	Override Profile `yaml:"override"`
	// StartupDelay is the slow start: /health and readiness answer 503
	// and inference is refused until it has passed (default 0).
	StartupDelay time.Duration `yaml:"startup_delay"`
	// Slowdown multiplies Prefill and PerToken (default 1; the noisy
	// neighbour). Change it at run time with Node.SetSlowdown.
	Slowdown float64 `yaml:"slowdown"`
	// ErrorRate is the probability (0..1) that an inference request is
	// answered 500 (gRPC Internal) even in ModeHealthy (default 0).
	// Change it at run time with Node.SetErrorRate.
	ErrorRate float64 `yaml:"error_rate"`
	// HangTimeout bounds how long a request hangs in ModeHang before the
	// connection is dropped (default: until Close/Crash).
	HangTimeout time.Duration `yaml:"hang_timeout"`
}

// Validate applies defaults and checks the Config.
func (c *Config) Validate() error {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.Model == "" {
		c.Model = "sim-model"
	}
	switch c.Engine {
	case "":
		c.Engine = "vllm"
	case "vllm", "sglang", "tgi", "triton", "mindie":
	default:
		return fmt.Errorf("sim: unknown Engine %q (vllm, sglang, tgi, triton, mindie)", c.Engine)
	}
	if c.Profile == "" {
		c.Profile = "a10"
	}
	if c.Slowdown == 0 {
		c.Slowdown = 1
	}
	if c.Slowdown < 0 {
		return fmt.Errorf("sim: Slowdown must be > 0, got %g", c.Slowdown)
	}
	if c.ErrorRate < 0 || c.ErrorRate > 1 {
		return fmt.Errorf("sim: ErrorRate must be in 0..1, got %g", c.ErrorRate)
	}
	if c.StartupDelay < 0 {
		return fmt.Errorf("sim: StartupDelay must be >= 0")
	}
	if _, err := LookupProfile(c.Profile, nil); err != nil {
		return err
	}
	o := c.Override
	if o.Cards < 0 || o.Slots < 0 || o.Prefill < 0 || o.PerToken < 0 || o.MaxTokens < 0 || o.Coefficient < 0 {
		return fmt.Errorf("sim: Override fields must not be negative: %+v", o)
	}
	return nil
}

// profile resolves the built-in profile with the overrides applied.
func (c *Config) profile() Profile {
	p, _ := LookupProfile(c.Profile, nil)
	o := c.Override
	if o.Card != "" {
		p.Card = o.Card
	}
	if o.Cards > 0 {
		p.Cards = o.Cards
	}
	if o.Coefficient > 0 {
		p.Coefficient = o.Coefficient
	}
	if o.SlotsPerCoefficient > 0 {
		p.SlotsPerCoefficient = o.SlotsPerCoefficient
	}
	if o.Slots > 0 {
		p.Slots = o.Slots
	}
	if o.Prefill > 0 {
		p.Prefill = o.Prefill
	}
	if o.PerToken > 0 {
		p.PerToken = o.PerToken
	}
	if o.MaxTokens > 0 {
		p.MaxTokens = o.MaxTokens
	}
	p.QueueDepth = o.QueueDepth
	p.applyDefaults()
	return p
}
