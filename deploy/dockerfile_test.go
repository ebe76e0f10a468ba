package deploy

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// The Dockerfile builds with the Go release line of the repository's
// go.mod (at or above its go directive), statically and reproducibly.
func TestDockerfile(t *testing.T) {
	df, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	gm, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.ParseLax("go.mod", gm, nil)
	if err != nil || mf.Go == nil {
		t.Fatalf("../go.mod: %v", err)
	}
	m := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)$`).FindSubmatch(df)
	if m == nil {
		t.Fatal("Dockerfile: no ARG GO_VERSION")
	}
	docker, mod := "v"+string(m[1]), "v"+mf.Go.Version
	if semver.MajorMinor(docker) != semver.MajorMinor(mod) || semver.Compare(docker, mod) < 0 {
		t.Errorf("Dockerfile GO_VERSION %s is not on go.mod's line %s (at or above it)", docker, mod)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "USER 65532:65532", "FROM scratch AS runtime"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(string(df)), `CMD ["--help"]`) || strings.LastIndex(string(df), "FROM ") != strings.Index(string(df), "FROM scratch AS runtime") {
		t.Error("the runtime stage is not the Dockerfile's last (default) stage")
	}
}
