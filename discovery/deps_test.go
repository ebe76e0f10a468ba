package discovery

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportBoundaries enforces STYLE.md §1: discovery and discovery/resource
// import nothing else of ours but the leaf helpers in internal/; only
// discovery/agent may import engines; no discovery package imports
// gateway, balancer or bench.
func TestImportBoundaries(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	const mod = "github.com/switchyard-dev/switchyard/"
	for _, pkg := range []string{"./", "./resource", "./agent"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, dep := range strings.Fields(string(out)) {
			rel, ours := strings.CutPrefix(dep, mod)
			if !ours || strings.HasPrefix(rel, "discovery") || strings.HasPrefix(rel, "internal/") {
				continue
			}
			if pkg == "./agent" && strings.HasPrefix(rel, "engines") {
				continue
			}
			t.Errorf("%s imports %s", pkg, dep)
		}
	}
}
