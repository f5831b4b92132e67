#!/usr/bin/env bash
# Cross-builds the .deb for Raspberry Pi OS / Debian arm64 or armhf on a Debian 12 amd64 machine:
#   packaging/cross-deb.sh arm64|armhf        (what `make deb-arm64` / `make deb-armhf` run)
#
# The Debian-multiarch way: the target's GStreamer -dev packages, a cross C toolchain, pkg-config
# pointed at the target's .pc files only, the Rust target from rustup. On Debian 12 the target's
# libgstrtspserver-1.0-dev and libgstreamer-plugins-base1.0-dev cannot be installed beside the
# host's (apt removes the host's), so by default this runs in a build chroot of its own
# (debootstrap, kept in $DEB_CROSS_CHROOT for the next run) and leaves the host's packages alone.
# Needs root (debootstrap, chroot, mounts in a private mount namespace).
#
# DEB_CROSS_HOST=1 builds on the host itself instead, for a throw-away container or CI runner:
# there apt-get runs with --no-remove, so it stops rather than remove the host's -dev packages.
#
# Environment: CARGO, DEB_OUT (default target/debian), DEB_FLAGS (more `cargo deb` arguments),
# DEB_CROSS_CHROOT (default /var/tmp/streampulse-cross-<arch>), DEBIAN_MIRROR,
# CARGO_HOME/RUSTUP_HOME/CARGO_TARGET_DIR as usual (the chroot sees them at the same paths).
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH=${1:-}
case $ARCH in
arm64) RUST_TARGET=aarch64-unknown-linux-gnu GNU_TYPE=aarch64-linux-gnu ;;
armhf) RUST_TARGET=armv7-unknown-linux-gnueabihf GNU_TYPE=arm-linux-gnueabihf ;;
*)
    echo "usage: $0 arm64|armhf" >&2
    exit 2
    ;;
esac
CARGO=${CARGO:-cargo}
DEB_OUT=${DEB_OUT:-target/debian}
DEB_FLAGS=${DEB_FLAGS:-}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CHROOT=${DEB_CROSS_CHROOT:-/var/tmp/streampulse-cross-$ARCH}
REPO=$(pwd -P)
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
export DEBIAN_FRONTEND=noninteractive
[ -n "${CARGO_TARGET_DIR:-}" ] || unset CARGO_TARGET_DIR

PACKAGES=(build-essential pkg-config dpkg-dev "crossbuild-essential-$ARCH"
    "libgstreamer1.0-dev:$ARCH" "libgstreamer-plugins-base1.0-dev:$ARCH" "libgstrtspserver-1.0-dev:$ARCH")
# Rust's target name in upper case for cargo's linker variable, with underscores for the cc crate's.
target_upper=$(tr 'a-z-' 'A-Z_' <<<"$RUST_TARGET")
BUILD_ENV=(
    PKG_CONFIG_ALLOW_CROSS=1
    "PKG_CONFIG_LIBDIR=/usr/lib/$GNU_TYPE/pkgconfig:/usr/share/pkgconfig"
    "CARGO_TARGET_${target_upper}_LINKER=$GNU_TYPE-gcc"
    "CC_${RUST_TARGET//-/_}=$GNU_TYPE-gcc"
    "AR_${RUST_TARGET//-/_}=$GNU_TYPE-ar"
)
# shellcheck disable=SC2086 # DEB_FLAGS is a list of arguments
BUILD=("$CARGO" deb --locked --target "$RUST_TARGET" --output "$DEB_OUT" $DEB_FLAGS)

rustup target list --installed | grep -qx "$RUST_TARGET" || rustup target add "$RUST_TARGET"

# Target architecture, then the packages; --no-remove: fail rather than remove anything.
install_packages() { # [chroot DIR]
    local in=("$@")
    "${in[@]}" dpkg --print-foreign-architectures | grep -qx "$ARCH" || "${in[@]}" dpkg --add-architecture "$ARCH"
    "${in[@]}" apt-get update -qq
    "${in[@]}" apt-get install -y -qq --no-install-recommends --no-remove "${PACKAGES[@]}" </dev/null
}

if [ "${DEB_CROSS_HOST:-0}" = 1 ]; then
    install_packages
    env "${BUILD_ENV[@]}" "${BUILD[@]}"
    exit 0
fi

[ "$(id -u)" = 0 ] || {
    echo "$0: needs root for its build chroot: sudo make deb-$ARCH (or DEB_CROSS_HOST=1 on a throw-away machine)" >&2
    exit 1
}
if [ ! -e "$CHROOT/.streampulse-cross-ready" ]; then
    command -v debootstrap >/dev/null || apt-get install -y -qq --no-install-recommends debootstrap </dev/null
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    echo "creating the $ARCH build chroot in $CHROOT (Debian $codename, kept for the next run)"
    rm -rf "$CHROOT"
    debootstrap --variant=minbase "$codename" "$CHROOT" "$DEBIAN_MIRROR" >/dev/null
    install_packages chroot "$CHROOT"
    touch "$CHROOT/.streampulse-cross-ready"
fi

# Bind the repository, cargo's and rustup's homes and the target directory at their own paths,
# so cargo's fingerprints match the host's builds. The mounts live in a private mount namespace
# and vanish with it: nothing stays mounted inside the chroot, even if the build fails.
export CROSS_CHROOT=$CHROOT CROSS_REPO=$REPO CARGO_HOME RUSTUP_HOME
CROSS_BINDS="$REPO:$CARGO_HOME:$RUSTUP_HOME"
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    mkdir -p "$CARGO_TARGET_DIR"
    CARGO_TARGET_DIR=$(realpath "$CARGO_TARGET_DIR")
    CROSS_BINDS+=":$CARGO_TARGET_DIR"
    export CARGO_TARGET_DIR
fi
export CROSS_BINDS
# shellcheck disable=SC2016 # expanded by the inner shell
inner='set -e
mount -t proc proc "$CROSS_CHROOT/proc"
mount --rbind /dev "$CROSS_CHROOT/dev"
IFS=: read -ra binds <<<"$CROSS_BINDS"
for dir in "${binds[@]}"; do
    mkdir -p "$CROSS_CHROOT$dir"
    mount --bind "$dir" "$CROSS_CHROOT$dir"
done
build_env=()
while [ "$1" != -- ]; do build_env+=("$1"); shift; done
shift
target_dir=()
[ -n "${CARGO_TARGET_DIR:-}" ] && target_dir=("CARGO_TARGET_DIR=$CARGO_TARGET_DIR")
exec chroot "$CROSS_CHROOT" env -i HOME="$HOME" PATH="$CARGO_HOME/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    CARGO_HOME="$CARGO_HOME" RUSTUP_HOME="$RUSTUP_HOME" "${target_dir[@]}" "${build_env[@]}" \
    sh -c '"'"'cd "$0" && exec "$@"'"'"' "$CROSS_REPO" "$@"'
unshare --mount --propagation private bash -c "$inner" inner "${BUILD_ENV[@]}" -- "${BUILD[@]}"
