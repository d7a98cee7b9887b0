#!/usr/bin/env bash
# Set up a real GIMP 3 for the end-to-end tests and the screenshots (idempotent; needs root).
#   bash tests/gimp/setup_gimp3.sh [3.0|3.2]      (default 3.0)
# A system that has gimp-console-VERSION already uses it ("/"). Else:
#   3.0 on Debian 13: from the system's own archive;
#   3.0 elsewhere: a Debian 13 (trixie) root made with debootstrap in $NST_GIMP_ROOT
#       (default /var/tmp/nst-gimp3-root);
#   3.2: a Debian forky root in $NST_GIMP32_ROOT (default /var/tmp/nst-gimp32-root).
# The roots stay outside the repo; the tests enter them with unshare + chroot.
# Prints the root ("/" for the system) on its last line.
set -euo pipefail
version=${1:-3.0}
packages="gimp xvfb xdotool imagemagick x11-utils dbus"
case $version in
    3.0) suite=trixie; root=${NST_GIMP_ROOT:-/var/tmp/nst-gimp3-root}
         sources="deb http://deb.debian.org/debian trixie main
deb http://deb.debian.org/debian trixie-updates main
deb http://deb.debian.org/debian-security trixie-security main" ;;
    3.2) suite=forky; root=${NST_GIMP32_ROOT:-/var/tmp/nst-gimp32-root}
         sources="deb http://deb.debian.org/debian forky main" ;;
    *) echo "setup_gimp3.sh: unknown GIMP version $version (3.0 or 3.2)" >&2; exit 2 ;;
esac
stamp_text="v2 $suite $packages"
# forky's Release files can look expired to this machine's clock
apt_options="-o Acquire::Check-Valid-Until=false -qq"

if command -v "gimp-console-$version" >/dev/null; then
    echo /
    exit 0
fi
major=$(cut -d. -f1 /etc/debian_version 2>/dev/null || echo 0)
if [ "$version" = 3.0 ] && { [ "${major%%[!0-9]*}" -ge 13 ] 2>/dev/null || grep -q trixie /etc/debian_version 2>/dev/null; }; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
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
    echo "setting up a Debian $suite root for GIMP $version in $root (first time only, ~2-3 min)" >&2
    rm -rf "$root"
    # sid's script serves every newer suite (an older debootstrap has no script named forky)
    script=/usr/share/debootstrap/scripts/$suite
    [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
    debootstrap --variant=minbase "$suite" "$root" http://deb.debian.org/debian "$script" >/dev/null
fi
echo "$sources" > "$root/etc/apt/sources.list"
cp /etc/resolv.conf "$root/etc/resolv.conf"
unshare --mount chroot "$root" /bin/sh -c "
    mount -t proc proc /proc 2>/dev/null || true
    apt-get $apt_options update && DEBIAN_FRONTEND=noninteractive apt-get $apt_options install -y \
        --no-install-recommends $packages >/dev/null"
echo "$stamp_text" > "$root/.nst-stamp"
echo "$root"
