#!/usr/bin/env bash
# Real photos for the look and big-layer benchmarks: Debian's wallpaper packages, unpacked into
# /var/tmp/nst-photos (or $1). Needs apt (Debian); idempotent.
set -euo pipefail
dest=${1:-/var/tmp/nst-photos}
[ -d "$dest/usr/share/backgrounds" ] && exit 0
work=$(mktemp -d)
(cd "$work" && apt-get download gnome-backgrounds mate-backgrounds lomiri-wallpapers-20.04)
mkdir -p "$dest"
for deb in "$work"/*.deb; do dpkg -x "$deb" "$dest"; done
rm -rf "$work"
echo "photos in $dest/usr/share/backgrounds"
