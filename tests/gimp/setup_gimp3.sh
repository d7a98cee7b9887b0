#!/usr/bin/env bash
# Set up a real GIMP 3 for the end-to-end tests and the screenshots (idempotent; needs root).
#   Debian 13+: GIMP 3 from the system's own archive.
#   Debian 12:  a Debian 13 (trixie) root made with debootstrap, kept outside the repo in
#               $NST_GIMP_ROOT (default /var/tmp/nst-gimp3-root); the tests enter it with chroot.
# Prints the root ("/" on Debian 13) on its last line.
set -euo pipefail
root=${NST_GIMP_ROOT:-/var/tmp/nst-gimp3-root}
packages="gimp python3-zmq xvfb xdotool imagemagick x11-utils dbus"
stamp_text="v1 $packages"

major=$(cut -d. -f1 /etc/debian_version 2>/dev/null || echo 0)
if [ "${major%%[!0-9]*}" -ge 13 ] 2>/dev/null || grep -q trixie /etc/debian_version 2>/dev/null; then
    if ! command -v gimp-console-3.0 >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
    fi
    echo /
    exit 0
fi

if [ "$(cat "$root/.nst-stamp" 2>/dev/null)" = "$stamp_text" ]; then
    echo "$root"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
if [ ! -x "$root/usr/bin/apt-get" ]; then
    echo "setting up a Debian 13 root for GIMP 3 in $root (first time only, ~2-3 min)" >&2
    rm -rf "$root"
    debootstrap --variant=minbase trixie "$root" http://deb.debian.org/debian >/dev/null
fi
cat > "$root/etc/apt/sources.list" <<SOURCES
deb http://deb.debian.org/debian trixie main
deb http://deb.debian.org/debian trixie-updates main
deb http://deb.debian.org/debian-security trixie-security main
SOURCES
cp /etc/resolv.conf "$root/etc/resolv.conf"
unshare --mount chroot "$root" /bin/sh -c "
    mount -t proc proc /proc 2>/dev/null || true
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends $packages >/dev/null"
echo "$stamp_text" > "$root/.nst-stamp"
echo "$root"
