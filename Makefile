# Switchyard. `make demo` runs the main job on loopback; `make test` runs the tests.
GO        ?= go
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
PKGS      := ./...
BENCHTIME ?= 1s
STATICCHECK_VERSION ?= v0.8.2

# Version and commit stamped into the binary (switchyard version). The
# binary also reads Go's build information, but this machine's go env sets
# -buildvcs=false and Go does not stamp git worktrees, so the Makefile
# names them itself. VERSION is empty without a tag: Go's own then.
VERSION ?= $(shell git describe --tags --dirty 2>/dev/null)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := $(if $(VERSION),-X main.version=$(VERSION)) $(if $(COMMIT),-X main.commit=$(COMMIT))
BIN     ?= bin/switchyard

.PHONY: all build test vet bench check demo bench-compare pgo bench-streams bench-policies bench-affinity bench-affinity-live chaos fuzz clean \
	image image-test release release-test deploy-test deploy-manifests

all: build

build:
	$(GO) build -trimpath -buildvcs=auto -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/switchyard

# The container image (Dockerfile) with docker, podman or buildah, and the
# check that it builds (skips when none is installed).
image:
	@VERSION='$(VERSION)' COMMIT='$(COMMIT)' bash deploy/scripts/image.sh
image-test:
	@bash deploy/scripts/image-test.sh

# Release archives for linux/amd64 and linux/arm64 with SHA256SUMS in
# dist/, and the check of the recipe.
release:
	@VERSION='$(VERSION)' COMMIT='$(COMMIT)' bash deploy/scripts/release.sh
release-test:
	@bash deploy/scripts/release-test.sh

# The deploy module (deploy/go.mod: Helm chart rendering tests) and the
# plain manifests rendered from the chart.
deploy-test:
	cd deploy && $(GO) test -count=1 ./...
deploy-manifests:
	cd deploy && $(GO) test -count=1 -run TestManifestsInSync ./... -update

vet:
	$(GO) vet $(PKGS)
	cd deploy && $(GO) vet ./...

# The tests: vet first, then every package under the race detector, then
# the zero-allocation tests, which are built only without it (//go:build
# !race: the race detector allocates) and are all named *Alloc*.
test: vet
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(GO) test -count=1 -timeout 5m -run 'Alloc' $(PKGS)
	cd deploy && $(GO) test -count=1 -timeout 10m ./...

# The Go benchmarks (hot paths), with allocations reported.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

# Formatting, vet, staticcheck and the repository greps.
check: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck $(PKGS)
	cd deploy && $(GOBIN)/staticcheck ./...
	@bash .ci/greps
	@out=$$($(GO) mod tidy -diff 2>&1) || { echo "go.mod/go.sum are not tidy (run go mod tidy):"; echo "$$out"; exit 1; }
	@out=$$(cd deploy && $(GO) mod tidy -diff 2>&1) || { echo "deploy/go.mod is not tidy (cd deploy && go mod tidy):"; echo "$$out"; exit 1; }

# Fuzz every parser for a short while (FUZZTIME each).
FUZZTIME ?= 20s
fuzz:
	@bash .ci/fuzz $(FUZZTIME)

demo: build
	./bin/switchyard demo

bench-compare: build
	./bin/switchyard bench compare

# The profile the Go compiler optimises the binary with (profile-guided
# optimisation: `go build` reads cmd/switchyard/default.pgo by itself).
# It merges CPU profiles of the gateway under the comparison's three
# workloads (HTTP/1.1, HTTP/2, gRPC), three runs each. Refresh it when the
# request path changes much; a stale profile still builds, it only
# optimises less.
PGO_DIR ?= $(or $(TMPDIR),/tmp)/switchyard-pgo
pgo: build
	rm -rf $(PGO_DIR)
	for i in 1 2 3; do \
		./bin/switchyard bench compare -only switchyard -rounds 1 -duration 2s -warmup 1s \
			-out $(PGO_DIR)/$$i -profile-dir $(PGO_DIR)/$$i || exit 1; \
	done
	$(GO) tool pprof -proto $(PGO_DIR)/*/switchyard-*.cpu.pb.gz > cmd/switchyard/default.pgo
	rm -rf $(PGO_DIR)

bench-streams: build
	./bin/switchyard bench streams

bench-policies: build
	./bin/switchyard bench policies

# Issue 14's comparison: prefix affinity against GIE and llm-d, two fleets,
# three loads, and the burst with flow control: about 5 CPU-minutes (12 min
# wall on the shared 2-core VM at load average 8-17, about 3 on 2 idle cores).
bench-affinity: build
	./bin/switchyard bench affinity

# The chaos suite of issue 12: faults and attacks against the whole
# topology on loopback (Resource tier, simulated engines with agents, the
# gateway), every case, under load; writes bench/results/chaos.md and
# fails on any lost or wrong answer or failed case. `make test` runs its
# quick subset (bench/chaos TestQuick).
chaos: build
	./bin/switchyard bench chaos --out bench/results/chaos.md

bench-affinity-live: build
	./bin/switchyard bench affinity --live

clean:
	rm -rf bin dist
