# The Switchyard image: one static binary on an empty base, run as a
# non-root user. Build it with `make image` (docker, podman or buildah).
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) -t switchyard .
#
# Stages (the last, runtime, is the default target):
#   prebuilt the runtime image around a binary built outside (bin/image/
#            switchyard and bin/image/ca-certificates.crt in the context),
#            for machines where the builder image cannot be pulled; see
#            deploy/scripts/image.sh. It comes first so that building it
#            never touches the builder image.
#   build    compiles with the Go toolchain of go.mod (CGO off, -trimpath,
#            version and commit from the build args), cross-compiling for
#            the target platform when built with --platform.
#   runtime  scratch + CA certificates + /etc/passwd with the nonroot user
#            (65532) + /switchyard.

ARG GO_VERSION=1.26.8
# Any image with the Go toolchain of GO_VERSION at /usr/local/go, a POSIX
# shell and CA certificates at /etc/ssl/certs/ca-certificates.crt.
ARG BUILDER_IMAGE=docker.io/library/golang:${GO_VERSION}-bookworm

FROM scratch AS prebuilt
ARG VERSION=dev
ARG COMMIT=unknown
COPY bin/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY deploy/image/passwd /etc/passwd
COPY deploy/image/group /etc/group
COPY bin/image/switchyard /switchyard
LABEL org.opencontainers.image.title="switchyard" \
      org.opencontainers.image.description="Sidecar-free L7 inference gateway" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.source="https://github.com/switchyard-dev/switchyard"
USER 65532:65532
ENTRYPOINT ["/switchyard"]
CMD ["--help"]

FROM --platform=$BUILDPLATFORM ${BUILDER_IMAGE} AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
# The module proxy the build downloads modules through (a corporate
# mirror, say); the default is Go's.
ARG GOPROXY=https://proxy.golang.org,direct
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOPROXY=${GOPROXY}
WORKDIR /src
# Modules first: this layer is reused while go.mod and go.sum do not change.
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
RUN GOOS=${TARGETOS} GOARCH=${TARGETARCH:-$(go env GOARCH)} \
    go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/switchyard ./cmd/switchyard

FROM scratch AS runtime
ARG VERSION=dev
ARG COMMIT=unknown
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY deploy/image/passwd /etc/passwd
COPY deploy/image/group /etc/group
COPY --from=build /out/switchyard /switchyard
LABEL org.opencontainers.image.title="switchyard" \
      org.opencontainers.image.description="Sidecar-free L7 inference gateway" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.source="https://github.com/switchyard-dev/switchyard"
USER 65532:65532
ENTRYPOINT ["/switchyard"]
CMD ["--help"]

