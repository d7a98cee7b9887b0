"""Driving a real GIMP 3 (3.0 and 3.2) headless for the end-to-end tests.

Each version is the system's GIMP where it has one, else it lives in a Debian root made by
tests/gimp/setup_gimp3.sh (trixie for 3.0.4, forky for 3.2.6), entered with unshare + chroot
(same network: the plug-in inside reaches a server on the host at tcp://127.0.0.1:PORT). Each
session gets its own HOME, with GIMP's user folder for its version (~/.config/GIMP/3.x). GIMP
runs with a clean environment (`env -i`, the system PATH) so that plug-ins start with the
system's python3, which has `gi`.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

VERSIONS = ("3.0", "3.2")
ROOTS = {"3.0": ("NST_GIMP_ROOT", "/var/tmp/nst-gimp3-root"),
         "3.2": ("NST_GIMP32_ROOT", "/var/tmp/nst-gimp32-root")}
REPO = Path(__file__).resolve().parents[2]
PROCEDURE = "python-fu-neural-style"  # neural_style.PROCEDURE (that module needs GIMP's gi)


def gimp_root(version):
    """(root, None) where GIMP `version` runs, or (None, reason) when it cannot run here."""
    console = f"gimp-console-{version}"
    if shutil.which(console):
        return Path("/"), None
    variable, default = ROOTS[version]
    root = Path(os.environ.get(variable, default))
    if not (root / "usr/bin" / console).exists():
        return None, (f"no GIMP {version} here: run tests/gimp/setup_gimp3.sh {version} (as root) "
                      f"to make {root}")
    if os.geteuid() != 0:
        return None, f"GIMP {version} is in {root}, but entering it with chroot needs root"
    return root, None


class GimpSession:
    """A private HOME (GIMP's user folder and plug-ins inside), under the GIMP root's /tmp."""

    def __init__(self, root, version):
        self.root, self.version = root, version
        self.inside = Path(tempfile.mkdtemp(prefix="nst-e2e-", dir=root / "tmp"))
        self.home = self.inside / "home"
        self.plugins = self.home / ".config" / "GIMP" / version / "plug-ins"
        self.plugins.parent.mkdir(parents=True)  # as after GIMP's first start: its user folder
        self.gimp = None  # the GIMP process of the batch run in progress or last run
        self.out = None   # the output folder of the run_filter in progress or last run
        self.plugin_log = self.inside / "plugin.log"
        self.gui = Gui(self)

    def install(self, endpoint):
        """python3 install.py as a user runs it, with the session's HOME: it must find GIMP's
        user folder by itself (it reuses the running virtualenv for the server). The plug-in's
        folder."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("GIMP3_DIRECTORY", "XDG_CONFIG_HOME", "XDG_DATA_HOME")}
        done = subprocess.run(
            [sys.executable, str(REPO / "install.py"), "--venv", sys.prefix, "--endpoint", endpoint,
             "--no-demo"],
            capture_output=True, text=True, env=dict(env, HOME=str(self.home)))
        assert done.returncode == 0, done.stderr
        assert f"GIMP 3 plug-in folder(s): {self.plugins}\n" in done.stdout
        return self.plugins / "neural_style"

    def path_in_gimp(self, host_path):
        """How GIMP (inside the root) sees a path under the session folder."""
        return "/" + str(Path(host_path).relative_to(self.root))

    def run_batch(self, code, timeout=180, binds=(), gui=False, open_files=()):
        """Run Python `code` in GIMP's python-fu-eval batch interpreter: gimp-console, or with
        `gui` the full GIMP under Xvfb, driven by the runner (GUI_RUNNER, Gui).
        `binds`: host folders to make visible at the same paths inside the GIMP root.
        The plug-in logs what it does on the canvas to `plugin_log` (NST_PLUGIN_LOG)."""
        command = self._command(gui, open_files, binds,
                                ["--batch-interpreter=python-fu-eval", "-b", "-", "--quit"])
        self.gimp = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        try:
            out, err = self.gimp.communicate(code, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        return subprocess.CompletedProcess(command, self.gimp.returncode, out, err)

    def start_gui(self, open_files=()):
        """Start the full GIMP under Xvfb showing `open_files`, with nothing else running: the
        test drives it as a user does (Gui), then stop() ends it."""
        self.gimp = subprocess.Popen(self._command(True, open_files, (), []),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not any(" – GIMP" in title for title in self.gui.windows()):
            if time.monotonic() > deadline or self.gimp.poll() is not None:
                raise AssertionError(f"GIMP did not show {open_files}: {self.stop()[-3000:]}"
                                     f"{self.gui.xvfb_log()}")
            time.sleep(0.3)

    def stop(self):
        """Kill the GIMP this session started (its plug-ins too); return its stderr."""
        if self.gimp is None:
            return ""
        for process in self.started():
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        if self.gimp.poll() is None:  # once it has exited (and been waited for) its pid is free
            self.gimp.kill()
        return self.gimp.communicate()[1] or ""

    def _command(self, gui, open_files, binds, batch):
        env = ["/usr/bin/env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin",
               f"HOME={self.path_in_gimp(self.home)}",
               f"NST_PLUGIN_LOG={self.path_in_gimp(self.plugin_log)}",
               f"NST_GUI={self.path_in_gimp(self.gui.folder)}"]
        gimp = [f"gimp-console-{self.version}", "--no-interface"]
        if gui:
            (self.plugins.parent / "gimprc").write_text("(show-welcome-dialog no)\n(check-updates no)\n")
            gimp = ["sh", "-c", GUI_RUNNER, "sh", f"gimp-{self.version}", "--no-splash"]
        command = [*env, *gimp, *open_files, *batch]
        if self.root == Path("/"):
            return command
        mounts = "".join(f"mkdir -p {self.root}{b} && mount --bind {b} {self.root}{b} && "
                         for b in binds)
        mounts += (f"mount -t proc proc {self.root}/proc && "
                   f"mount --bind /dev {self.root}/dev && exec chroot {self.root} \"$@\"")
        return ["unshare", "--mount", "sh", "-c", mounts, "sh", *command]

    def started(self):
        """The processes under the GIMP this session started (its plug-ins among them)."""
        try:
            return psutil.Process(self.gimp.pid).children(recursive=True) if self.gimp else []
        except psutil.NoSuchProcess:
            return []

    def kill_plugin(self, name):
        """SIGKILL the plug-in `name` running under this session's GIMP, as GIMP's progress Cancel
        does; returns the pids killed. Nothing outside the session's own process tree is touched."""
        script = self.path_in_gimp(self.plugins / name / f"{name}.py")
        found = [p for p in self.started() if script in _cmdline(p)]
        for process in found:
            process.kill()
        return [process.pid for process in found]

    def close(self):
        shutil.rmtree(self.inside, ignore_errors=True)


def _cmdline(process):
    try:
        return process.cmdline()
    except psutil.NoSuchProcess:
        return []


# Runs "$@" (GIMP) under its own Xvfb. While GIMP runs: every window title seen is added to
# $NST_GUI/windows; the welcome dialog is closed; the plug-in's progress window moves to the
# bottom right (off GIMP's menus), or to the "X Y" in $NST_GUI/painting-at; each settings dialog
# ("Neural Style") gets OK (bottom right; no window manager, so dialogs open at 0,0 without
# decorations), or Escape once where $NST_GUI/cancel-dialog exists, or stays open while
# $NST_GUI/hold-dialog exists; each $NST_GUI/command-* file (a shell snippet from the test, see
# Gui) runs once, its output in command-*.done.
GUI_RUNNER = r"""
rm -f "$NST_GUI/display"
Xvfb -displayfd 5 -screen 0 1280x800x24 -nolisten tcp 5>"$NST_GUI/display" \
    >"$NST_GUI/xvfb.log" 2>&1 &
xvfb=$!
trap 'kill $xvfb' EXIT
tries=0
until grep -q '^[0-9]' "$NST_GUI/display" 2>/dev/null; do  # written once it is ready
    tries=$((tries + 1))
    [ $tries -lt 300 ] && kill -0 $xvfb 2>/dev/null || { echo "Xvfb did not start" >&2; exit 1; }
    sleep 0.1
done
export DISPLAY=:$(head -1 "$NST_GUI/display") DBUS_SESSION_BUS_ADDRESS=disabled:
exec 3<&0
"$@" <&3 &
gimp=$!
touch "$NST_GUI/windows"
while kill -0 $gimp 2>/dev/null; do
    for window in $(xdotool search --onlyvisible --name '.' 2>/dev/null); do
        name=$(xdotool getwindowname $window 2>/dev/null)
        grep -qxF -- "$name" "$NST_GUI/windows" || echo "$name" >> "$NST_GUI/windows"
    done
    for window in $(xdotool search --onlyvisible --name '^Welcome to GIMP' 2>/dev/null); do
        xdotool windowfocus --sync $window key Escape  # 3.0 shows it on a version's first start
    done
    for window in $(xdotool search --onlyvisible --name '^Neural Style: painting$' 2>/dev/null); do
        xdotool windowmove $window $(cat "$NST_GUI/painting-at" 2>/dev/null || echo 860 640)
    done
    for window in $(xdotool search --onlyvisible --name '^Neural Style$' 2>/dev/null); do
        if [ -e "$NST_GUI/cancel-dialog" ]; then
            xdotool windowfocus --sync $window key Escape
            rm -f "$NST_GUI/cancel-dialog"
        elif [ ! -e "$NST_GUI/hold-dialog" ]; then
            eval "$(xdotool getwindowgeometry --shell $window)"
            xdotool mousemove $((X + WIDTH - 54)) $((Y + HEIGHT - 42)) click 1
        fi
    done
    for command in "$NST_GUI"/command-*; do
        [ -e "$command" ] || continue
        case "$command" in *.done|*.part) continue ;; esac
        sh "$command" > "$command.part" 2>&1
        mv "$command.part" "$command.done"
        rm -f "$command"
    done
    sleep 0.3
done
wait $gimp
"""


# Where GIMP's default single-window layout puts things at 1280x800 (no window manager), as
# measured on screenshots: the Filters menu and its Artistic item; the image tab's close button.
MENU_AT = {"3.0": ((426, 12), (470, 313)), "3.2": ((401, 10), (440, 299))}
CLOSE_TAB_AT = {"3.0": (268, 46), "3.2": (268, 45)}


class Gui:
    """What a user does in a session's GUI run, through its runner (xdotool inside the root)."""

    def __init__(self, session):
        self.session = session
        self.folder = session.inside / "gui"
        self.folder.mkdir(exist_ok=True)
        self._count = 0

    def do(self, script, timeout=30):
        """Run a shell snippet on the GIMP display; return its output."""
        self._count += 1
        command = self.folder / f"command-{self._count}"
        (self.folder / "next").write_text(script)
        (self.folder / "next").rename(command)
        done = self.folder / f"command-{self._count}.done"
        deadline = time.monotonic() + timeout
        while not done.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"the GUI runner did not run: {script}")
            time.sleep(0.1)
        return done.read_text()

    def open_filter(self, start=True):
        """Filters > Artistic > Neural Style… with the mouse and keys, as a user does; with
        `start` False the menu stays open on the entry."""
        filters, artistic = MENU_AT[self.session.version]
        last = "key n" if start else "key Down " * 11  # N: the entry's mnemonic; 11: its place
        self.do(f"xdotool mousemove {filters[0]} {filters[1]} click 1; sleep 1\n"
                f"xdotool mousemove {artistic[0]} {artistic[1]}; sleep 0.5\n"
                f"xdotool key Right; sleep 0.5\nxdotool {last}; sleep 0.5")

    def close_image(self):
        """Click the close button on the image's tab (single-window mode)."""
        x, y = CLOSE_TAB_AT[self.session.version]
        self.do(f"xdotool mousemove {x} {y} click 1")

    def screenshot(self, host_path):
        inside = self.session.path_in_gimp(self.folder / "shot.png")
        self.do(f"import -window root {inside}")
        shutil.move(self.folder / "shot.png", host_path)

    def xvfb_log(self):
        """What the last GUI run's Xvfb said (for a failed run's message), or nothing."""
        path = self.folder / "xvfb.log"
        text = path.read_text(errors="replace")[-1500:] if path.exists() else ""
        return f"\nXvfb's log:\n{text}" if text.strip() else ""

    def windows(self):
        """Every window title the runner has seen so far."""
        path = self.folder / "windows"
        return path.read_text().splitlines() if path.exists() else []


# The batch program: open an image, optionally select, run the filter (non-interactively unless
# job["mode"] says otherwise; then once more per mode in job["then"], with no arguments), and
# write a report (status, message, timing, layers, masks) plus the result layer as PNG.
BATCH = r'''
import json, os, time
from gi.repository import Gegl, Gimp, Gio
job = json.load(open(JOB))
if job.get("display"):  # opened by GIMP itself, as a user opens a file: its display owns it
    deadline = time.monotonic() + 30
    while not Gimp.get_images() and time.monotonic() < deadline:
        time.sleep(0.2)
    image = Gimp.get_images()[0]
else:
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(job["image"]))
if job.get("indexed"):
    image.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 16,
                          False, False, "")
layer = image.get_layers()[0]
if job.get("group"):
    layer = Gimp.GroupLayer.new(image, "group")
    image.insert_layer(layer, None, 0)
if job.get("offsets"):
    layer.set_offsets(*job["offsets"])
label_layer = None
if job.get("labels"):  # a layer of flat colours below the source: [[x, y, w, h, [r, g, b]], ...]
    w, h = image.get_width(), image.get_height()
    pixels = bytearray(w * h * 3)
    for x, y, rw, rh, colour in job["labels"]:
        for row in range(y, y + rh):
            pixels[(row * w + x) * 3:(row * w + x + rw) * 3] = bytes(colour) * rw
    label_layer = Gimp.Layer.new(image, "labels", w, h, Gimp.ImageType.RGB_IMAGE, 100.0,
                                 Gimp.LayerMode.NORMAL)
    image.insert_layer(label_layer, None, 1)
    buffer = label_layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, w, h), "R'G'B' u8", bytes(pixels))
    buffer.flush()
channel = None
if job.get("channel"):  # a channel white over this rectangle, for the region-channel argument
    x, y, w, h = job["channel"]
    image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
    channel = Gimp.Selection.save(image)
    Gimp.Selection.none(image)
if job.get("select"):
    x, y, w, h = job["select"]
    image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
proc = Gimp.get_pdb().lookup_procedure(PROCEDURE)


def run(mode, args):
    cfg = proc.create_config()
    cfg.set_property("run-mode", getattr(Gimp.RunMode, mode))
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [layer])
    for name, value in args.items():
        if name.startswith("style-file"):
            value = Gio.File.new_for_path(value)
        cfg.set_property(name, {"region-channel": channel, "region-layer": label_layer}.get(name, value))
    start = time.monotonic()
    result = proc.run(cfg)
    return {"seconds": time.monotonic() - start, "status": result.index(0).value_nick,
            "message": Gimp.get_pdb().get_last_error()}


report = {"registered": proc is not None}
if proc is not None:
    report.update(run(job.get("mode", "NONINTERACTIVE"), job["args"]))
    report["then"] = [run(mode, {}) for mode in job.get("then", [])]
if job.get("pause"):  # the test acts in the GUI (e.g. undo), then lets the report be written
    open(f"{OUT}/ran", "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(f"{OUT}/continue") and time.monotonic() < deadline:
        time.sleep(0.2)
report["image_open"] = image.is_valid()
if not image.is_valid():
    json.dump(report, open(f"{OUT}/report.json", "w"))
    raise SystemExit
report["dirty"] = image.is_dirty()
layers = image.get_layers()
report["layers"] = [{"name": l.get_name(), "size": [l.get_width(), l.get_height()],
                     "offsets": list(l.get_offsets()[1:]), "mask": l.get_mask() is not None,
                     "edit_mask": l.get_edit_mask(), "alpha": l.has_alpha(),
                     "type": l.type().value_nick} for l in layers]
report["selected"] = [l.get_name() for l in image.get_selected_layers()]
report["base_type"] = image.get_base_type().value_nick
for index, l in enumerate(layers):
    single = Gimp.Image.new(l.get_width(), l.get_height(), image.get_base_type())
    copy = Gimp.Layer.new_from_drawable(l, single)
    single.insert_layer(copy, None, 0)
    copy.set_offsets(0, 0)
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, single,
                   Gio.File.new_for_path(f"{OUT}/layer{index}.png"), None)
json.dump(report, open(f"{OUT}/report.json", "w"))
'''


def run_filter(session, image_path, args, binds=(), gui=False, **job):
    """Open `image_path` in GIMP, run the filter with `args`; return (report, layer PNG paths).
    An INTERACTIVE `mode` (or `gui`) runs the full GIMP under Xvfb (see GUI_RUNNER)."""
    work = Path(tempfile.mkdtemp(dir=session.inside))
    shutil.copy(image_path, work / "in.png")
    out = work / "out"
    out.mkdir()
    args = dict(args)
    for name in ("style-file", "style-file-2"):
        if name in args:
            shutil.copy(args[name], work / Path(args[name]).name)
            args[name] = session.path_in_gimp(work / Path(args[name]).name)
    spec = dict(job, image=session.path_in_gimp(work / "in.png"), args=args)
    (work / "job.json").write_text(json.dumps(spec))
    code = (f"JOB = {session.path_in_gimp(work / 'job.json')!r}\nOUT = {session.path_in_gimp(out)!r}\n"
            f"PROCEDURE = {PROCEDURE!r}\n" + BATCH)
    session.out = out  # where a test acting during the run finds `ran` and leaves `continue`
    if job.get("mode") == "INTERACTIVE":
        # GIMP's dialog starts from the values of the profile's last run, not from `args`: forget
        # them, so that each test's dialog shows the settings it passes
        last = session.plugins.parent / "plug-in-settings" / f"GimpProcedureConfigRun-{PROCEDURE}.last"
        last.unlink(missing_ok=True)
    shown = [spec["image"]] if job.get("display") else []  # GIMP opens it in its window
    done = session.run_batch(code, binds=binds, gui=gui or bool(shown) or job.get("mode") == "INTERACTIVE",
                             open_files=shown)
    report_file = out / "report.json"
    if not report_file.exists():
        raise AssertionError(f"GIMP batch failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
                             f"\nits output:\n{done.stdout[-2000:]}{session.gui.xvfb_log()}")
    report = json.loads(report_file.read_text())
    report["stderr"] = done.stderr
    return report, sorted(out.glob("layer*.png"))
