#!/usr/bin/env bash
# A second initramfs layer for the host pass-through test (test/e2e/vgpio-guest-passthrough.test.ts):
# this machine's node binary and its shared libraries, as a gzipped cpio archive. The kernel unpacks
# concatenated cpio archives in order, so the guest's initrd for that test is the small initramfs
# from build-guest.sh + this layer + the test's own package layer (dist bundle + the addon built here).
# The small initramfs stays as it is for the other guest tests.
# Cached as $CACHE/node-layer-<node version>.cpio.gz; prints its path.
set -euo pipefail

CACHE="${VGPIO_GUEST_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/vgpio-guest}"
NODE_BIN=$(command -v node)
NODE_VER=$("$NODE_BIN" --version)
LAYER="$CACHE/node-layer-$NODE_VER.cpio.gz"

mkdir -p "$CACHE"
exec 9>"$CACHE/.node-layer.lock"
flock 9
if [[ ! -s $LAYER ]]; then
  printf '[build-node-layer] packing %s and its libraries into %s\n' "$NODE_BIN" "$LAYER" >&2
  tmp=$(mktemp -d "$CACHE/.tmp.node.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  R="$tmp/root"
  mkdir -p "$R/usr/bin"
  cp "$NODE_BIN" "$R/usr/bin/node"
  # ldd lines: "libx.so => /path (addr)" or "/lib64/ld-linux-x86-64.so.2 (addr)"
  for lib in $(ldd "$NODE_BIN" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
  done
  (cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet | gzip -n -6) >"$tmp/layer"
  mv "$tmp/layer" "$LAYER"
  for old in "$CACHE"/node-layer-*.cpio.gz; do [[ $old == "$LAYER" ]] || rm -f "$old"; done
fi
echo "$LAYER"
