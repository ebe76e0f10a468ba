package resource

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"
)

// Config configures one Resource instance. The zero value is usable (no
// token, no peers) after [Config.applyDefaults]; every field's doc states its
// default. A Config must not change after New.
type Config struct {
	// Token is the shared bearer token: a quick start that grants full
	// access (announce any node of any app, link as a peer, read every
	// list). With CredentialsFile, scoped credentials sit beside it; leave
	// it empty there to require them. Both empty disables authentication
	// (local demos only).
	Token string
	// CredentialsFile is a YAML file of scoped credentials (see
	// CredentialsFile): separate agent, peer and reader credentials, agent
	// ones bound to apps, node ids and address CIDRs, and per-app caps. It
	// is read by New (an invalid file is an error) and again whenever its
	// size or modification time changes (checked every CredentialsPoll) or
	// ReloadCredentials is called (SIGHUP in cmd/switchyard); an invalid
	// new version is refused and the running credentials stay. Default:
	// none.
	CredentialsFile string
	// CredentialsPoll is how often CredentialsFile is checked for changes.
	// Default 2 s.
	CredentialsPoll time.Duration
	// TLS, when set, serves TLS on the listener; set ClientCAs and
	// ClientAuth = tls.RequireAndVerifyClientCert for mTLS. Peer links dial
	// with PeerTLS.
	TLS *tls.Config
	// PeerTLS is the client TLS config used to dial peers. Default: none
	// (plain TCP).
	PeerTLS *tls.Config
	// PeerToken is the bearer token this instance presents to its peers
	// (peer links and drain queries). Default: Token.
	PeerToken string

	// Period is the agents' heartbeat period. Default 1 s.
	Period time.Duration
	// MissedBeats is how many periods of silence turn a node offline.
	// Default 3.
	MissedBeats int
	// SuspectAfter is the silence after which a ready node becomes suspect.
	// Default 1.5 × Period.
	SuspectAfter time.Duration
	// SweepInterval is how often liveness is checked. Default Period / 10.
	SweepInterval time.Duration

	// Window is how long heard changes are batched before they are committed
	// to the list and sent to peers; draining and offline changes skip it.
	// Default 50 ms; at most 100 ms.
	Window time.Duration
	// LoadEpsilon is the smallest change of utilisation or KV-cache usage
	// (absolute) or of concurrency (relative) worth propagating. Default 0.05.
	LoadEpsilon float64
	// LoadRefresh propagates a node's load even when it moved less than
	// LoadEpsilon once the propagated load is this old (plus a per-node
	// spread of up to half of it). Default 10 s.
	LoadRefresh time.Duration

	// Peers are the other instances' host:port (this instance's own address
	// may be included; it is recognised and skipped).
	Peers []string
	// PeerDNS is a "name:port" resolved every PeerDNSInterval into peers.
	PeerDNS string
	// PeerDNSInterval defaults to 5 s.
	PeerDNSInterval time.Duration
	// ReHomeGrace is how long nodes owned by a lost peer stay listed while
	// their agents reconnect to another instance. Default 5 s.
	ReHomeGrace time.Duration

	// MaxExpireShare is the largest share of an app's nodes that may expire
	// (by silence) within GuardWindow; more are held as suspect. At least
	// one node may always expire. Default 0.5.
	MaxExpireShare float64
	// GuardWindow defaults to 10 s.
	GuardWindow time.Duration

	// MaxClockSkew bounds how far ahead of this instance's clock a
	// heartbeat's incarnation (the agent's start time in unix nanoseconds)
	// may be. A beat beyond it is refused, and the Reject tells the agent
	// the incarnation to use instead, so a forged incarnation near 2^64
	// cannot make a node's real agent look stale forever (issue 12, item
	// 10). Default 1 min.
	MaxClockSkew time.Duration
	// TombstoneTTL is how long a removed node's last (incarnation, seq)
	// still orders later reports of it: within it, an older report (a late
	// peer change, a restarted agent whose clock stepped back) is refused
	// as stale, and the agent is told the incarnation to adopt; after it,
	// the tombstone is forgotten and any report is new. Default 30 s; at
	// least ReHomeGrace.
	TombstoneTTL time.Duration

	// MaxNodesPerApp bounds the nodes an app may list on this instance: a
	// new node beyond it is refused (reason "limit"). The credentials file
	// may set it per app. Default 100,000.
	MaxNodesPerApp int
	// MaxApps bounds the apps this instance holds for its own agents and
	// readers (peers' changes are always applied, so the tier agrees). An
	// app with no node, no pending change, no subscriber and no long-poll
	// is freed once its tombstones expired. Default 10,000.
	MaxApps int
	// MaxSubscribersPerApp bounds the subscribers (gateways acknowledging
	// versions) an app keeps; one more is refused with 429. Default 4,096.
	MaxSubscribersPerApp int

	// SubscriberTTL is how long a subscriber that stopped polling still
	// counts as watching (for drain acknowledgements). Default 10 s.
	SubscriberTTL time.Duration
	// MaxWait caps a long-poll's wait. Default 60 s.
	MaxWait time.Duration

	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Version and Revision label switchyard_build_info: the binary's
	// version and commit ("dev" and "unknown" when empty).
	Version, Revision string
}

