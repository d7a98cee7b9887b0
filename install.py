#!/usr/bin/env python3
"""Install Neural Style for GIMP in one command (Python 3.10+, standard library only).

    python3 install.py              # server virtualenv + GIMP plug-in + an offline demo run
    python3 install.py --check      # diagnose an installation, one line per check
    python3 install.py --uninstall  # remove exactly what was installed

What it does (idempotent; --dry-run prints it without doing it):
  1. a virtualenv with the server package (nst-server, nst-stylize); --venv PATH chooses it, or
     reuses it when it already has the server;
  2. the plug-in folder copied into GIMP 3's user plug-ins folder(s) (found for Linux, Flatpak,
     Windows, macOS; --gimp-dir to give one), with a config.json naming the server command and
     endpoint, which the plug-in reads;
  3. pyzmq for GIMP's own Python: nothing if it already has zmq, else a pyzmq wheel for that
     Python's version vendored into the plug-in folder (the plug-in prefers a system zmq);
  4. a short offline demo stylization (skip with --no-demo).
"""
import argparse
import glob
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
sys.path[:0] = [str(REPO), str(REPO / "gimp_plugin")]
from neural_style.nst_protocol import DEFAULT_ENDPOINT  # noqa: E402  (both: standard library only)
from nst_server.user_dirs import data_dir  # noqa: E402

PLUGIN_SOURCE = REPO / "gimp_plugin" / "neural_style"
PLUGIN_NAME = "neural_style"
CONFIG, VENDOR = "config.json", "vendor"  # in the plug-in folder, beside the .py files
IS_WINDOWS = sys.platform == "win32"


MANIFEST = data_dir() / "installed.json"


def venv_bin(venv, name):
    return Path(venv) / ("Scripts" if IS_WINDOWS else "bin") / (name + (".exe" if IS_WINDOWS else ""))


# -- finding GIMP ------------------------------------------------------------------------------


