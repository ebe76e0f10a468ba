package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// LoadSource supplies the node's current load for each heartbeat.
//
// Load is called from the agent's beat goroutine once per heartbeat with a
// context whose deadline is half the heartbeat period; it must return by
// then. On error the agent sends the last good load.
type LoadSource interface {
	Load(ctx context.Context) (discovery.Load, error)
}

// StaticLoad is a LoadSource that always reports the same load (with
// SampledAt set to the call time). It is the default until an engines probe
// is plugged in.
type StaticLoad discovery.Load

// Load implements LoadSource.
func (s StaticLoad) Load(context.Context) (discovery.Load, error) {
	l := discovery.Load(s)
	l.SampledAt = time.Now()
	return l, nil
}

var _ LoadSource = StaticLoad{}

// LoadFunc adapts a function to LoadSource.
type LoadFunc func(ctx context.Context) (discovery.Load, error)

// Load implements LoadSource.
func (f LoadFunc) Load(ctx context.Context) (discovery.Load, error) { return f(ctx) }

// Config configures an Agent. Every field's doc states its default.
type Config struct {
	// Servers are the Resource instances' host:port, in failover order
	// (the agent starts at a random one). Required.
	Servers []string
	// Token is the shared bearer token.
	Token string
	// TLS, when set, dials Resource with TLS (set Certificates for mTLS).
	TLS *tls.Config

	// NodeID, App, Addresses, Engine, Accelerator and Capacity describe the
	// node; see discovery.Heartbeat. NodeID, App and Addresses are required.
	NodeID      string
	App         string
	Addresses   map[string]string
	Engine      string
	Accelerator discovery.Accelerator
	Capacity    float64
	// Load supplies the load of every beat. Default StaticLoad{} (every
	// quantity unknown).
	Load LoadSource

	// Period is the heartbeat period. Default 1 s.
	Period time.Duration
	// Jitter spreads each interval uniformly over Period × [1-Jitter,
	// 1+Jitter]. Default 0.1; at most 0.3 (so three missed beats still mean
	// a dead node).
	Jitter float64
	// InitialDelay is the largest random delay before the first beat.
	// Default Period / 2; negative means none.
	InitialDelay time.Duration
	// DrainTimeout bounds Drain. Default 30 s.
	DrainTimeout time.Duration
	// DrainPoll is how often Drain asks Resource whether every gateway
	// acknowledged. Default 20 ms.
	DrainPoll time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c *Config) applyDefaults() {
	if c.Load == nil {
		c.Load = StaticLoad{}
	}
	if c.Period == 0 {
		c.Period = time.Second
	}
	if c.Jitter == 0 {
		c.Jitter = 0.1
	}
	if c.InitialDelay == 0 {
		c.InitialDelay = c.Period / 2
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.DrainPoll == 0 {
		c.DrainPoll = 20 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate returns an error naming the first bad field.
func (c *Config) Validate() error {
	if len(c.Servers) == 0 {
		return errors.New("agent: config: Servers is empty")
	}
	hb := c.heartbeat()
	hb.State = discovery.StateReady
	if err := hb.Validate(); err != nil {
		return fmt.Errorf("agent: config: %w", err)
	}
	switch {
	case c.Period < 10*time.Millisecond:
		return fmt.Errorf("agent: config: Period %v below 10ms", c.Period)
	case c.Jitter < 0 || c.Jitter > 0.3:
		return fmt.Errorf("agent: config: Jitter %v must be in [0, 0.3]", c.Jitter)
	case c.DrainTimeout <= 0:
		return fmt.Errorf("agent: config: DrainTimeout %v must be positive", c.DrainTimeout)
	case c.DrainPoll < time.Millisecond:
		return fmt.Errorf("agent: config: DrainPoll %v below 1ms", c.DrainPoll)
	}
	return nil
}

func (c *Config) heartbeat() discovery.Heartbeat {
	return discovery.Heartbeat{
		ID: c.NodeID, App: c.App, Addresses: c.Addresses, Engine: c.Engine,
		Accelerator: c.Accelerator, Capacity: c.Capacity,
	}
}
