#!/usr/bin/env bash
# Prepares everything the real-guest tests need and caches it outside the repo:
#   - QEMU 10 (bookworm-backports, installed with apt) and QEMU 7.2 (bookworm, extracted into the cache)
#   - a Debian bookworm 6.1 kernel (extracted, not installed), gpio-virtio.ko built out of tree for it
#   - an initramfs with busybox, libgpiod 1.6 tools, the virtio-pci modules and gpio-virtio.ko
# Writes $CACHE/env.json (read by guest-vm.ts) and prints it.
#
# Env: VGPIO_GUEST_CACHE  cache dir (default ~/.cache/vgpio-guest)
#      VGPIO_GUEST_KERNEL_PKGVER  force a Debian kernel package version (e.g. 6.1.192-2)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

CACHE="${VGPIO_GUEST_CACHE:-${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}/.cache/vgpio-guest}"
ARCH_TRIPLET=x86_64-linux-gnu

log() { printf '[build-guest] %s\n' "$*" >&2; }
die() { printf '[build-guest] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root (uses apt-get)"
mkdir -p "$CACHE"
# Serialise concurrent runs (two CI jobs, or a test run racing a manual build).
exec 9>"$CACHE/.lock"
flock 9
rm -rf "$CACHE"/.tmp.* # left by an interrupted run

# ---------------------------------------------------------------- apt sources
# Mirror whatever URI the host uses for the plain "bookworm" suite.
bookworm_mirror() {
  local uri
  uri=$(awk '
    /^URIs:/ { u = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") { print u; exit } }
    /^[ \t]*$/ { u = "" }
  ' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [[ -z $uri && -f /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

BPO_SOURCES=/etc/apt/sources.list.d/bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  mirror=$(bookworm_mirror)
  log "adding bookworm-backports from $mirror"
  cat >"$BPO_SOURCES" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt-get update -q >&2
fi

# Each apt-cache call costs ~0.3 s (it loads the whole cache), so ask about everything at once.
madison() {
  apt-cache madison qemu-system-x86 qemu-system-data qemu-system-common seabios linux-image-amd64 linux-source-6.1
}
MADISON=$(madison)
if [[ $MADISON != *bookworm-backports* ]]; then
  apt-get update -q >&2
  MADISON=$(madison)
fi

# Installed version of a package, or empty.
installed_version() {
  { dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null || true; } | awk '$1 == "ii" { print $2 }'
}
# Available versions of package $1 matching regex $2 (and from archive $3 if given), highest first.
versions() {
  awk -F' [|] ' -v p="$1" -v re="$2" -v ar="${3:-}" \
    '{ gsub(/ /, "", $1); gsub(/ /, "", $2) } $1 == p && $2 ~ re && (ar == "" || index($3, ar)) { print $2 }' \
    <<<"$MADISON" | sort -Vr -u
}
best_version() {
  local v
  v=$(versions "$@")
  echo "${v%%$'\n'*}"
}

# ---------------------------------------------------------------- QEMU 10
# Any QEMU >= 9 passes VIRTIO_GPIO_F_IRQ through; backports carries 10 today.
QEMU10_VER=$(best_version qemu-system-x86 '^1:(9|[1-9][0-9])\.' bookworm-backports)
[[ -n $QEMU10_VER ]] || die "no QEMU >= 9 in bookworm-backports (apt-cache madison qemu-system-x86)"
if [[ $(installed_version qemu-system-x86) != "$QEMU10_VER" ]]; then
  log "installing qemu-system-x86=$QEMU10_VER from bookworm-backports"
  apt-get install -y -q --no-install-recommends -t bookworm-backports "qemu-system-x86=$QEMU10_VER" >&2
fi
QEMU10_BIN=/usr/bin/qemu-system-x86_64

# ---------------------------------------------------------------- kernel choice
# The newest linux-image-amd64 6.1 version V whose image (linux-image-ABI-amd64), linux-headers-ABI-amd64
# and linux-source-6.1 all exist at exactly V. (backports' 6.12 kernels are skipped: no linux-source-6.1.)
pick_kernel() {
  local v abi sources
  local -A abi_of=()
  # "V ABI" for every available version, from "Version: V" / "Depends: linux-image-ABI (= V)".
  while read -r v abi; do abi_of[$v]=$abi; done < <(
    apt-cache show linux-image-amd64 | awk '
      /^Version:/ { v = $2 }
      /^Depends:/ && match($0, /linux-image-6\.1\.[0-9]+-[0-9]+-amd64/) { print v, substr($0, RSTART + 12, RLENGTH - 12) }'
  )
  sources=$'\n'$(versions linux-source-6.1 .)$'\n'
  for v in ${VGPIO_GUEST_KERNEL_PKGVER:-$(versions linux-image-amd64 '^6\.1\.')}; do
    abi=${abi_of[$v]:-}
    [[ -n $abi && $sources == *$'\n'"$v"$'\n'* ]] || continue
    [[ $(apt-cache madison "linux-headers-$abi") == *" $v "* ]] || continue
    echo "$abi $v"
    return 0
  done
  return 1
}
read -r KVER KPKGVER < <(pick_kernel) || die "no bookworm kernel version with matching linux-headers and linux-source-6.1"
log "kernel $KVER (package $KPKGVER), QEMU 10 $QEMU10_VER"

# ---------------------------------------------------------------- host build tools
need=(
  "busybox-static" "gpiod" "cpio" "gzip" "xz-utils" "kmod" "make" "gcc"
  "linux-headers-$KVER=$KPKGVER" "linux-source-6.1=$KPKGVER"
)
missing=()
for spec in "${need[@]}"; do
  pkg=${spec%%=*}
  want=${spec#*=}
  have=$(installed_version "$pkg")
  if [[ -z $have || ($spec == *=* && $have != "$want") ]]; then missing+=("$spec"); fi
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# ---------------------------------------------------------------- QEMU 7.2 (extracted)
# Same package name as QEMU 10, so it can't be apt-installed alongside: extract the debs instead.
# qemu-system-common holds 7.2's accel-tcg module, qemu-system-data its option ROMs. The binary is
# relocatable: it looks for firmware and modules in ../share and ../lib next to itself, not /usr, so
# bookworm's own seabios goes into the same tree.
QEMU7_VER=$(best_version qemu-system-x86 '^1:7\.2')
QEMU7_PKGS=(
  "qemu-system-x86=$QEMU7_VER"
  "qemu-system-data=$(best_version qemu-system-data '^1:7\.2')"
  "qemu-system-common=$(best_version qemu-system-common '^1:7\.2')"
  "seabios=$(best_version seabios '^[^~]+$')" # not the ~bpo12 one QEMU 10 pulled in
)
for spec in "${QEMU7_PKGS[@]}"; do [[ $spec != *= ]] || die "no ${spec%=} version for QEMU 7.2 in bookworm"; done
QEMU7_DIR="$CACHE/qemu-${QEMU7_VER//:/_}"
if [[ $(cat "$QEMU7_DIR/.done" 2>/dev/null) != "${QEMU7_PKGS[*]}" ]]; then
  log "extracting ${QEMU7_PKGS[*]} into $QEMU7_DIR"
  tmp=$(mktemp -d "$CACHE/.tmp.XXXXXX")
  (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "${QEMU7_PKGS[@]}") >&2
  mkdir -p "$tmp/root"
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
  # Drop optional UI/spice/GL modules whose libraries (only Recommended) are not installed; otherwise
  # 7.2 complains on stderr each time it enumerates modules (e.g. for -device help).
  for so in "$tmp/root/usr/lib/$ARCH_TRIPLET/qemu/"*.so; do
    if [[ $(ldd "$so") == *'not found'* ]]; then rm "$so"; fi
  done
  rm -rf "$QEMU7_DIR"
  mv "$tmp/root" "$QEMU7_DIR"
  rm -rf "$tmp"
  echo "${QEMU7_PKGS[*]}" >"$QEMU7_DIR/.done"
fi
QEMU7_BIN=$QEMU7_DIR/usr/bin/qemu-system-x86_64
QEMU7_FW=$QEMU7_DIR/usr/share/qemu
QEMU7_MODDIR=$QEMU7_DIR/usr/lib/$ARCH_TRIPLET/qemu
if [[ $(ldd "$QEMU7_BIN") == *'not found'* ]]; then
  ldd "$QEMU7_BIN" >&2
  die "QEMU 7.2 is missing shared libraries"
fi

check_qemu() { # name binary [env...]
  local name=$1 bin=$2
  shift 2
  local ver
  ver=$(env "$@" "$bin" --version | sed -n 's/^QEMU emulator version \([^ ]*\).*/\1/p')
  [[ -n $ver ]] || die "$name: $bin --version failed"
  [[ $(env "$@" "$bin" -nodefaults -machine none -device help) == *'"vhost-user-gpio-pci"'* ]] ||
    die "$name: $bin has no vhost-user-gpio-pci"
  echo "$ver"
}
QEMU10_VERSION=$(check_qemu qemu10 "$QEMU10_BIN")
QEMU7_VERSION=$(check_qemu qemu7 "$QEMU7_BIN" "QEMU_MODULE_DIR=$QEMU7_MODDIR")

# ---------------------------------------------------------------- kernel + module + initramfs
KDIR="$CACHE/kernel-$KVER-$KPKGVER"
GPIOD_VER=$(installed_version gpiod)
BUSYBOX_VER=$(installed_version busybox-static)
# Rebuild when this script (e.g. /init) or what goes into the initramfs changes, not only the kernel.
KSTAMP="$KPKGVER gpiod=$GPIOD_VER busybox=$BUSYBOX_VER script=$(sha256sum <"${BASH_SOURCE[0]}" | cut -c1-16)"
if [[ $(cat "$KDIR/.done" 2>/dev/null) != "$KSTAMP" ]]; then
  log "building guest for $KVER into $KDIR"
  rm -rf "$KDIR"
  tmp=$(mktemp -d "$CACHE/.tmp.XXXXXX")
  mkdir -p "$tmp/out"

  # Kernel image + modules: extracted, never installed (the package's hooks would touch the host's /boot).
  (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "linux-image-$KVER=$KPKGVER") >&2
  dpkg-deb -x "$tmp"/linux-image-*.deb "$tmp/img"
  cp "$tmp/img/boot/vmlinuz-$KVER" "$tmp/out/vmlinuz"
  cp "$tmp/img/boot/config-$KVER" "$tmp/img/boot/System.map-$KVER" "$tmp/out/"
  mkdir -p "$tmp/out/lib/modules"
  mv "$tmp/img/lib/modules/$KVER" "$tmp/out/lib/modules/"
  MODS="$tmp/out/lib/modules/$KVER"
  depmod -b "$tmp/out" "$KVER" # the .deb ships no modules.dep (postinst generates it)

  # gpio-virtio is not enabled in Debian's config (CONFIG_GPIO_VIRTIO unset): build it out of tree.
  mkdir -p "$tmp/out/gpio-virtio"
  tar -xJf /usr/src/linux-source-6.1.tar.xz -C "$tmp/out/gpio-virtio" --strip-components=3 \
    linux-source-6.1/drivers/gpio/gpio-virtio.c
  echo 'obj-m := gpio-virtio.o' >"$tmp/out/gpio-virtio/Kbuild"
  make -s -C "/usr/src/linux-headers-$KVER" M="$tmp/out/gpio-virtio" modules >"$tmp/out/gpio-virtio/build.log" 2>&1 ||
    { cat "$tmp/out/gpio-virtio/build.log" >&2; die "gpio-virtio build failed"; }
  [[ $(modinfo -F vermagic "$tmp/out/gpio-virtio/gpio-virtio.ko") == "$KVER "* ]] || die "gpio-virtio.ko vermagic mismatch"

  # ---- initramfs tree
  R="$tmp/initramfs"
  mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,lib/$ARCH_TRIPLET,lib64,proc,sys,dev,tmp,run,etc,root}
  cp /bin/busybox "$R/bin/busybox"
  for applet in $(/bin/busybox --list-full); do
    [[ -e $R/$applet ]] || ln -s /bin/busybox "$R/$applet"
  done
  for tool in gpiodetect gpioinfo gpioget gpioset gpiomon gpiofind; do
    cp "/usr/bin/$tool" "$R/usr/bin/$tool"
    # ldd lines: "libx.so => /path (addr)" or "/lib64/ld-linux-x86-64.so.2 (addr)"
    for lib in $(ldd "/usr/bin/$tool" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
      [[ -e $R$lib ]] || { mkdir -p "$R$(dirname "$lib")" && cp -L "$lib" "$R$lib"; }
    done
  done

  # Modules: the virtio-pci stack plus gpio-virtio, in dependency order from modules.dep.
  # modules.dep lists a module's deps so that the last one must be loaded first.
  declare -A seen=()
  order=()
  add_module() { # path relative to $MODS, e.g. kernel/drivers/virtio/virtio.ko
    local m=$1 deps i
    [[ -z ${seen[$m]:-} ]] || return 0
    seen[$m]=1
    deps=$(awk -v m="$m:" '$1 == m { $1 = ""; print }' "$MODS/modules.dep")
    read -r -a deps <<<"$deps"
    for ((i = ${#deps[@]} - 1; i >= 0; i--)); do add_module "${deps[i]}"; done
    order+=("$m")
  }
  for name in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci; do
    path=$(awk -F: -v n="/$name.ko" 'substr($1, length($1) - length(n) + 1) == n { print $1; exit }' "$MODS/modules.dep")
    [[ -n $path ]] || die "module $name not found in $KVER"
    add_module "$path"
  done
  # Debian's 6.1 modules are plain .ko (CONFIG_MODULE_COMPRESS_NONE); busybox insmod can't load .ko.xz.
  for i in "${!order[@]}"; do
    m=${order[i]}
    mkdir -p "$R/lib/modules/$KVER/$(dirname "$m")"
    case $m in
    *.ko) cp "$MODS/$m" "$R/lib/modules/$KVER/$m" ;;
    *.ko.xz) xz -dc "$MODS/$m" >"$R/lib/modules/$KVER/${m%.xz}" && order[i]=${m%.xz} ;;
    *) die "unsupported module format: $m" ;;
    esac
  done
  mkdir -p "$R/lib/modules/$KVER/extra"
  cp "$tmp/out/gpio-virtio/gpio-virtio.ko" "$R/lib/modules/$KVER/extra/"
  order+=("extra/gpio-virtio.ko")
  cp "$MODS/modules.builtin" "$MODS/modules.builtin.modinfo" "$MODS/modules.order" "$R/lib/modules/$KVER/"
  depmod -b "$R" "$KVER" # lets the guest use modprobe/rmmod gpio_virtio by name

  cat >"$R/init" <<EOF
#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /tmp
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
# Keep kernel messages off the console the host parses; read them with dmesg.
dmesg -n 1
for m in ${order[*]}; do
  insmod /lib/modules/$KVER/\$m || echo "VGPIO_INIT: insmod \$m failed"
done
hostname vgpio-guest
# setsid -c: new session with ttyS0 as controlling tty (so ^C and job control work). Not run from
# PID 1 directly: busybox setsid forks when already a group leader, and init must not exit.
setsid -c /bin/guest-shell </dev/ttyS0 >/dev/ttyS0 2>&1
poweroff -f
EOF
  cat >"$R/bin/guest-shell" <<'EOF'
#!/bin/sh
# -echo: the host parses what the shell prints; with echo off busybox ash also skips its line editor.
stty -echo
export PS1='' PS2=''
echo __VGPIO_GUEST_READY__
exec sh
EOF
  chmod 755 "$R/init" "$R/bin/guest-shell"
  (cd "$R" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet | gzip -n -9) \
    >"$tmp/out/initramfs.cpio.gz"
  printf '%s\n' "${order[@]}" >"$tmp/out/initramfs-modules.txt"

  rm -rf "$tmp/img" "$tmp"/*.deb "$R"
  mv "$tmp/out" "$KDIR"
  rm -rf "$tmp"
  echo "$KSTAMP" >"$KDIR/.done"
fi

# Drop what older runs built for other kernel / QEMU 7.2 versions (~400 MB per kernel).
for d in "$CACHE"/kernel-* "$CACHE"/qemu-*; do
  if [[ -d $d && $d != "$KDIR" && $d != "$QEMU7_DIR" ]]; then
    log "removing stale $d"
    rm -rf "$d"
  fi
done

# ---------------------------------------------------------------- env.json
export CACHE KVER KPKGVER KDIR QEMU10_BIN QEMU10_VER QEMU10_VERSION QEMU7_BIN QEMU7_VER QEMU7_VERSION QEMU7_FW \
  QEMU7_MODDIR GPIOD_VER BUSYBOX_VER
# shellcheck disable=SC2016 # JS template literals, not shell expansions
node -e '
const e = process.env;
const env = {
  cacheDir: e.CACHE,
  kernel: {
    version: e.KVER,
    packageVersion: e.KPKGVER,
    vmlinuz: `${e.KDIR}/vmlinuz`,
    initrd: `${e.KDIR}/initramfs.cpio.gz`,
    modulesDir: `${e.KDIR}/lib/modules/${e.KVER}`,
    gpioVirtioKo: `${e.KDIR}/gpio-virtio/gpio-virtio.ko`,
  },
  qemu10: { binary: e.QEMU10_BIN, version: e.QEMU10_VERSION, packageVersion: e.QEMU10_VER, firmwareDirs: [], env: {} },
  qemu7: {
    binary: e.QEMU7_BIN,
    version: e.QEMU7_VERSION,
    packageVersion: e.QEMU7_VER,
    firmwareDirs: [e.QEMU7_FW],
    env: { QEMU_MODULE_DIR: e.QEMU7_MODDIR },
  },
  gpiod: e.GPIOD_VER,
  busybox: e.BUSYBOX_VER,
};
process.stdout.write(JSON.stringify(env, null, 2) + "\n");
' >"$CACHE/env.json.tmp"
mv "$CACHE/env.json.tmp" "$CACHE/env.json"
cat "$CACHE/env.json"
