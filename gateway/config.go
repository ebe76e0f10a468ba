package gateway

import (
	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/forward"
)

// The configuration lives in gateway/config; these names keep the
// gateway's API in one place for callers.
type (
	Config          = config.Config
	ListenConfig    = config.ListenConfig
	Limits          = config.Limits
	DiscoveryConfig = config.DiscoveryConfig
	TelemetryConfig = config.TelemetryConfig
	RouteConfig     = config.RouteConfig
	MatchConfig     = config.MatchConfig
	NodeConfig      = config.NodeConfig
	Timeouts        = config.Timeouts
	RetryConfig     = config.RetryConfig
	BreakerConfig   = config.BreakerConfig
	FallbackConfig  = config.FallbackConfig
	RayConfig       = config.RayConfig
	UpstreamTLS     = config.UpstreamTLS
)

// Node sources of a route (RouteConfig.Source).
const (
	SourceStatic     = config.SourceStatic
	SourceResource   = config.SourceResource
	SourceKubernetes = config.SourceKubernetes
	SourceRay        = config.SourceRay
)

// Config functions.
var (
	ParseConfig  = config.ParseConfig
	LoadConfig   = config.LoadConfig
	QuickStart   = config.QuickStart
	ParseNodeURL = config.ParseNodeURL
	// ErrConfig is matched by every configuration error.
	ErrConfig = config.ErrConfig
)

// Errors callers act on (see forward.classify for their statuses).
var (
	ErrOverloaded      = forward.ErrOverloaded
	ErrRouteSaturated  = forward.ErrRouteSaturated
	ErrTooLarge        = forward.ErrTooLarge
	ErrHeaderTooLarge  = forward.ErrHeaderTooLarge
	ErrURITooLong      = forward.ErrURITooLong
	ErrBadRequest      = forward.ErrBadRequest
	ErrTimeout         = forward.ErrTimeout
	ErrClientCancelled = forward.ErrClientCancelled
	ErrUpstream        = forward.ErrUpstream
	ErrShuttingDown    = forward.ErrShuttingDown
)
