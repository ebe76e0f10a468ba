package ray

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/engines/capacity"
)

// Limits of Config.Refresh.
const (
	DefaultRefresh = time.Second
	MaxRefresh     = 2 * time.Second
	MinRefresh     = 100 * time.Millisecond
)

// Config configures a Source. The YAML fields are the gateway's "ray"
// discovery source; the others are set in code. Every field's doc states
// its default.
type Config struct {
	// Dashboard is the Ray dashboard's base URL, e.g.
	// "http://10.0.0.1:8265". Required.
	Dashboard string `yaml:"dashboard"`
	// Refresh is the poll period of GET /api/serve/applications/
	// (default 1s; at most 2s, at least 100ms).
	Refresh time.Duration `yaml:"refresh"`
	// Timeout bounds each request to the dashboard or a node's metrics
	// endpoint (default: Refresh).
	Timeout time.Duration `yaml:"timeout"`
	// TokenHeader names the header that carries the token (default
	// "Authorization", sent as "Bearer TOKEN"; any other header carries
	// the token as it is).
	TokenHeader string `yaml:"token_header"`
	// TokenEnv names the environment variable holding the token, read
	// by New (default: no token). The token is never logged.
	TokenEnv string `yaml:"token_env"`
	// Token is the token itself, for callers that have it in hand
	// (overrides TokenEnv). Never logged.
	Token string `yaml:"-"`
	// MetricsPort is the Ray nodes' metrics export port (ray start
	// --metrics-export-port) to read ray_serve_* load from; 0 (default)
	// reads no load: the nodes' load is then unknown.
	MetricsPort int `yaml:"metrics_port"`
	// Accelerators maps a Ray node id or node IP to the card model of its
	// GPUs or NPUs ("H100", "Ascend910B3"), for the capacity coefficient
	// of replicas that hold some. Default: the deployment's
	// ray_actor_options.accelerator_type, else unknown (see the package
	// doc).
	Accelerators map[string]string `yaml:"accelerators"`

	// Capacity is the coefficient table (default capacity.Default()).
	Capacity *capacity.Table `yaml:"-"`
	// HTTPClient sends the requests (default: a client of its own; set
	// one for TLS). Its Timeout, if any, applies on top of Timeout.
	HTTPClient *http.Client `yaml:"-"`
	// OnUpdate, when set, receives every new version of an app's list
	// (an empty list once an app is gone). Calls are serialised. It must
	// not block and must not modify the list.
	OnUpdate func(app string, list discovery.OnlineList) `yaml:"-"`
	// OnApps, when set, receives the whole application set whenever an
	// application appears, goes, or changes route prefix or status.
	// Calls are serialised with OnUpdate's; it must not block.
	OnApps func(apps []Application) `yaml:"-"`
	// Logger defaults to slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// Validate applies defaults and checks the config; errors name the field
// (as "ray.refresh: ...") and never contain the token.
func (c *Config) Validate() error {
	if c.Dashboard == "" {
		return errors.New("ray.dashboard: required (e.g. http://10.0.0.1:8265)")
	}
	u, err := url.Parse(c.Dashboard)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("ray.dashboard: %q is not an http(s) URL", redact(c.Dashboard))
	}
	switch {
	case c.Refresh == 0:
		c.Refresh = DefaultRefresh
	case c.Refresh > MaxRefresh:
		return fmt.Errorf("ray.refresh: %v is above %v (a node that leaves must stop getting traffic within seconds)", c.Refresh, MaxRefresh)
	case c.Refresh < MinRefresh:
		return fmt.Errorf("ray.refresh: %v is below %v", c.Refresh, MinRefresh)
	}
	if c.Timeout == 0 {
		c.Timeout = c.Refresh
	}
	if c.Timeout < 10*time.Millisecond || c.Timeout > time.Minute {
		return fmt.Errorf("ray.timeout: %v outside 10ms..1m", c.Timeout)
	}
	if c.TokenHeader == "" {
		c.TokenHeader = "Authorization"
	}
	if http.CanonicalHeaderKey(c.TokenHeader) == "" || !validHeaderName(c.TokenHeader) {
		return fmt.Errorf("ray.token_header: %q is not a header name", c.TokenHeader)
	}
	if c.Token == "" && c.TokenEnv != "" {
		c.Token = os.Getenv(c.TokenEnv)
		if c.Token == "" {
			return fmt.Errorf("ray.token_env: environment variable %s is empty or unset", c.TokenEnv)
		}
	}
	if c.MetricsPort < 0 || c.MetricsPort > 65535 {
		return fmt.Errorf("ray.metrics_port: %d outside 0..65535", c.MetricsPort)
	}
	for k, v := range c.Accelerators {
		if k == "" || v == "" {
			return fmt.Errorf("ray.accelerators: empty node or card model (%q: %q)", k, v)
		}
	}
	if c.Capacity == nil {
		c.Capacity = capacity.Default()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// LogValue shows the config without the token.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("dashboard", redact(c.Dashboard)), slog.Duration("refresh", c.Refresh),
		slog.Duration("timeout", c.Timeout), slog.String("token_header", c.TokenHeader), slog.Bool("token", c.Token != ""),
		slog.Int("metrics_port", c.MetricsPort))
}

// redact hides a password in a URL.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return s != ""
}
