package shadow

import (
	"fmt"
	"math"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard/gateway/reqkey"
)

// Sampling modes for Config.SampleBy.
const (
	SampleRandom = "random"
	SampleKey    = "key"
)

// Defaults; see DefaultConfig.
const (
	DefaultQueueSize        = 256
	DefaultConcurrency      = 8
	DefaultMaxBodyBytes     = 1 << 20
	DefaultMaxResponseBytes = 1 << 20
	DefaultTimeout          = 30 * time.Second
	DefaultCloseTimeout     = 5 * time.Second
	DefaultMarkerHeader     = "X-Switchyard-Shadow"
	DefaultLogMaxFileBytes  = 10 << 20
	DefaultLogMaxFiles      = 5
	DefaultLogMaxValueBytes = 256
	DefaultLogQueueSize     = 1024
)

// Config describes one route's shadow. Start from DefaultConfig (decoding
// YAML into a Config does, so omitted fields keep their defaults), then
// Validate: it refuses explicit zero sizes, because a zero queue would
// silently mirror nothing. Target is required.
type Config struct {
	// Target is the app or model that receives the copies (required). The
	// gateway's Sender resolves it; check it with ValidateTargets.
	Target string `yaml:"target"`
	// SampleRate is the share of requests mirrored, in percent 0..100
	// (default 100).
	SampleRate float64 `yaml:"sample_rate"`
	// SampleBy is "random" (default: each request independently) or "key"
	// (by the hash of Key, so a given user is always or never mirrored).
	SampleBy string `yaml:"sample_by"`
	// Key says where the sampling key comes from when SampleBy is "key":
	// Header, then Cookie, then the client IP (default: client IP).
	Key KeyConfig `yaml:"key"`
	// Salt is mixed into the key hash (default "").
	Salt string `yaml:"salt"`
	// QueueSize bounds the shadow copies alive at once: waiting for a
	// worker, being sent, or waiting for the primary to finish so they can
	// be compared (default 256, > 0). A copy that finds it full is dropped
	// and counted (reason "queue_full"). Memory is bounded by QueueSize ×
	// (MaxBodyBytes + 2 × MaxResponseBytes).
	QueueSize int `yaml:"queue_size"`
	// Concurrency bounds the shadow requests in flight (default 8, > 0).
	Concurrency int `yaml:"concurrency"`
	// MaxBodyBytes is the largest request body copied; larger requests
	// (and streamed request bodies) are not mirrored and are counted
	// (reason "body_too_large"; default 1 MiB, > 0).
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// MaxResponseBytes bounds the captured primary body and the shadow
	// response read (default 1 MiB, > 0). A larger primary is not compared
	// field by field (Report.Skipped).
	MaxResponseBytes int `yaml:"max_response_bytes"`
	// Timeout bounds each shadow request (default 30s, > 0).
	Timeout time.Duration `yaml:"timeout"`
	// CloseTimeout bounds Close: queued copies are drained for at most this
	// long, then dropped and in-flight sends cancelled (default 5s, > 0).
	CloseTimeout time.Duration `yaml:"close_timeout"`
	// MarkerHeader is set to "1" on every shadow request so engines and
	// logs can tell shadow traffic apart (default X-Switchyard-Shadow).
	MarkerHeader string `yaml:"marker_header"`
	// Compare configures the field comparison.
	Compare CompareConfig `yaml:"compare"`
	// Log configures the JSONL difference log.
	Log LogConfig `yaml:"log"`
}

// KeyConfig says where a sampling key comes from (see reqkey.Config).
type KeyConfig = reqkey.Config

// CompareConfig configures how responses are compared.
type CompareConfig struct {
	// Fields are JSON field paths compared between primary and shadow,
	// e.g. choices[0].message.content or outputs[0].data (default none:
	// only status and latency are compared). SSE responses are assembled
	// first (see AssembleSSE), so chat paths apply to streams too.
	Fields []string `yaml:"fields"`
	// AbsTolerance and RelTolerance make numbers a and b equal when
	// |a-b| <= AbsTolerance + RelTolerance × max(|a|,|b|) (default 0, 0:
	// exact).
	AbsTolerance float64 `yaml:"abs_tolerance"`
	RelTolerance float64 `yaml:"rel_tolerance"`
}

// LogConfig configures the JSONL log of differences.
type LogConfig struct {
	// Path of the active log file ("" = no log; the default). Rotated
	// files are Path.1 (newest) … Path.(MaxFiles-1).
	Path string `yaml:"path"`
	// SampleRate is the share of difference events logged, percent 0..100
	// (default 100). Metrics count every event.
	SampleRate float64 `yaml:"sample_rate"`
	// MaxFileBytes rotates the file before it would exceed this size
	// (default 10 MiB, > 0).
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// MaxFiles is the number of files kept, the active one included
	// (default 5, > 0), so the log never exceeds MaxFiles × MaxFileBytes.
	MaxFiles int `yaml:"max_files"`
	// MaxValueBytes truncates each logged value (default 256, > 0).
	MaxValueBytes int `yaml:"max_value_bytes"`
	// QueueSize bounds entries waiting for the writer; when full, entries
	// are dropped and counted (default 1024, > 0).
	QueueSize int `yaml:"queue_size"`
}

