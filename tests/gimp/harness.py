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
import tempfile
from pathlib import Path

import psutil

VERSIONS = ("3.0", "3.2")
ROOTS = {"3.0": ("NST_GIMP_ROOT", "/var/tmp/nst-gimp3-root"),
         "3.2": ("NST_GIMP32_ROOT", "/var/tmp/nst-gimp32-root")}
REPO = Path(__file__).resolve().parents[2]


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

    def path_in_gimp(self, host_path):
        """How GIMP (inside the root) sees a path under the session folder."""
        return "/" + str(Path(host_path).relative_to(self.root))

    def run_batch(self, code, timeout=180, binds=(), gui=False):
        """Run Python `code` in GIMP's python-fu-eval batch interpreter: gimp-console, or with
        `gui` the full GIMP under Xvfb, pressing OK in each Neural Style dialog that opens.
        `binds`: host folders to make visible at the same paths inside the GIMP root."""
        env = ["/usr/bin/env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin",
               f"HOME={self.path_in_gimp(self.home)}"]
        gimp = [f"gimp-console-{self.version}", "--no-interface"]
        if gui:
            (self.plugins.parent / "gimprc").write_text("(show-welcome-dialog no)\n(check-updates no)\n")
            gimp = ["sh", "-c", GUI_RUNNER, "sh", f"gimp-{self.version}", "--no-splash"]
        gimp = [*env, *gimp, "--batch-interpreter=python-fu-eval", "-b", "-", "--quit"]
        if self.root != Path("/"):
            mounts = "".join(f"mkdir -p {self.root}{b} && mount --bind {b} {self.root}{b} && "
                             for b in binds)
            mounts += (f"mount -t proc proc {self.root}/proc && "
                       f"mount --bind /dev {self.root}/dev && exec chroot {self.root} \"$@\"")
            gimp = ["unshare", "--mount", "sh", "-c", mounts, "sh", *gimp]
        self.gimp = subprocess.Popen(gimp, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        try:
            out, err = self.gimp.communicate(code, timeout=timeout)
        except subprocess.TimeoutExpired:
            for process in [*self.started(), psutil.Process(self.gimp.pid)]:
                process.kill()
            raise
        return subprocess.CompletedProcess(gimp, self.gimp.returncode, out, err)

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


# Runs "$@" (GIMP) under its own Xvfb and clicks OK (bottom right) in every window titled
# "Neural Style" while GIMP runs. No window manager: dialogs open at 0,0 without decorations.
GUI_RUNNER = r'''
display=:$((100 + $$ % 400))
Xvfb $display -screen 0 1280x800x24 -nolisten tcp >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb' EXIT
export DISPLAY=$display DBUS_SESSION_BUS_ADDRESS=disabled:
exec 3<&0
"$@" <&3 &
gimp=$!
while kill -0 $gimp 2>/dev/null; do
    for window in $(xdotool search --onlyvisible --name '^Neural Style$' 2>/dev/null); do
        eval "$(xdotool getwindowgeometry --shell $window)"
        xdotool mousemove $((X + WIDTH - 54)) $((Y + HEIGHT - 42)) click 1
    done
    sleep 0.5
done
wait $gimp
'''

# The batch program: open an image, optionally select, run the filter (non-interactively unless
# job["mode"] says otherwise; then once more per mode in job["then"], with no arguments), and
# write a report (status, message, timing, layers, masks) plus the result layer as PNG.
BATCH = r'''
import json, time
from gi.repository import Gimp, Gio
job = json.load(open(JOB))
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
if job.get("select"):
    x, y, w, h = job["select"]
    image.select_rectangle(Gimp.ChannelOps.REPLACE, x, y, w, h)
proc = Gimp.get_pdb().lookup_procedure("python-fu-neural-style")


def run(mode, args):
    cfg = proc.create_config()
    cfg.set_property("run-mode", getattr(Gimp.RunMode, mode))
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [layer])
    for name, value in args.items():
        cfg.set_property(name, Gio.File.new_for_path(value) if name == "style-file" else value)
    start = time.monotonic()
    result = proc.run(cfg)
    return {"seconds": time.monotonic() - start, "status": result.index(0).value_nick,
            "message": Gimp.get_pdb().get_last_error()}


report = {"registered": proc is not None}
if proc is not None:
    report.update(run(job.get("mode", "NONINTERACTIVE"), job["args"]))
    report["then"] = [run(mode, {}) for mode in job.get("then", [])]
layers = image.get_layers()
report["layers"] = [{"name": l.get_name(), "size": [l.get_width(), l.get_height()],
                     "offsets": list(l.get_offsets()[1:]), "mask": l.get_mask() is not None,
                     "alpha": l.has_alpha(), "type": l.type().value_nick} for l in layers]
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


def run_filter(session, image_path, args, binds=(), **job):
    """Open `image_path` in GIMP, run the filter with `args`; return (report, layer PNG paths).
    An INTERACTIVE `mode` runs the full GIMP under Xvfb, where the dialog's OK gets clicked."""
    work = Path(tempfile.mkdtemp(dir=session.inside))
    shutil.copy(image_path, work / "in.png")
    out = work / "out"
    out.mkdir()
    args = dict(args)
    if "style-file" in args:
        shutil.copy(args["style-file"], work / Path(args["style-file"]).name)
        args["style-file"] = session.path_in_gimp(work / Path(args["style-file"]).name)
    spec = dict(job, image=session.path_in_gimp(work / "in.png"), args=args)
    (work / "job.json").write_text(json.dumps(spec))
    code = f"JOB = {session.path_in_gimp(work / 'job.json')!r}\nOUT = {session.path_in_gimp(out)!r}\n" + BATCH
    done = session.run_batch(code, binds=binds, gui=job.get("mode") == "INTERACTIVE")
    report_file = out / "report.json"
    if not report_file.exists():
        raise AssertionError(f"GIMP batch failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(report_file.read_text())
    return report, sorted(out.glob("layer*.png"))
