package tenant

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// MaxFileSize bounds the API-key file (a key file of 10,000 entries is
// about 2 MiB).
const MaxFileSize = 16 << 20

// Config configures a Store.
type Config struct {
	// Path is the API-key file. Required.
	Path string `yaml:"api_keys_file"`
	// Interval is how often Run checks the file for a change. Default 2 s;
	// at least 100 ms.
	Interval time.Duration `yaml:"reload_interval"`
	// Logger receives the reload lines (never a key). Default
	// slog.Default().
	Logger *slog.Logger `yaml:"-"`
	// OnReload, when set, is called after every reload that found a
	// changed file, with nil when the new keys are in force or the reason
	// they are not. It must not block.
	OnReload func(err error) `yaml:"-"`
}

// Validate checks the config, naming the bad field.
func (c *Config) Validate() error {
	if c.Path == "" {
		return errors.New("auth.api_keys_file: required")
	}
	if c.Interval != 0 && c.Interval < 100*time.Millisecond {
		return fmt.Errorf("auth.reload_interval: %v: at least 100ms", c.Interval)
	}
	return nil
}

// Store holds the current Set of an API-key file and reloads it when the
// file changes.
//
// Why stat-polling rather than fsnotify: the key file usually comes from
// a Kubernetes Secret or ConfigMap, which the kubelet updates by
// re-pointing a symlink (..data) in the mounted directory, and editors
// often save by renaming a new file over the old one. Both replace the
// inode, which a watch on the file misses; handling that needs a watch on
// the directory and symlink bookkeeping. A stat every Interval follows
// symlinks, sees a new inode, a new size or a new modification time, costs
// one system call, and behaves the same on every OS. The price is up to
// Interval of delay, which a key file can afford. A change of metadata
// with the same content is not a reload.
//
// Safe for concurrent use.
type Store struct {
	cfg Config
	log *slog.Logger

	// Atomic.
	set atomic.Pointer[Set]

	// mu guards the reload state below (Run and Reload may race).
	mu      sync.Mutex
	stat    os.FileInfo
	sum     [sha256.Size]byte
	status  Status
	lastErr string // the last failure logged, so a lasting failure logs once
}

// Status is the outcome of the last reload attempt.
type Status struct {
	// Loaded is when the keys in force were read.
	Loaded time.Time
	// Err is the reason the last changed file was not taken (nil: it
	// was); the keys from Loaded stay in force meanwhile.
	Err     error
	Tenants int
	Keys    int
}

// Open reads the file once; a missing or bad file is an error. It starts
// nothing: call Run to follow changes.
func Open(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Interval == 0 {
		cfg.Interval = 2 * time.Second
	}
	s := &Store{cfg: cfg, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Set returns the keys in force.
func (s *Store) Set() *Set { return s.set.Load() }

// Lookup is Set().Lookup(key).
func (s *Store) Lookup(key []byte) (*Tenant, bool) { return s.set.Load().Lookup(key) }

// LookupHeaders is Set().LookupHeaders(authorization, apiKey).
func (s *Store) LookupHeaders(authorization, apiKey []byte) (*Tenant, bool) {
	return s.set.Load().LookupHeaders(authorization, apiKey)
}

// Status returns the outcome of the last reload.
func (s *Store) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Run checks the file every Interval until ctx ends, and returns nil then.
func (s *Store) Run(ctx context.Context) error {
	tick := time.NewTicker(s.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			_, _ = s.Reload() // Reload logs and records its outcome
		}
	}
}

// Reload checks the file now (Run calls it; a SIGHUP handler may too) and
// takes it when it changed and parses. A file that cannot be read or
// parsed leaves the keys in force as they are; the reason is logged at
// warning level once (and its recovery at info), returned and kept in
// Status. changed reports whether new keys are in force.
func (s *Store) Reload() (changed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.set.Load() == nil // Open's load: its error is Open's
	changed, err = s.reloadLocked()
	if err != nil {
		s.status.Err = err
		if msg := err.Error(); msg != s.lastErr {
			s.lastErr = msg
			if !first {
				s.log.Warn("api keys: reload failed; the previous keys stay in force", "path", s.cfg.Path, "err", err)
			}
		}
	} else if changed {
		if s.lastErr != "" {
			s.log.Info("api keys: the file is good again", "path", s.cfg.Path)
		}
		s.lastErr = ""
		s.status.Err = nil
		s.log.Info("api keys: loaded", "path", s.cfg.Path, "tenants", s.status.Tenants, "keys", s.status.Keys)
	}
	if (changed || err != nil) && s.cfg.OnReload != nil && !first {
		s.cfg.OnReload(err)
	}
	return changed, err
}

func (s *Store) reloadLocked() (bool, error) {
	st, err := os.Stat(s.cfg.Path)
	if err != nil {
		return false, fmt.Errorf("tenant: %w", err)
	}
	if s.stat != nil && os.SameFile(s.stat, st) && st.ModTime().Equal(s.stat.ModTime()) && st.Size() == s.stat.Size() {
		return false, nil
	}
	data, err := readFile(s.cfg.Path)
	if err != nil {
		return false, fmt.Errorf("tenant: %w", err)
	}
	sum := sha256.Sum256(data)
	if s.stat != nil && sum == s.sum && s.status.Err == nil {
		s.stat = st // touched, not changed
		return false, nil
	}
	entries, err := parseFile(data)
	if err != nil {
		// Remember the bad file so it is not parsed and logged again every
		// Interval; a new change is looked at afresh.
		s.stat, s.sum = st, sum
		return false, fmt.Errorf("tenant: %s: %w", s.cfg.Path, err)
	}
	now := time.Now()
	set := build(entries, s.set.Load(), now)
	s.set.Store(set)
	s.stat, s.sum = st, sum
	s.status = Status{Loaded: now, Tenants: len(set.tenants), Keys: set.Keys()}
	return true, nil
}

// readFile reads at most MaxFileSize bytes of path.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var b bytes.Buffer
	n, err := io.Copy(&b, io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if n > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, MaxFileSize)
	}
	return b.Bytes(), nil
}