// DefaultConfig returns a Config with every default filled in and no
// Target.
func DefaultConfig() Config {
	return Config{
		SampleRate:       100,
		SampleBy:         SampleRandom,
		QueueSize:        DefaultQueueSize,
		Concurrency:      DefaultConcurrency,
		MaxBodyBytes:     DefaultMaxBodyBytes,
		MaxResponseBytes: DefaultMaxResponseBytes,
		Timeout:          DefaultTimeout,
		CloseTimeout:     DefaultCloseTimeout,
		MarkerHeader:     DefaultMarkerHeader,
		Log: LogConfig{
			SampleRate:    100,
			MaxFileBytes:  DefaultLogMaxFileBytes,
			MaxFiles:      DefaultLogMaxFiles,
			MaxValueBytes: DefaultLogMaxValueBytes,
			QueueSize:     DefaultLogQueueSize,
		},
	}
}

// UnmarshalYAML implements yaml.Unmarshaler: it starts from DefaultConfig
// and refuses unknown fields.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	if err := reqkey.StrictKeys(n, Config{}, "shadow: "); err != nil {
		return err
	}
	type plain Config
	p := plain(DefaultConfig())
	if err := n.Decode(&p); err != nil {
		return reqkey.WithPrefix("shadow: ", err)
	}
	*c = Config(p)
	return nil
}

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
}

func validPercent(v float64) bool { return !math.IsNaN(v) && v >= 0 && v <= 100 }

// Validate checks the Config and returns an error naming the first bad
// field; every error wraps ErrInvalidConfig. It does not know which apps
// exist; see ValidateTargets.
func (c *Config) Validate() error {
	switch {
	case c.Target == "":
		return badf("target: empty, name the app or model that receives the shadow copies")
	case !validPercent(c.SampleRate):
		return badf("sample_rate: must be a percentage in 0..100, got %v", c.SampleRate)
	case c.SampleBy != SampleRandom && c.SampleBy != SampleKey:
		return badf("sample_by: must be %q or %q, got %q", SampleRandom, SampleKey, c.SampleBy)
	case c.QueueSize <= 0:
		return badf("queue_size: must be > 0, got %d", c.QueueSize)
	case c.Concurrency <= 0:
		return badf("concurrency: must be > 0, got %d", c.Concurrency)
	case c.MaxBodyBytes <= 0:
		return badf("max_body_bytes: must be > 0, got %d", c.MaxBodyBytes)
	case c.MaxResponseBytes <= 0:
		return badf("max_response_bytes: must be > 0, got %d", c.MaxResponseBytes)
	case c.Timeout <= 0:
		return badf("timeout: must be > 0, got %v", c.Timeout)
	case c.CloseTimeout <= 0:
		return badf("close_timeout: must be > 0, got %v", c.CloseTimeout)
	case c.MarkerHeader == "":
		return badf("marker_header: empty")
	case math.IsNaN(c.Compare.AbsTolerance) || c.Compare.AbsTolerance < 0:
		return badf("compare.abs_tolerance: must be >= 0, got %v", c.Compare.AbsTolerance)
	case math.IsNaN(c.Compare.RelTolerance) || c.Compare.RelTolerance < 0:
		return badf("compare.rel_tolerance: must be >= 0, got %v", c.Compare.RelTolerance)
	}
	seen := map[string]int{}
	for i, f := range c.Compare.Fields {
		if _, err := ParsePath(f); err != nil {
			return fmt.Errorf("%w: compare.fields[%d]: %w", ErrInvalidConfig, i, err)
		}
		if j, dup := seen[f]; dup {
			return badf("compare.fields[%d]: duplicate field %q (also compare.fields[%d])", i, f, j)
		}
		seen[f] = i
	}
	if c.Log.Path != "" {
		l := c.Log
		switch {
		case !validPercent(l.SampleRate):
			return badf("log.sample_rate: must be a percentage in 0..100, got %v", l.SampleRate)
		case l.MaxFileBytes <= 0:
			return badf("log.max_file_bytes: must be > 0, got %d", l.MaxFileBytes)
		case l.MaxFiles <= 0:
			return badf("log.max_files: must be > 0, got %d", l.MaxFiles)
		case l.MaxValueBytes <= 0:
			return badf("log.max_value_bytes: must be > 0, got %d", l.MaxValueBytes)
		case l.QueueSize <= 0:
			return badf("log.queue_size: must be > 0, got %d", l.QueueSize)
		}
	}
	return nil
}

// ValidateTargets checks Target with known, typically "is this an app or
// model in the routing config".
func (c *Config) ValidateTargets(known func(target string) bool) error {
	if !known(c.Target) {
		return badf("target: unknown app or model %q", c.Target)
	}
	return nil
}
