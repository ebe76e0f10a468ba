#!/usr/bin/env bash
# Runs the release recipe twice into temporary folders and checks it: both
# archives and SHA256SUMS are there and verify, each archive holds a
# static binary for its architecture, this machine's binary names the
# commit, and the second run gives the same bytes (reproducible).
# `make release-test` runs it (two cross-compiles: minutes on a busy
# machine the first time, seconds with a warm build cache).
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export VERSION=v0.0.0-release-test COMMIT
COMMIT=$(git rev-parse HEAD)
fail=0
bad() { echo "release-test: FAIL: $*"; fail=1; }

DIST=$tmp/a deploy/scripts/release.sh
DIST=$tmp/b deploy/scripts/release.sh

(cd "$tmp/a" && sha256sum -c SHA256SUMS) || bad "SHA256SUMS does not verify"
cmp -s "$tmp/a/SHA256SUMS" "$tmp/b/SHA256SUMS" || bad "two runs gave different archives: $(diff "$tmp/a/SHA256SUMS" "$tmp/b/SHA256SUMS")"
for arch in amd64 arm64; do
  name=switchyard_${VERSION}_linux_${arch}
  f=$tmp/a/$name.tar.gz
  [ -s "$f" ] || { bad "missing $name.tar.gz"; continue; }
  grep -q " $name.tar.gz\$" "$tmp/a/SHA256SUMS" || bad "$name.tar.gz not in SHA256SUMS"
  list=$(tar -tzf "$f" | sort | tr '\n' ' ')
  [ "$list" = "$name/ $name/README.md $name/switchyard " ] || bad "$name: files $list"
  mkdir -p "$tmp/x/$arch" && tar -xzf "$f" -C "$tmp/x/$arch"
  bin=$tmp/x/$arch/$name/switchyard
  want=$([ "$arch" = amd64 ] && echo 'X86-64' || echo 'AArch64')
  readelf -h "$bin" | grep -q "Machine:.*${want}" || bad "$name: not an ${want} ELF"
  readelf -l "$bin" | grep -q 'program interpreter' && bad "$name: dynamically linked"
  if [ "$arch" = "$(go env GOHOSTARCH)" ]; then
    out=$("$bin" version)
    echo "release-test: $name says: $out"
    case "$out" in "switchyard ${VERSION} (commit ${COMMIT},"*) ;; *) bad "$name: version does not name ${VERSION} and ${COMMIT}" ;; esac
  fi
done
[ $fail = 0 ] && echo "release-test: PASS ($(tr '\n' ' ' <"$tmp/a/SHA256SUMS"))"
exit $fail
