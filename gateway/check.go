package gateway

import (
	"fmt"
	"os"
	"path/filepath"
)

// Check runs every load New runs (the config's defaults and validation,
// the listener's TLS key pair, the nodes' and health checks' CA bundles
// and client key pairs, the admin token, the API-key file, the discovery
// token file and client, the Kubernetes and Ray sources, the OTLP
// endpoint, the shadow logs' directories) and releases what it built,
// without listening or starting anything. `switchyard gateway --check`
// calls it, so that a file it passes is one the gateway starts with.
func Check(cfg *Config, opts ...Option) error {
	g, err := New(cfg, opts...)
	if err != nil {
		return err
	}
	return g.Close()
}

// checkPaths checks what New and Reload would otherwise only find broken
// later: a shadow difference log is opened when the first difference
// arrives, so its directory must exist now.
func checkPaths(cfg *Config) error {
	for i := range cfg.Routes {
		sh := cfg.Routes[i].Shadow
		if sh == nil || sh.Log.Path == "" {
			continue
		}
		dir := filepath.Dir(sh.Log.Path)
		fi, err := os.Stat(dir)
		switch {
		case err != nil:
			return fmt.Errorf("gateway: routes[%d].shadow.log.path %q: its directory: %w", i, sh.Log.Path, err)
		case !fi.IsDir():
			return fmt.Errorf("gateway: routes[%d].shadow.log.path %q: %s is not a directory", i, sh.Log.Path, dir)
		}
	}
	return nil
}
