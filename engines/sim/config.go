package sim

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Engines lists the dialects Config.Engine accepts.
var Engines = []string{"vllm", "sglang", "tgi", "triton", "triton-trtllm", "trtllm-serve", "mindie"}

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
	// (default), "sglang", "tgi", "triton", "triton-trtllm" (Triton with
	// the TensorRT-LLM backend), "trtllm-serve" or "mindie" (whose
	// /v2/health/ready answers 503 while every slot is busy). See Engines.
	Engine string `yaml:"engine"`
	// DataParallel is the number of vLLM V1 engine cores (data-parallel
	// ranks) the vllm dialect reports, each as its own series labelled
	// engine="0".."N-1" (default 1). The node's running and waiting
	// requests are split evenly across them (lower ranks take the
	// remainder); each rank's KV usage is its running share over its
	// share of the slots.
	DataParallel int `yaml:"data_parallel"`
	// PrefixCache models automatic prefix caching (off by default).
	PrefixCache PrefixCacheConfig `yaml:"prefix_cache"`
	// LoRA serves LoRA adapters loaded on demand (off by default).
	LoRA LoRAConfig `yaml:"lora"`
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
	// TLS, when set, serves HTTPS on Listen (an https:// node); gRPC
	// stays plaintext. Not in fleet YAML: `switchyard sim --tls-cert`.
	TLS *tls.Config `yaml:"-"`
}

// Validate applies defaults and checks the Config.
func (c *Config) Validate() error {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.Model == "" {
		c.Model = "sim-model"
	}
	if c.Engine == "" {
		c.Engine = "vllm"
	}
	if !slices.Contains(Engines, c.Engine) {
		return fmt.Errorf("sim: unknown Engine %q (%s)", c.Engine, strings.Join(Engines, ", "))
	}
	if c.DataParallel == 0 {
		c.DataParallel = 1
	}
	if c.DataParallel < 0 || c.DataParallel > 1024 {
		return fmt.Errorf("sim: DataParallel must be in 1..1024, got %d", c.DataParallel)
	}
	if err := c.PrefixCache.validate(); err != nil {
		return err
	}
	if c.PrefixCache.Enabled() && c.PrefixCache.BlockTokens == 0 {
		c.PrefixCache.BlockTokens = 16
	}
	if err := c.LoRA.validate(); err != nil {
		return err
	}
	if c.LoRA.Enabled() {
		if c.LoRA.MaxLoRAs == 0 {
			c.LoRA.MaxLoRAs = 1
		}
		if c.LoRA.LoadTime == 0 {
			c.LoRA.LoadTime = 100 * time.Millisecond
		}
		if c.DataParallel > 1 {
			// vLLM's PrometheusStatLogger: "LoRA in DP mode is not supported yet."
			return fmt.Errorf("sim: LoRA with DataParallel > 1 is not supported (vLLM refuses it too)")
		}
		if c.LoRA.Serves(c.Model) {
			return fmt.Errorf("sim: the base model %q must not also be a LoRA adapter name", c.Model)
		}
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
	if o.Cards < 0 || o.Slots < 0 || o.Prefill < 0 || o.PrefillPerToken < 0 || o.PerToken < 0 || o.MaxTokens < 0 || o.Coefficient < 0 {
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
	if o.PrefillPerToken > 0 {
		p.PrefillPerToken = o.PrefillPerToken
	}
	if o.MaxTokens > 0 {
		p.MaxTokens = o.MaxTokens
	}
	p.QueueDepth = o.QueueDepth
	p.applyDefaults()
	return p
}
