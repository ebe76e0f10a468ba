package scrape

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Limits of the scrape configuration.
const (
	// MinInterval is the floor of Config.Interval: a faster scrape costs
	// the engines more than the load signal gains.
	MinInterval = 100 * time.Millisecond
	// MaxTimeout is the ceiling of Config.Timeout.
	MaxTimeout = 30 * time.Second
	// MaxConcurrency is the ceiling of Config.Concurrency.
	MaxConcurrency = 4096
)

// Config configures a [Scraper]. Process it in order: ApplyDefaults, then
// Validate ([New] does both). Every field's doc states its default; the
// YAML tags are those of the gateway config (under a discovery source's
// `scrape:` block).
type Config struct {
	// Interval is the time from the end of one scrape of a target to the
	// start of the next, ±10 % jitter. Default 1 s; at least 100 ms.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one scrape (connect, headers and body). A target that
	// does not answer in time gets a failed result. Default 800 ms; at
	// most 30 s.
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency is the most scrapes in flight at once over all targets.
	// Default 32; at most 4096.
	Concurrency int `yaml:"concurrency"`

	// OnResult, when set, is called after every scrape of t (good or
	// failed), from t's scrape goroutine: calls for one target are
	// serialised, calls for different targets run concurrently. It must
	// not block; read the result with Scraper.Result.
	OnResult func(t Target) `yaml:"-"`
	// Client does the GETs. Default: a client of its own that keeps idle
	// connections to every target (scrapes repeat every Interval).
	Client *http.Client `yaml:"-"`
	// Logger defaults to slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// ApplyDefaults fills zero fields with their documented defaults.
func (c *Config) ApplyDefaults() {
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 800 * time.Millisecond
	}
	if c.Concurrency == 0 {
		c.Concurrency = 32
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate returns an error naming the first bad field (as its YAML key,
// e.g. "scrape.interval: ...").
func (c *Config) Validate() error {
	switch {
	case c.Interval < MinInterval:
		return fmt.Errorf("scrape.interval: %v is below %v", c.Interval, MinInterval)
	case c.Timeout <= 0 || c.Timeout > MaxTimeout:
		return fmt.Errorf("scrape.timeout: %v is not in (0, %v]", c.Timeout, MaxTimeout)
	case c.Concurrency < 1 || c.Concurrency > MaxConcurrency:
		return fmt.Errorf("scrape.concurrency: %d is not in [1, %d]", c.Concurrency, MaxConcurrency)
	}
	return nil
}
