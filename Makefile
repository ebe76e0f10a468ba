# Switchyard. `make demo` runs the main job on loopback; `make test` runs the tests.
GO        ?= go
GOBIN     ?= $(shell $(GO) env GOPATH)/bin
PKGS      := ./...
BENCHTIME ?= 1s
STATICCHECK_VERSION ?= v0.8.2

.PHONY: all build test vet bench check demo bench-compare bench-streams bench-policies fuzz clean

all: build

build:
	$(GO) build -o bin/switchyard ./cmd/switchyard

vet:
	$(GO) vet $(PKGS)

# The tests: vet first, then every package under the race detector, then
# the zero-allocation tests, which are built only without it (//go:build
# !race: the race detector allocates) and are all named *Alloc*.
test: vet
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	$(GO) test -count=1 -timeout 5m -run 'Alloc' $(PKGS)

# The Go benchmarks (hot paths), with allocations reported.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

# Formatting, vet, staticcheck and the repository greps.
check: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck $(PKGS)
	@bash .ci/greps
	@out=$$($(GO) mod tidy -diff 2>&1) || { echo "go.mod/go.sum are not tidy (run go mod tidy):"; echo "$$out"; exit 1; }

# Fuzz every parser for a short while (FUZZTIME each).
FUZZTIME ?= 20s
fuzz:
	@bash .ci/fuzz $(FUZZTIME)

demo: build
	./bin/switchyard demo

bench-compare: build
	./bin/switchyard bench compare

bench-streams: build
	./bin/switchyard bench streams

bench-policies: build
	./bin/switchyard bench policies

clean:
	rm -rf bin
