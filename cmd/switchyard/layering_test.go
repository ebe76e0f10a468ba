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
	may := map[string][]string{
		"balancer":  {"balancer"},
		"engines":   {"engines"},
		"discovery": {"discovery", "engines"},
		"gateway":   {"gateway", "balancer", "discovery", "engines"},
		"bench":     {"bench", "gateway", "balancer", "discovery", "engines"},
		"cmd":       {"cmd", "gateway", "balancer", "discovery", "engines", "bench"},
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
