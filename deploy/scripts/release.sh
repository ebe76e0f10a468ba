#!/usr/bin/env bash
# Builds the release archives: switchyard_VERSION_linux_{amd64,arm64}.tar.gz
# (the static binary, CGO off, -trimpath, version and commit stamped in,
# plus README.md) and SHA256SUMS, in $DIST. `make release` runs it.
#
# The archives are reproducible: the same commit gives the same bytes (file
# times are the commit's time, owners are 0, entries sorted, gzip without
# a name or time).
#
# Environment: DIST (default dist), VERSION (default: git describe --tags
# --dirty, else 0.0.0-dev), COMMIT (default: git rev-parse HEAD),
# PLATFORMS (default "linux/amd64 linux/arm64").
set -euo pipefail
cd "$(dirname "$0")/../.."

DIST=${DIST:-dist}
VERSION=${VERSION:-$(git describe --tags --dirty 2>/dev/null || echo 0.0.0-dev)}
COMMIT=${COMMIT:-$(git rev-parse HEAD)}
PLATFORMS=${PLATFORMS:-linux/amd64 linux/arm64}
# File times in the archives: the time of the commit stamped in.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct "$COMMIT" 2>/dev/null || echo 0)}

mkdir -p "$DIST"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
archives=()
for p in $PLATFORMS; do
  os=${p%/*} arch=${p#*/}
  name="switchyard_${VERSION}_${os}_${arch}"
  mkdir -p "$stage/$name"
  echo "release: $name" >&2
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
    -o "$stage/$name/switchyard" ./cmd/switchyard
  cp README.md "$stage/$name/"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH}" \
    --mode='u+rwX,go+rX,go-w' -C "$stage" -cf - "$name" | gzip -n -9 >"$DIST/$name.tar.gz"
  archives+=("$name.tar.gz")
done
(cd "$DIST" && sha256sum "${archives[@]}" >SHA256SUMS)
echo "release: wrote ${archives[*]} and SHA256SUMS in $DIST" >&2