func (c *Config) peerToken() string {
	if c.PeerToken != "" {
		return c.PeerToken
	}
	return c.Token
}

// DefaultConfig returns the production preset: 1 s heartbeats, 3 missed
// beats, a 50 ms peer window.
func DefaultConfig() Config {
	var c Config
	c.applyDefaults()
	return c
}

func (c *Config) applyDefaults() {
	if c.Period == 0 {
		c.Period = time.Second
	}
	if c.CredentialsPoll == 0 {
		c.CredentialsPoll = 2 * time.Second
	}
	if c.MissedBeats == 0 {
		c.MissedBeats = 3
	}
	if c.SuspectAfter == 0 {
		c.SuspectAfter = c.Period * 3 / 2
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = c.Period / 10
	}
	if c.Window == 0 {
		c.Window = 50 * time.Millisecond
	}
	if c.LoadEpsilon == 0 {
		c.LoadEpsilon = 0.05
	}
	if c.LoadRefresh == 0 {
		c.LoadRefresh = 10 * time.Second
	}
	if c.PeerDNSInterval == 0 {
		c.PeerDNSInterval = 5 * time.Second
	}
	if c.ReHomeGrace == 0 {
		c.ReHomeGrace = 5 * time.Second
	}
	if c.MaxExpireShare == 0 {
		c.MaxExpireShare = 0.5
	}
	if c.GuardWindow == 0 {
		c.GuardWindow = 10 * time.Second
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = time.Minute
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = 30 * time.Second
	}
	if c.MaxNodesPerApp == 0 {
		c.MaxNodesPerApp = 100_000
	}
	if c.MaxApps == 0 {
		c.MaxApps = 10_000
	}
	if c.MaxSubscribersPerApp == 0 {
		c.MaxSubscribersPerApp = 4096
	}
	if c.SubscriberTTL == 0 {
		c.SubscriberTTL = 10 * time.Second
	}
	if c.MaxWait == 0 {
		c.MaxWait = 60 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate returns an error naming the first bad field.
func (c *Config) Validate() error {
	switch {
	case c.Period < 10*time.Millisecond:
		return fmt.Errorf("resource: config: Period %v below 10ms", c.Period)
	case c.MissedBeats < 1:
		return fmt.Errorf("resource: config: MissedBeats %d below 1", c.MissedBeats)
	case c.SuspectAfter <= 0 || c.SuspectAfter > time.Duration(c.MissedBeats)*c.Period:
		return fmt.Errorf("resource: config: SuspectAfter %v must be in (0, MissedBeats×Period]", c.SuspectAfter)
	case c.SweepInterval < time.Millisecond || c.SweepInterval > c.Period:
		return fmt.Errorf("resource: config: SweepInterval %v must be in [1ms, Period]", c.SweepInterval)
	case c.Window < time.Millisecond || c.Window > 100*time.Millisecond:
		return fmt.Errorf("resource: config: Window %v must be in [1ms, 100ms]", c.Window)
	case c.LoadEpsilon < 0 || c.LoadEpsilon > 1:
		return fmt.Errorf("resource: config: LoadEpsilon %v must be in [0, 1]", c.LoadEpsilon)
	case c.LoadRefresh < c.Period:
		return fmt.Errorf("resource: config: LoadRefresh %v below Period", c.LoadRefresh)
	case c.ReHomeGrace < c.Period:
		return fmt.Errorf("resource: config: ReHomeGrace %v below Period", c.ReHomeGrace)
	case c.MaxExpireShare <= 0 || c.MaxExpireShare > 1:
		return fmt.Errorf("resource: config: MaxExpireShare %v must be in (0, 1]", c.MaxExpireShare)
	case c.GuardWindow <= 0:
		return fmt.Errorf("resource: config: GuardWindow %v must be positive", c.GuardWindow)
	case c.MaxClockSkew < time.Second:
		return fmt.Errorf("resource: config: MaxClockSkew %v below 1s", c.MaxClockSkew)
	case c.TombstoneTTL < c.ReHomeGrace:
		return fmt.Errorf("resource: config: TombstoneTTL %v below ReHomeGrace %v", c.TombstoneTTL, c.ReHomeGrace)
	case c.CredentialsPoll < 10*time.Millisecond:
		return fmt.Errorf("resource: config: CredentialsPoll %v below 10ms", c.CredentialsPoll)
	case c.MaxNodesPerApp < 1:
		return fmt.Errorf("resource: config: MaxNodesPerApp %d below 1", c.MaxNodesPerApp)
	case c.MaxApps < 1:
		return fmt.Errorf("resource: config: MaxApps %d below 1", c.MaxApps)
	case c.MaxSubscribersPerApp < 1:
		return fmt.Errorf("resource: config: MaxSubscribersPerApp %d below 1", c.MaxSubscribersPerApp)
	case c.SubscriberTTL < c.Period:
		return fmt.Errorf("resource: config: SubscriberTTL %v below Period", c.SubscriberTTL)
	case c.MaxWait < time.Second:
		return fmt.Errorf("resource: config: MaxWait %v below 1s", c.MaxWait)
	}
	return nil
}
