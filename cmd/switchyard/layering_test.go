package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestLayering enforces the package boundaries of docs/ (DESIGN.md, "The
// parts"): which of our packages each folder may import, transitively.
func TestLayering(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const mod = "github.com/switchyard-dev/switchyard/"
	out, err := exec.CommandContext(ctx, "go", "list", "-deps=false", "-json", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	// may[folder] lists the folders of ours a package in folder may import.
	// internal holds helpers (internal/yamlerr, internal/h2server) that
	// import nothing of ours outside internal and that every folder may use.
	may := map[string][]string{
		"internal":  {"internal"},
		"balancer":  {"balancer", "internal"},
		"engines":   {"engines", "internal"},
		"discovery": {"discovery", "engines", "internal"},
		"gateway":   {"gateway", "balancer", "discovery", "engines", "internal"},
		"bench":     {"bench", "gateway", "balancer", "discovery", "engines", "internal"},
		"cmd":       {"cmd", "gateway", "balancer", "discovery", "engines", "bench", "internal"},
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	checked := 0
	for dec.More() {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		// With a PGO profile (cmd/switchyard/default.pgo) go list names
		// the main package's dependencies as variants: "path [main]".
		p.ImportPath = basePath(p.ImportPath)
		for i, d := range p.Deps {
			p.Deps[i] = basePath(d)
		}
		folder := strings.SplitN(strings.TrimPrefix(p.ImportPath, mod), "/", 2)[0]
		allowed, ok := may[folder]
		if !ok {
			t.Errorf("%s: top-level folder %q has no layering rule", p.ImportPath, folder)
			continue
		}
		checked++
		for _, d := range p.Deps {
			if !strings.HasPrefix(d, mod) {
				continue
			}
			dep := strings.SplitN(strings.TrimPrefix(d, mod), "/", 2)[0]
			if !contains(allowed, dep) {
				t.Errorf("%s imports %s: %s may only import %v", p.ImportPath, d, folder, allowed)
			}
		}
		if folder == "gateway" {
			checkGatewayLayers(t, strings.TrimPrefix(p.ImportPath, mod), p.Deps)
		}
		// The discovery root (wire types, the Resource client) and the
		// Resource service never reach engines: only the sources that read
		// engines themselves do (the agent, agentless scrapes, Kubernetes
		// and Ray dashboard discovery).
		if folder == "discovery" && !readsEngines(p.ImportPath) {
			for _, d := range p.Deps {
				if strings.HasPrefix(d, mod+"engines") {
					t.Errorf("%s imports %s: only discovery/agent may import engines", p.ImportPath, d)
				}
			}
		}
	}
	if checked < 3 {
		t.Fatalf("checked only %d packages", checked)
	}
}

// gatewayMay lists, for each package under gateway/, the gateway packages
// it may import (transitively): the request path reads top-down from the
// frontends through the forwarding core to routes and upstream nodes, and
// nothing below looks back up.
var gatewayMay = map[string][]string{
	"gateway/reqkey":    {},
	"gateway/split":     {"reqkey"},
	"gateway/shadow":    {"reqkey"},
	"gateway/config":    {"reqkey", "split", "shadow", "tenant", "flow"},
	"gateway/deadline":  {},
	"gateway/tenant":    {},
	"gateway/prefix":    {},
	"gateway/openai":    {},
	"gateway/flow":      {},
	"gateway/telemetry": {"flow", "tenant", "config", "reqkey", "split", "shadow", "openai"},
	"gateway/upstream":  {"flow", "tenant", "config", "deadline", "reqkey", "split", "shadow", "openai", "telemetry"},
	"gateway/health":    {"flow", "tenant", "config", "deadline", "reqkey", "split", "shadow", "openai", "telemetry", "upstream"},
	"gateway/route":     {"flow", "tenant", "config", "deadline", "reqkey", "split", "shadow", "openai", "telemetry", "upstream", "health"},
	"gateway/forward":   {"prefix", "flow", "tenant", "config", "deadline", "reqkey", "split", "shadow", "openai", "telemetry", "upstream", "health", "route"},
	"gateway/frontend":  {"prefix", "flow", "tenant", "config", "deadline", "reqkey", "split", "shadow", "openai", "telemetry", "upstream", "health", "route", "forward"},
	"gateway/admin":     {"prefix", "flow", "tenant", "config", "deadline", "reqkey", "split", "shadow", "openai", "telemetry", "upstream", "health", "route", "forward"},
}

// checkGatewayLayers enforces gatewayMay on pkg (a path under the module)
// and its dependencies. The gateway root wires everything and may import
// every gateway package.
func checkGatewayLayers(t *testing.T, pkg string, deps []string) {
	t.Helper()
	const mod = "github.com/switchyard-dev/switchyard/"
	if pkg == "gateway" {
		return
	}
	parts := strings.SplitN(pkg, "/", 3)
	top := parts[0] + "/" + parts[1]
	allowed, ok := gatewayMay[top]
	if !ok {
		t.Errorf("%s: gateway package %q has no layering rule (add it to gatewayMay)", pkg, top)
		return
	}
	for _, d := range deps {
		rest, found := strings.CutPrefix(d, mod+"gateway/")
		if !found {
			if d == mod+"gateway" {
				t.Errorf("%s imports the gateway root: only cmd and bench may", pkg)
			}
			continue
		}
		sub := strings.SplitN(rest, "/", 2)[0]
		if "gateway/"+sub != top && !contains(allowed, sub) {
			t.Errorf("%s imports %s: %s may only import gateway/%v", pkg, d, top, allowed)
		}
	}
}

// readsEngines reports whether a discovery package may import engines.
func readsEngines(pkg string) bool {
	for _, sub := range []string{"agent", "scrape", "kubernetes", "ray"} {
		if strings.Contains(pkg, "/discovery/"+sub) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// basePath is a package path without go list's variant suffix (" [main]").
func basePath(p string) string {
	path, _, _ := strings.Cut(p, " [")
	return path
}
