"""The README's screenshots, taken from a real GIMP 3 the way the GUI tests drive it
(tests/gimp/harness.py): the menu entry, the dialog, and the canvas mid-run with the painting
forming in the preview layer beside the progress window.

    .venv/bin/python docs/screenshots/take_screenshots.py [--gimp 3.2] [--style PAINTING]

Needs root and the GIMP root of tests/gimp/setup_gimp3.sh, like the GUI tests. The painting
defaults to the Hokusai in ../shared/styles (only its stylized look lands in the PNGs), else the
bundled sample painting. Writes menu.png, dialog.png and painting.png beside this file.
"""
import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "gimp")]
from conftest import ServerProcess  # noqa: E402
from harness import GimpSession, gimp_root  # noqa: E402

from nst_server.engine.samples import painting, photo  # noqa: E402

SHARED_STYLE = REPO.parent / "shared" / "styles" / "wave.jpg"
PAINTING_AT = (820, 40)  # the progress window, right of GIMP's window (800 wide)


def wait_for(condition, what, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.3)


def geometry(session, title):
    """(x, y, width, height) of the window called `title`."""
    shell = session.gui.do(f"xdotool getwindowgeometry --shell "
                           f"$(xdotool search --onlyvisible --name '^{title}$' | head -1)")
    values = dict(line.split("=") for line in shell.split())
    return tuple(int(values[k]) for k in ("X", "Y", "WIDTH", "HEIGHT"))


def shoot(session, name, box):
    session.gui.screenshot(HERE / name)
    Image.open(HERE / name).convert("RGB").crop(box).save(HERE / name)
    print(f"wrote {HERE / name}")


def painted(session):
    """The share of the job done at the last preview shown (the plug-in's log)."""
    log = session.plugin_log
    shown = [line for line in log.read_text().splitlines() if " preview " in line] \
        if log.exists() else []
    return json.loads(shown[-1].split(" preview ", 1)[1])["fraction"] if shown else 0.0


def take(session, style):
    work = session.inside / "work"
    work.mkdir()
    photo("astronaut").resize((480, 480), Image.LANCZOS).save(work / "astronaut.png")
    shutil.copy(style, work / style.name)
    # The painting the user picked last time (nst_dialog.STYLE_MEMORY): the dialog offers it.
    (session.plugins.parent / "neural-style-last-style.txt").write_text(
        session.path_in_gimp(work / style.name))
    (session.gui.folder / "hold-dialog").touch()
    (session.gui.folder / "painting-at").write_text("%d %d" % PAINTING_AT)
    session.start_gui([session.path_in_gimp(work / "astronaut.png")])
    time.sleep(2)  # the canvas draws
    session.gui.open_filter(start=False)
    shoot(session, "menu.png", (0, 0, 900, 640))
    session.gui.do("xdotool key Return")
    wait_for(lambda: "Neural Style" in session.gui.windows(), "the dialog")
    time.sleep(2)
    x, y, width, height = geometry(session, "Neural Style")
    shoot(session, "dialog.png", (x, y, x + width, y + height))
    (session.gui.folder / "hold-dialog").unlink()  # the runner presses OK
    wait_for(lambda: painted(session) >= 0.6, "the painting to form on the canvas", 300)
    x, y, width, height = geometry(session, "Neural Style: painting")
    shoot(session, "painting.png", (0, 0, x + width + 10, 600))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gimp", default="3.2", choices=("3.0", "3.2"))
    parser.add_argument("--style", type=Path,
                        help=f"painting (default: {SHARED_STYLE} when present, else a sample)")
    args = parser.parse_args()
    root, reason = gimp_root(args.gimp)
    if root is None:
        raise SystemExit(reason)
    style = args.style or SHARED_STYLE
    session = GimpSession(root, args.gimp)
    if not style.exists():
        style = session.inside / "swirls.png"
        painting("swirls", 512).save(style)
    server = ServerProcess()
    try:
        session.install(server.endpoint)
        take(session, style)
    finally:
        session.stop()
        server.stop()
        session.close()


if __name__ == "__main__":
    main()
