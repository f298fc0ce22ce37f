#!/usr/bin/env bash
# Builds fusebox's container images from this machine's files alone (no
# registry): scratch images of the coordinator, the agent sidecar and the
# fake provider from static Go binaries, and a scratch Redis image from
# Debian's redis-server. Quick and idempotent: unchanged inputs hit the
# build cache.
#
#   FUSEBOX_IMAGE_TAG   tag of the images (default local)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
IMAGES="$ROOT/deploy/images"
TAG="${FUSEBOX_IMAGE_TAG:-local}"
export DOCKER_BUILDKIT=0   # the classic builder: FROM scratch needs no pull
export PATH="/usr/local/go/bin:$PATH"

command -v docker >/dev/null || { echo "docker is required to build images" >&2; exit 1; }
"$ROOT/scripts/ensure-redis.sh"

ca=""
for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  if [ -f "$f" ]; then ca="$f"; break; fi
done

for name in coordinator agent fakeprovider; do
  rootfs="$IMAGES/$name/rootfs"
  mkdir -p "$rootfs/tmp" "$rootfs/etc/ssl/certs" "$rootfs/etc/fusebox"
  chmod 1777 "$rootfs/tmp"
  (cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$rootfs/fusebox-$name" "./cmd/$name")
  if [ -n "$ca" ]; then cp "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"; fi
done

# Redis: the binary under its own name (it is a multi-call binary behind a
# symlink), every library ldd lists, and the dynamic loader.
rootfs="$IMAGES/redis/rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs/usr/bin" "$rootfs/data" "$rootfs/tmp" "$rootfs/etc/redis"
chmod 1777 "$rootfs/tmp" "$rootfs/data" "$rootfs/etc/redis"
bin="$(command -v redis-server)"
cp -L "$bin" "$rootfs/usr/bin/redis-server"
ldd "$bin" | awk '/=>/ {print $3} !/=>/ && $1 ~ /^\// {print $1}' | while read -r lib; do
  [ -n "$lib" ] || continue
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done

for name in redis coordinator agent fakeprovider; do
  docker build -q -t "fusebox/$name:$TAG" "$IMAGES/$name" >/dev/null 2>&1 || docker build -t "fusebox/$name:$TAG" "$IMAGES/$name"
  echo "built fusebox/$name:$TAG"
done
