#!/usr/bin/env bash
# Builds the Switchyard image (the Dockerfile at the repository root) with
# the first builder that works here: docker (with a running daemon),
# podman, or buildah. `make image` runs it.
#
#   deploy/scripts/image.sh             build from source (stages build + runtime)
#   deploy/scripts/image.sh --prebuilt  build the binary here, then the
#                                       `prebuilt` stage around it (no
#                                       builder image needed)
#
# Environment:
#   IMAGE          image name (default switchyard:$VERSION, or switchyard:dev)
#   VERSION        version stamped in (default: git describe --tags --dirty)
#   COMMIT         commit stamped in (default: git rev-parse HEAD)
#   BUILDER        docker, podman or buildah (default: the first that works)
#   BUILDER_IMAGE  the Go builder image (default: the Dockerfile's)
#   GOARCH         target architecture (default: this machine's)
#   GOPROXY        passed to the build when set
#   BUILDAH_ISOLATION  buildah's isolation (default chroot, which works
#                  inside containers and without user namespaces)
set -euo pipefail
cd "$(dirname "$0")/../.."

prebuilt=0
case "${1:-}" in
  --prebuilt) prebuilt=1 ;;
  "") ;;
  *) echo "usage: $0 [--prebuilt]" >&2; exit 2 ;;
esac

VERSION=${VERSION:-$(git describe --tags --dirty 2>/dev/null || echo dev)}
COMMIT=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
GOARCH=${GOARCH:-$(go env GOARCH 2>/dev/null || uname -m | sed 's/x86_64/amd64/;s/aarch64/arm64/')}
IMAGE=${IMAGE:-switchyard:${VERSION}}

# detect_builder prints the first builder that can build here.
detect_builder() {
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then echo docker; return; fi
  if command -v podman >/dev/null; then echo podman; return; fi
  if command -v buildah >/dev/null; then echo buildah; return; fi
  return 1
}
if [ -z "${BUILDER:-}" ]; then
  BUILDER=$(detect_builder) || {
    echo "image: no builder: install docker (with a running daemon), podman or buildah" >&2
    exit 1
  }
fi

args=(--build-arg "VERSION=${VERSION}" --build-arg "COMMIT=${COMMIT}" -t "${IMAGE}")
[ -n "${BUILDER_IMAGE:-}" ] && args+=(--build-arg "BUILDER_IMAGE=${BUILDER_IMAGE}")
[ -n "${GOPROXY:-}" ] && args+=(--build-arg "GOPROXY=${GOPROXY}")

if [ "$prebuilt" = 1 ]; then
  mkdir -p bin/image
  CGO_ENABLED=0 GOOS=linux GOARCH="${GOARCH}" go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
    -o bin/image/switchyard ./cmd/switchyard
  ca=/etc/ssl/certs/ca-certificates.crt
  [ -s "$ca" ] || { echo "image: no CA bundle at $ca (install ca-certificates)" >&2; exit 1; }
  cp "$ca" bin/image/ca-certificates.crt
  args+=(--target prebuilt)
fi

case "$BUILDER" in
  docker | podman)
    args+=(--platform "linux/${GOARCH}")
    ;;
  buildah)
    # buildah does not set the automatic platform arguments itself.
    args+=(--isolation "${BUILDAH_ISOLATION:-chroot}" --build-arg TARGETOS=linux --build-arg "TARGETARCH=${GOARCH}")
    ;;
  *) echo "image: BUILDER must be docker, podman or buildah, not ${BUILDER}" >&2; exit 2 ;;
esac

echo "image: ${BUILDER} build ${IMAGE} (version ${VERSION}, commit ${COMMIT}, linux/${GOARCH}$([ "$prebuilt" = 1 ] && echo ', prebuilt binary'))" >&2
"$BUILDER" build "${args[@]}" .
