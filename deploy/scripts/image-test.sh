#!/usr/bin/env bash
# Proves that the image builds, and checks what is inside it. `make
# image-test` runs it. Exits 0 with "image-test: SKIP" when no builder
# (docker with a daemon, podman, buildah) is installed.
#
# It builds the Dockerfile the strongest way this machine allows
# (IMAGE_TEST_MODE forces one):
#   source         the Dockerfile as is: pulls the Go builder image, downloads
#                  the modules and compiles inside the build;
#   local-builder  (buildah only) when the builder image cannot be pulled:
#                  the same Dockerfile with BUILDER_IMAGE set to an image
#                  assembled here from this machine's Go toolchain
#                  (/usr/local/go), Debian's busybox-static (/bin/busybox,
#                  for the shell) and the CA bundle; the modules are still
#                  downloaded and the binary compiled inside the build;
#   prebuilt       the `prebuilt` stage around a binary built on this
#                  machine: proves the runtime image, not the build stage.
# Then it checks the image: user 65532:65532, entrypoint /switchyard, the
# revision label, /etc/passwd, the CA bundle, and a static binary whose
# `version` names the commit (run from the image's files on this machine:
# containers cannot run here).
set -euo pipefail
cd "$(dirname "$0")/../.."

builder=""
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then builder=docker
elif command -v podman >/dev/null; then builder=podman
elif command -v buildah >/dev/null; then builder=buildah
fi
if [ -z "$builder" ]; then
  echo "image-test: SKIP: no image builder here (docker with a running daemon, podman or buildah)"
  exit 0
fi
export BUILDER=$builder

go_version=$(sed -n 's/^ARG GO_VERSION=//p' Dockerfile)
default_builder_image="docker.io/library/golang:${go_version}-bookworm"
export COMMIT=${COMMIT:-$(git rev-parse HEAD)}
export VERSION=${VERSION:-image-test}
export IMAGE=localhost/switchyard-image-test:$$
local_builder=localhost/switchyard-go-builder:${go_version}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  "$builder" rmi -f "$IMAGE" >/dev/null 2>&1 || true
  [ -n "${ctr:-}" ] && { buildah umount "$ctr" >/dev/null 2>&1 || true; buildah rm "$ctr" >/dev/null 2>&1 || true; }
  rm -rf "${tmp:-/nonexistent}"
}
trap cleanup EXIT
tmp=$(mktemp -d)

# assemble_local_builder builds $local_builder from this machine's files.
assemble_local_builder() {
  local have
  have=$(/usr/local/go/bin/go env GOVERSION)
  [ "$have" = "go${go_version}" ] || echo "image-test: note: local Go is ${have}, the Dockerfile names go${go_version}" >&2
  buildah rmi -f "$local_builder" >/dev/null 2>&1 || true
  local c
  c=$(buildah from scratch)
  buildah copy --quiet "$c" /usr/local/go /usr/local/go >/dev/null
  buildah copy --quiet "$c" /bin/busybox /bin/busybox >/dev/null
  buildah copy --quiet "$c" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
  buildah run --isolation "${BUILDAH_ISOLATION:-chroot}" "$c" /bin/busybox sh -c \
    '/bin/busybox --install -s /bin && mkdir -p /tmp /root /go && chmod 1777 /tmp'
  buildah config --env PATH=/go/bin:/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env GOPATH=/go --env HOME=/root --env "GOLANG_VERSION=${go_version}" --workingdir /go "$c"
  buildah commit --quiet "$c" "$local_builder" >/dev/null
  buildah rm "$c" >/dev/null
}

