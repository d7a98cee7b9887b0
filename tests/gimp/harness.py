"""Driving a real GIMP 3 headless for the end-to-end tests.

On Debian 13 GIMP 3 is the system's; on Debian 12 it lives in a Debian 13 root made by
tests/gimp/setup_gimp3.sh, entered with unshare + chroot (same network: the plug-in inside
reaches a server on the host at tcp://127.0.0.1:PORT). Each session gets its own GIMP config
folder and HOME, and GIMP runs with a clean environment (`env -i`, the system PATH) so that
plug-ins start with the system's python3, which has `gi`.
"""
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

GIMP = "gimp-console-3.0"
DEFAULT_ROOT = "/var/tmp/nst-gimp3-root"
REPO = Path(__file__).resolve().parents[2]


def gimp_root():
    """(root, None) where GIMP 3 runs, or (None, reason) when it cannot run here."""
    if shutil.which(GIMP):
        return Path("/"), None
    root = Path(os.environ.get("NST_GIMP_ROOT", DEFAULT_ROOT))
    if not (root / "usr/bin" / GIMP).exists():
        return None, f"no GIMP 3 here: run tests/gimp/setup_gimp3.sh (as root) to make {root}"
    if os.geteuid() != 0:
        return None, f"GIMP 3 is in {root}, but entering it with chroot needs root"
    return root, None


class GimpSession:
    """A private GIMP config folder (plug-ins/ inside) and HOME, under the GIMP root's /tmp."""

    def __init__(self, root):
        self.root = root
        self.inside = Path(tempfile.mkdtemp(prefix="nst-e2e-", dir=root / "tmp"))
        self.config = self.inside / "config"
        self.plugins = self.config / "plug-ins"
        (self.inside / "home").mkdir()
        self.plugins.mkdir(parents=True)

    def path_in_gimp(self, host_path):
        """How GIMP (inside the root) sees a path under the session folder."""
        return "/" + str(Path(host_path).relative_to(self.root))

    def run_batch(self, code, timeout=180, binds=()):
        """Run Python `code` in gimp-console's python-fu-eval batch interpreter. `binds`: host
        folders to make visible at the same paths inside the GIMP root."""
        env = ["/usr/bin/env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin",
               f"HOME={self.path_in_gimp(self.inside / 'home')}",
               f"GIMP3_DIRECTORY={self.path_in_gimp(self.config)}"]
        gimp = [*env, GIMP, "--no-interface", "--batch-interpreter=python-fu-eval", "-b", "-",
                "--quit"]
        if self.root != Path("/"):
            mounts = "".join(f"mkdir -p {self.root}{b} && mount --bind {b} {self.root}{b} && "
                             for b in binds)
            mounts += (f"mount -t proc proc {self.root}/proc && "
                       f"mount --bind /dev {self.root}/dev && exec chroot {self.root} \"$@\"")
            gimp = ["unshare", "--mount", "sh", "-c", mounts, "sh", *gimp]
        return subprocess.run(gimp, input=code, capture_output=True, text=True, timeout=timeout)

    def close(self):
        shutil.rmtree(self.inside, ignore_errors=True)


# The batch program: open an image, optionally select, run the filter non-interactively, and
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
report = {"registered": proc is not None}
if proc is not None:
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [layer])
    for name, value in job["args"].items():
        cfg.set_property(name, Gio.File.new_for_path(value) if name == "style-file" else value)
    start = time.monotonic()
    result = proc.run(cfg)
    report["seconds"] = time.monotonic() - start
    report["status"] = result.index(0).value_nick
    report["message"] = Gimp.get_pdb().get_last_error()
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
    """Open `image_path` in GIMP, run the filter with `args`; return (report, layer PNG paths)."""
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
    done = session.run_batch(code, binds=binds)
    report_file = out / "report.json"
    if not report_file.exists():
        raise AssertionError(f"GIMP batch failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(report_file.read_text())
    return report, sorted(out.glob("layer*.png"))
