#!/usr/bin/env bash
# Screenshots of the real GIMP 3 for the README: the menu entry and the dialog.
#   bash docs/screenshots/take_screenshots.sh      (root on Debian; uses the test venv .venv)
# GIMP runs under Xvfb with a fresh config and the plug-in installed by install.py; xdotool opens
# Filters > Artistic and the dialog; ImageMagick grabs the screen; the crops land beside this file.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=${NST_TEST_VENV:-.venv}
root=$(bash tests/gimp/setup_gimp3.sh | tail -n 1)
work=$(mktemp -d "$root/tmp/nst-shots-XXXX")
inside=${work#"${root%/}"}
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/config" "$work/home"
printf '(show-welcome-dialog no)\n(check-updates no)\n' > "$work/config/gimprc"
XDG_DATA_HOME="$work/data" "$venv/bin/python" install.py --venv "$venv" \
    --gimp-dir "$work/config/plug-ins" --no-demo >/dev/null
"$venv/bin/python" -c "from nst_server.samples import photo
photo('astronaut').resize((384, 384)).save('$work/photo.png')"

cat > "$work/shoot.sh" <<SHOOT
#!/bin/sh
export HOME=$inside/home GIMP3_DIRECTORY=$inside/config DISPLAY=:77 PATH=/usr/bin:/bin
export DBUS_SESSION_BUS_ADDRESS=disabled:
Xvfb :77 -screen 0 1280x800x24 >/dev/null 2>&1 &
xvfb=\$!
sleep 1
gimp-3.0 $inside/photo.png >/dev/null 2>&1 &
gimp=\$!
trap 'kill \$gimp \$xvfb 2>/dev/null' EXIT
sleep 14
for w in \$(xdotool search --onlyvisible --name "Welcome"); do xdotool windowclose \$w; done
sleep 1.5
xdotool windowfocus --sync \$(xdotool search --onlyvisible --name "GNU Image Manipulation Program" | head -1)
xdotool mousemove 426 12 click 1      # Filters
sleep 1
xdotool mousemove 460 313             # Artistic
sleep 1
xdotool key Right
for i in \$(seq 11); do xdotool key Down; done   # down to Neural Style...
sleep 1
import -window root $inside/menu.png
xdotool key Return
sleep 5
import -window root $inside/dialog-screen.png
xdotool getwindowgeometry --shell \$(xdotool search --onlyvisible --name "Neural Style" | head -1) > $inside/dialog.geometry
SHOOT
chmod +x "$work/shoot.sh"
unshare --mount sh -c "mount -t proc proc '$root/proc' && mount --bind /dev '$root/dev' && \
    exec chroot '$root' env -i '$inside/shoot.sh'"

"$venv/bin/python" - "$work" docs/screenshots <<'CROP'
import sys
from pathlib import Path
from PIL import Image
work, out = Path(sys.argv[1]), Path(sys.argv[2])
Image.open(work / "menu.png").crop((0, 0, 940, 660)).save(out / "menu.png")
g = dict(line.split("=") for line in (work / "dialog.geometry").read_text().split())
x, y, w, h = (int(g[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))
Image.open(work / "dialog-screen.png").crop((x, y, x + w, y + h)).save(out / "dialog.png")
print(f"wrote {out / 'menu.png'} and {out / 'dialog.png'} ({w}x{h})")
CROP
