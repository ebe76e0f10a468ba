package policysim

import (
	"fmt"
	"math"
	"time"

	"github.com/switchyard-dev/switchyard/engines/capacity"
)

// CardType is one kind of node in the fleet.
type CardType struct {
	// Name is the card (or "cpu").
	Name string
	// Share is the fraction of nodes of this type.
	Share float64
	// Capacity is what the node reports to the balancer: cards × the card
	// coefficient of engines/capacity (cores × the core coefficient for
	// CPU nodes). It is the datasheet figure, not the node's true speed.
	Capacity float64
	// Slots is how many requests the node runs at once.
	Slots int
	// Service is the mean service time of one request on a nominal node
	// of this type.
	Service time.Duration
}

// Config is one simulation run. The zero value is not runnable; start from
// DefaultConfig.
type Config struct {
	// Nodes is the fleet size at the start (churn keeps it constant).
	Nodes int
	// Duration is the simulated time during which requests arrive.
	Duration time.Duration
	// Warmup is the first part of Duration whose requests are not measured.
	Warmup time.Duration
	// Load is the offered load as a fraction of the fleet's capacity: the
	// sum over the starting nodes of slots / mean service time, with no
	// noisy neighbours.
	Load float64
	// Policy is a balancer.NamedConfig name.
	Policy string
	// Seed fixes every draw the simulation makes.
	Seed uint64

	// Types is the fleet mix.
	Types []CardType
	// SpeedSigma is the spread of a node's true speed around its type's
	// nominal one: a lognormal factor (mean 1) fixed for the node's life,
	// so the datasheet capacity is only approximately right.
	SpeedSigma float64
	// SizeSigma is the spread of request sizes: each request's service time
	// is its node's mean × a lognormal factor with mean 1.
	SizeSigma float64
	// QueueSlots bounds a node's waiting queue at QueueSlots × its slots;
	// a request arriving to a full queue is dropped (a 429).
	QueueSlots int

	// NoisyShare is the average fraction of nodes slowed by a noisy
	// neighbour at any time; an episode slows its node by a factor drawn
	// uniformly from [NoisyMinFactor, NoisyMaxFactor] for a duration drawn
	// uniformly from [NoisyMinTime, NoisyMaxTime].
	NoisyShare                     float64
	NoisyMinFactor, NoisyMaxFactor float64
	NoisyMinTime, NoisyMaxTime     time.Duration

	// ChurnPerMinute is the fraction of nodes that leave per minute; as
	// many new nodes join (of a random type). CrashShare of departures are
	// crashes (everything on the node is lost at once; the node stays
	// listed until its heartbeats time out after HeartbeatTTL); the rest
	// are graceful pre-emptions (the node marks itself offline in its next
	// heartbeat, keeps serving, and is killed Grace later, losing what is
	// still running).
	ChurnPerMinute float64
	CrashShare     float64
	Grace          time.Duration
	HeartbeatTTL   time.Duration

	// Heartbeat is the load sampling period; Rebuild the table period.
	Heartbeat time.Duration
	Rebuild   time.Duration

	// Gateways is how many gateways share the fleet (0 counts as 1). Each
	// arrival goes to one of them at random (evenly); each keeps its own
	// tables, in-flight counts and observations, rebuilt on its own cycle
	// (the cycles spread over the Rebuild period), and all read the same
	// heartbeats. With more than one, a gateway's in-flight count on a
	// node is only its own share of what the node holds; the engine's
	// reported queue is the one signal that shows the rest.
	Gateways int
}

// gateways returns the number of gateways, at least 1.
func (c *Config) gateways() int { return max(c.Gateways, 1) }