def gimp_config_roots():
    """Folders where GIMP 3 keeps per-version user configs (GIMP/3.0, GIMP/3.2, ...)."""
    home = Path.home()
    if IS_WINDOWS:
        return [Path(os.environ.get("APPDATA", home / "AppData" / "Roaming")) / "GIMP"]
    if sys.platform == "darwin":
        return [home / "Library" / "Application Support" / "GIMP"]
    config = Path(os.environ.get("XDG_CONFIG_HOME", home / ".config"))
    return [config / "GIMP", home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP"]


def find_plugin_dirs():
    """Existing GIMP 3 user plug-in folders; if GIMP 3 never ran yet, the default one to create."""
    if os.environ.get("GIMP3_DIRECTORY"):
        return [Path(os.environ["GIMP3_DIRECTORY"]) / "plug-ins"]
    found = [Path(p) / "plug-ins" for root in gimp_config_roots()
             for p in sorted(glob.glob(str(root / "3.*"))) if Path(p).is_dir()]
    return found or [gimp_config_roots()[0] / "3.0" / "plug-ins"]


def find_gimp():
    """GIMP 3's executable, if one is on PATH (a plain `gimp` only if it says it is 3.x) or in
    the usual places."""
    for name in ("gimp-3.0", "gimp-3", "gimp-console-3.0", "gimp"):
        path = shutil.which(name)
        if path and (name != "gimp" or _version_is_3(path)):
            return path
    candidates = (glob.glob(r"C:\Program Files\GIMP 3*\bin\gimp-3*.exe") if IS_WINDOWS else
                  glob.glob("/Applications/GIMP*.app/Contents/MacOS/gimp*") +
                  glob.glob("/var/lib/flatpak/exports/bin/org.gimp.GIMP"))
    return candidates[0] if candidates else None


def _version_is_3(gimp):
    try:
        out = subprocess.run([gimp, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return " 3." in out


GIMP_PYTHON_LINUX = "/usr/bin/python3"


def run_gimp_python(code, *args):
    """Run `code` with the Python GIMP starts plug-ins with, if it can be run from here.

    On Linux GIMP starts Python plug-ins with `/usr/bin/env python3` and the system PATH, i.e.
    the system's python3 (the one with `gi`); elsewhere GIMP bundles its own, which --gimp-python
    names. Returns the CompletedProcess, or None."""
    if IS_WINDOWS or sys.platform == "darwin" or not os.path.exists(GIMP_PYTHON_LINUX):
        return None
    return subprocess.run([GIMP_PYTHON_LINUX, "-c", code, *args], capture_output=True, text=True)


def gimp_python():
    """(version "X.Y", has_zmq) of GIMP's Python, or (None, False) when it cannot be run."""
    probe = "import sys; print('%d.%d' % sys.version_info[:2])\ntry:\n import zmq; print('zmq')\n" \
            "except ImportError: pass"
    done = run_gimp_python(probe)
    out = done.stdout.split() if done else []
    return (out[0], "zmq" in out) if out else (None, False)


# -- the steps -----------------------------------------------------------------------------------


class Installer:
    def __init__(self, args):
        self.args = args
        self.venv = Path(args.venv).expanduser() if args.venv else data_dir() / "venv"

    def step(self, text):
        print(("would: " if self.args.dry_run else "") + text, flush=True)
        return not self.args.dry_run

    def install(self):
        self.install_server()
        print(f"GIMP 3: {find_gimp() or 'not found (the plug-in is installed for when it is)'}")
        dirs = [Path(self.args.gimp_dir).expanduser()] if self.args.gimp_dir else find_plugin_dirs()
        print("GIMP 3 plug-in folder(s): " + ", ".join(map(str, dirs)))
        version, has_zmq = (self.args.gimp_python, False) if self.args.gimp_python else gimp_python()
        written = {str(d / PLUGIN_NAME): self.install_plugin(d, version, has_zmq) for d in dirs}
        if not self.args.dry_run:
            record(venv=str(self.venv), created_venv=self.created_venv, plugins=written)
        if not self.args.no_demo:
            self.run_demo()
        print("Done. Open GIMP 3: Filters > Artistic > Neural Style...")

    def install_server(self):
        nst_server = venv_bin(self.venv, "nst-server")
        self.created_venv = not self.venv.exists() or previously_created(self.venv)
        if self.args.venv and nst_server.exists():
            print(f"server: reusing {self.venv} (it has nst-server)")
            return
        if not self.venv.exists() and self.step(f"create virtualenv {self.venv}"):
            subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        if self.step(f"install the server package into {self.venv} (torch: a large download)"):
            subprocess.run([str(venv_bin(self.venv, "python")), "-m", "pip", "install",
                            "--disable-pip-version-check", "--quiet", str(REPO)], check=True)
        print(f"server: {nst_server}")

    def install_plugin(self, plugins, version, has_zmq):
        """Copy the plug-in's files into `plugins`/neural_style, replacing only what an earlier run
        put there (files the user added stay), and merge config.json. Returns what it wrote."""
        target = plugins / PLUGIN_NAME
        shipped = sorted(p.name for p in PLUGIN_SOURCE.glob("*.py") if p.name != "__init__.py")
        if self.step(f"copy the plug-in to {target}"):
            target.mkdir(parents=True, exist_ok=True)
            for name in set(installed_files(target)) - set(shipped) - {CONFIG, VENDOR}:
                (target / name).unlink(missing_ok=True)  # ours, from an older version
            for name in shipped:
                shutil.copyfile(PLUGIN_SOURCE / name, target / name)
            os.chmod(target / "neural_style.py", 0o755)
            self.write_config(target / CONFIG)
        written = [*shipped, CONFIG]
        if has_zmq:
            print(f"pyzmq: GIMP's Python {version} already has it")
        elif version is None:
            print("pyzmq: could not tell which Python GIMP uses; pass --gimp-python X.Y "
                  "(GIMP > Filters > Development > Python-Fu console shows it)")
        elif self.step(f"vendor pyzmq for Python {version} into {target / VENDOR}"):
            vendor_pyzmq(self.venv, target / VENDOR, version)
            written.append(VENDOR)
        return written

    def write_config(self, path):
        """config.json: the server command is the installer's to set; the endpoint is the user's
        once chosen (kept unless --endpoint names another); other keys are left alone."""
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError):
            config = {}
        old = config.get("endpoint")
        endpoint = self.args.endpoint or old or DEFAULT_ENDPOINT
        command = [str(venv_bin(self.venv, "nst-server"))]
        path.write_text(json.dumps(dict(config, endpoint=endpoint, server_command=command),
                                   indent=2) + "\n")
        note = "set" if old is None else "kept" if old == endpoint else f"changed from {old}"
        print(f"{path}: endpoint {endpoint} ({note}), server {command[0]}")

    def run_demo(self):
        out = Path.cwd() / "neural-style-demo.png"
        if self.step(f"run an offline demo stylization into {out}"):
            subprocess.run([str(venv_bin(self.venv, "nst-stylize")), "--demo", "-o", str(out)],
                           check=True)


def installed_files(target):
    """What an earlier run of this installer wrote into the plug-in folder `target`."""
    try:
        return json.loads(MANIFEST.read_text())["plugins"].get(str(target), [])
    except (OSError, ValueError, KeyError, AttributeError):
        return []


def vendor_pyzmq(venv, target, version):
    """pip-install a binary pyzmq wheel built for GIMP's Python `version` into `target`."""
    machine = platform.machine().lower()
    if IS_WINDOWS:
        platforms = ["win_amd64"]
    elif sys.platform == "darwin":
        platforms = ["macosx_11_0_arm64" if machine == "arm64" else "macosx_10_15_x86_64"]
    else:
        arch = "aarch64" if machine in ("aarch64", "arm64") else "x86_64"
        platforms = [f"manylinux_2_28_{arch}", f"manylinux2014_{arch}", f"manylinux_2_17_{arch}"]
    if target.exists():
        shutil.rmtree(target)
    command = [str(venv_bin(venv, "python")), "-m", "pip", "install", "--quiet",
               "--disable-pip-version-check", "--target", str(target), "--only-binary=:all:",
               "--implementation", "cp", "--python-version", version, "pyzmq"]
    for tag in platforms:
        command += ["--platform", tag]
    subprocess.run(command, check=True)


def previously_created(venv):
    """Whether an earlier run of this installer made `venv` (so --uninstall removes it)."""
    try:
        installed = json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return False
    return installed.get("created_venv") and Path(installed.get("venv", "")) == Path(venv)


def record(**facts):
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    MANIFEST.write_text(json.dumps(facts, indent=2) + "\n")


# -- --check and --uninstall ---------------------------------------------------------------------


def check(args):
    """One line per check; exit status 0 when all pass."""
    installed = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    plugin_dirs = ([Path(args.gimp_dir).expanduser() / PLUGIN_NAME] if args.gimp_dir else
                   [Path(p) for p in installed.get("plugins", [])] or
                   [d / PLUGIN_NAME for d in find_plugin_dirs()])
    gimp = find_gimp()
    results = [("GIMP 3", bool(gimp), gimp or "not found on PATH or in the usual places")]
    for folder in plugin_dirs:
        script = folder / "neural_style.py"
        ok = script.exists() and os.access(script, os.X_OK)
        results.append(("plug-in", ok, f"{script} " + ("present, executable" if ok else
                        "missing or not executable: run python3 install.py")))
        results.append(("zmq for GIMP's Python", *zmq_status(folder / "vendor", args.gimp_python)))
    config = plugin_config(plugin_dirs)
    endpoint = args.endpoint or config.get("endpoint", DEFAULT_ENDPOINT)
    command = config.get("server_command") or [
        str(venv_bin(installed.get("venv", data_dir() / "venv"), "nst-server"))]
    results.append(("server", *server_status(command, endpoint)))
    for name, ok, detail in results:
        print(f"[{'ok' if ok else 'FAIL'}] {name}: {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


def zmq_status(vendor, stated_version):
    """(ok, detail): does zmq import in GIMP's Python the way the plug-in imports it (its own
    first, then `vendor`)? Tried for real where that Python runs here and is the one meant."""
    version, _ = gimp_python()
    if version is None or stated_version not in (None, version):
        vendored = (vendor / "zmq").is_dir()
        return vendored, (f"Python {stated_version or '?'}: " + (
            "vendored pyzmq present (GIMP's Python cannot be run from here to import it)"
            if vendored else "missing: run python3 install.py --gimp-python X.Y"))
    probe = "import sys; sys.path.insert(1, sys.argv[1]); import zmq; print(zmq.__file__)"
    done = run_gimp_python(probe, str(vendor))
    if done.returncode == 0:
        return True, f"Python {version} imports {done.stdout.strip()}"
    error = (done.stderr.strip().splitlines() or ["?"])[-1]
    return False, (f"Python {version} cannot import zmq ({error}): run python3 install.py "
                   "(with --gimp-python X.Y if GIMP runs another Python)")


def plugin_config(plugin_dirs):
    """The config.json install.py wrote into the first installed plug-in folder, or {}."""
    for folder in plugin_dirs:
        try:
            return json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            continue
    return {}


def server_status(command, endpoint):
    """(ok, detail): does an nst-server answer the protocol at `endpoint`? Asked with the installed
    `nst-server status` (a real ping; this script has no zmq)."""
    how = f"start it with {' '.join(command)} start --endpoint {endpoint}"
    if not Path(command[0]).exists():
        return False, f"{command[0]} is missing: run python3 install.py"
    try:
        done = subprocess.run([*command, "status", "--endpoint", endpoint], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"{' '.join(command)} status failed ({exc}): {how}"
    if done.returncode == 0:
        return True, f"{endpoint} answers"
    return False, f"{endpoint} not answering: {how}"


def uninstall(args):
    if not MANIFEST.exists():
        print("nothing to uninstall: no record of an installation")
        return 0
    installed = json.loads(MANIFEST.read_text())
    for folder, names in installed["plugins"].items():
        remove([Path(folder) / name for name in names], args.dry_run)
        left = sorted(p.name for p in Path(folder).iterdir() if p.name not in names) \
            if Path(folder).is_dir() else []
        if left:
            print(f"kept {folder}: it holds files install.py did not put there ({', '.join(left)})")
        elif Path(folder).exists():
            remove([Path(folder)], args.dry_run)
    if installed["created_venv"]:
        remove([Path(installed["venv"])], args.dry_run)
    if not args.dry_run:
        MANIFEST.unlink()
    return 0


def remove(paths, dry_run):
    for path in paths:
        if not path.exists():
            continue
        print(f"{'would: ' if dry_run else ''}remove {path}")
        if not dry_run:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="install.py", description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", help=f"virtualenv for the server (default {data_dir() / 'venv'}); "
                        "reused as it is if it already has nst-server")
    parser.add_argument("--gimp-dir", metavar="PLUGINS_DIR", help="GIMP 3 plug-ins folder to use")
    parser.add_argument("--gimp-python", metavar="X.Y", help="version of GIMP's Python "
                        "(when it cannot be detected, e.g. GIMP's bundled Python on Windows/macOS)")
    parser.add_argument("--endpoint", help=f"server endpoint to record (default {DEFAULT_ENDPOINT}); "
                        "with --check, the one to try (default: the recorded one)")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo stylization")
    parser.add_argument("--check", action="store_true", help="diagnose the installation")
    parser.add_argument("--uninstall", action="store_true", help="remove what was installed")
    parser.add_argument("--dry-run", action="store_true", help="print what would be done")
    args = parser.parse_args(argv)
    if sys.version_info < (3, 10):
        parser.error("Python 3.10 or newer is needed")
    if args.check:
        return check(args)
    if args.uninstall:
        return uninstall(args)
    try:
        Installer(args).install()
    except subprocess.CalledProcessError as exc:
        print(f"install.py: error: {' '.join(map(str, exc.cmd[:4]))}... failed "
              f"(exit {exc.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