mode=${IMAGE_TEST_MODE:-}
if [ -z "$mode" ]; then
  if "$builder" pull "${BUILDER_IMAGE:-$default_builder_image}" >"$tmp/pull.log" 2>&1; then
    mode=source
  elif [ "$builder" = buildah ] && [ -x /usr/local/go/bin/go ] && [ -x /bin/busybox ] &&
       ! ldd /bin/busybox >/dev/null 2>&1 && [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    mode=local-builder
  else
    mode=prebuilt
  fi
  [ "$mode" = source ] || echo "image-test: the builder image cannot be pulled ($(tail -1 "$tmp/pull.log")); mode ${mode}" >&2
fi

case "$mode" in
  source) deploy/scripts/image.sh ;;
  local-builder)
    assemble_local_builder
    BUILDER_IMAGE=$local_builder deploy/scripts/image.sh ;;
  prebuilt) deploy/scripts/image.sh --prebuilt ;;
  *) echo "image-test: IMAGE_TEST_MODE must be source, local-builder or prebuilt" >&2; exit 2 ;;
esac

# The image's configuration.
if [ "$builder" = buildah ]; then
  fmt() { buildah inspect --type image --format "$1" "$IMAGE"; }
  user=$(fmt '{{.OCIv1.Config.User}}')
  entry=$(fmt '{{.OCIv1.Config.Entrypoint}}')
  rev=$(fmt '{{index .OCIv1.Config.Labels "org.opencontainers.image.revision"}}')
else
  fmt() { "$builder" image inspect --format "$1" "$IMAGE"; }
  user=$(fmt '{{.Config.User}}')
  entry=$(fmt '{{.Config.Entrypoint}}')
  rev=$(fmt '{{index .Config.Labels "org.opencontainers.image.revision"}}')
fi
fail=0
check() { if [ "$2" = "$3" ]; then echo "image-test: ok: $1 = $2"; else echo "image-test: FAIL: $1 = '$2', want '$3'"; fail=1; fi; }
check user "$user" "65532:65532"
check entrypoint "$entry" '[/switchyard]'
check "revision label" "$rev" "$COMMIT"

# The image's files.
root=$tmp/root
mkdir -p "$root"
if [ "$builder" = buildah ]; then
  ctr=$(buildah from "$IMAGE")
  if [ "$(id -u)" = 0 ]; then
    cp -a "$(buildah mount "$ctr")/." "$root/"
  else
    # shellcheck disable=SC2016 # expanded by the inner shell
    buildah unshare sh -c 'cp -a "$(buildah mount "$1")/." "$2/"' sh "$ctr" "$root"
  fi
else
  c=$("$builder" create "$IMAGE")
  "$builder" cp "$c:/" - | tar -x -C "$root"
  "$builder" rm "$c" >/dev/null
fi
check "files in the image" "$(cd "$root" && find . -type f | sort | tr '\n' ' ')" \
  "./etc/group ./etc/passwd ./etc/ssl/certs/ca-certificates.crt ./switchyard "
check "nonroot user" "$(grep -c '^nonroot:x:65532:65532:' "$root/etc/passwd")" 1
certs=$(grep -c 'BEGIN CERTIFICATE' "$root/etc/ssl/certs/ca-certificates.crt" || true)
check "CA certificates" "$([ "$certs" -gt 10 ] && echo present || echo "missing ($certs)")" present
# A static binary has no program interpreter (no dynamic loader).
if command -v readelf >/dev/null; then
  check "static binary" "$(readelf -l "$root/switchyard" | grep -c 'Requesting program interpreter' || true)" 0
fi
if [ "${GOARCH:-$(go env GOHOSTARCH)}" = "$(go env GOHOSTARCH)" ]; then
  out=$("$root/switchyard" version)
  echo "image-test: the image's binary says: $out"
  case "$out" in *"commit ${COMMIT}"*) echo "image-test: ok: version names the commit" ;; *) echo "image-test: FAIL: version does not name ${COMMIT}"; fail=1 ;; esac
fi

if [ $fail = 0 ]; then
  case "$mode" in
    source) echo "image-test: PASS (${builder}, from source with ${BUILDER_IMAGE:-$default_builder_image})" ;;
    local-builder) echo "image-test: PASS (${builder}, from source with ${local_builder}, assembled here because ${default_builder_image} cannot be pulled: the Dockerfile's build stage ran — module download and static compile inside the build — but not on the official golang image)" ;;
    prebuilt) echo "image-test: PASS (${builder}, prebuilt stage: the runtime image was proven; the build stage was not run)" ;;
  esac
fi
exit $fail