// DefaultConfig returns the fleet, workload and noise of the policy
// comparison: 10,000 nodes, 6 minutes with 1 minute of warm-up.
//
// The fleet mix (card coefficients from engines/capacity's embedded table):
// 15 % H100 nodes (1 card, 3.17), 25 % Ascend 910B (1 card, 1.00), 35 % A10
// (1 card, 0.40) and 25 % CPU nodes (64 cores × 0.002 = 0.128). A node's
// throughput is proportional to its capacity, split between batch slots and
// per-request speed: slots = round(8 × capacity^0.7) (at least 1) and mean
// service time = 8 s × capacity^−0.3, so an H100 runs 18 requests of ~5.7 s
// and a CPU node 2 of ~14 s.
func DefaultConfig() Config {
	tab := capacity.Default()
	type spec struct {
		name  string
		share float64
		cap   float64
	}
	specs := []spec{
		{"h100", 0.15, tab.ForCards("H100", 1).Value},
		{"910b", 0.25, tab.ForCards("Ascend910B", 1).Value},
		{"a10", 0.35, tab.ForCards("A10", 1).Value},
		{"cpu", 0.25, tab.CPU(64).Value},
	}
	types := make([]CardType, len(specs))
	for i, s := range specs {
		types[i] = CardType{
			Name:     s.name,
			Share:    s.share,
			Capacity: s.cap,
			Slots:    max(1, int(math.Round(8*math.Pow(s.cap, 0.7)))),
			Service:  time.Duration(8 * math.Pow(s.cap, -0.3) * float64(time.Second)),
		}
	}
	return Config{
		Nodes:          10000,
		Duration:       6 * time.Minute,
		Warmup:         time.Minute,
		Load:           0.8,
		Policy:         "dynamic-swrr",
		Seed:           1,
		Types:          types,
		SpeedSigma:     0.15,
		SizeSigma:      0.5,
		QueueSlots:     4,
		NoisyShare:     0.05,
		NoisyMinFactor: 2,
		NoisyMaxFactor: 4,
		NoisyMinTime:   time.Minute,
		NoisyMaxTime:   5 * time.Minute,
		ChurnPerMinute: 0.01,
		CrashShare:     0.2,
		Grace:          30 * time.Second,
		HeartbeatTTL:   3 * time.Second,
		Heartbeat:      time.Second,
		Rebuild:        3 * time.Second,
	}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.Nodes < 1 || c.Nodes > 1_000_000:
		return fmt.Errorf("policysim: config: nodes %d: must be 1..1000000", c.Nodes)
	case c.Duration <= 0 || c.Duration > 24*time.Hour:
		return fmt.Errorf("policysim: config: duration %v: must be in (0, 24h]", c.Duration)
	case c.Warmup < 0 || c.Warmup >= c.Duration:
		return fmt.Errorf("policysim: config: warmup %v: must be in [0, duration)", c.Warmup)
	case !(c.Load > 0 && c.Load <= 2):
		return fmt.Errorf("policysim: config: load %v: must be in (0, 2]", c.Load)
	case len(c.Types) == 0:
		return fmt.Errorf("policysim: config: types: need at least one card type")
	case c.QueueSlots < 0:
		return fmt.Errorf("policysim: config: queue slots %d: must be >= 0", c.QueueSlots)
	case c.NoisyShare < 0 || c.NoisyShare >= 1:
		return fmt.Errorf("policysim: config: noisy share %v: must be in [0, 1)", c.NoisyShare)
	case c.NoisyShare > 0 && (c.NoisyMinFactor < 1 || c.NoisyMaxFactor < c.NoisyMinFactor || c.NoisyMinTime <= 0 || c.NoisyMaxTime < c.NoisyMinTime):
		return fmt.Errorf("policysim: config: noisy factors/times must satisfy 1 <= min <= max and 0 < min time <= max time")
	case c.ChurnPerMinute < 0 || c.ChurnPerMinute > 1:
		return fmt.Errorf("policysim: config: churn per minute %v: must be in [0, 1]", c.ChurnPerMinute)
	case c.CrashShare < 0 || c.CrashShare > 1:
		return fmt.Errorf("policysim: config: crash share %v: must be in [0, 1]", c.CrashShare)
	case c.Heartbeat <= 0 || c.Rebuild <= 0 || c.HeartbeatTTL <= 0 || c.Grace < 0:
		return fmt.Errorf("policysim: config: heartbeat, rebuild and TTL must be positive, grace non-negative")
	case c.Gateways < 0 || c.Gateways > 256:
		return fmt.Errorf("policysim: config: gateways %d: must be 1..256 (0 for 1)", c.Gateways)
	}
	var share float64
	for i, t := range c.Types {
		if t.Share < 0 || t.Capacity <= 0 || t.Slots < 1 || t.Service <= 0 {
			return fmt.Errorf("policysim: config: type %d (%q): share >= 0, capacity > 0, slots >= 1, service > 0 required", i, t.Name)
		}
		share += t.Share
	}
	if !(share > 0) {
		return fmt.Errorf("policysim: config: types: shares sum to %v", share)
	}
	if _, err := balancerConfig(c.Policy); err != nil {
		return fmt.Errorf("policysim: config: %w", err)
	}
	return nil
}
