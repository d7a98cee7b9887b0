#!/usr/bin/env python3
"""Install Neural Style for GIMP in one command (Python 3.10+, standard library only).

    python3 install.py              # server virtualenv + GIMP plug-in + an offline demo run
    python3 install.py --check      # diagnose an installation, one line per check
    python3 install.py --uninstall  # stop the server; remove what was installed, its log and cache

What it does (idempotent; --dry-run prints it without doing it):
  1. a virtualenv with the server package (nst-server, nst-stylize) and PyTorch (on Linux its
     CPU-only build unless an NVIDIA card is found; --torch to choose); --venv PATH chooses
     the virtualenv, or reuses it when it already has the server;
  2. the plug-in folder copied into GIMP 3's user plug-ins folder(s) (found for Linux, Flatpak,
     Windows, macOS; --gimp-dir to give one), with a config.json naming the server command and
     endpoint, which the plug-in reads;
  3. with --autostart, the server started at log-in (a systemd user unit on Linux, a LaunchAgent
     on macOS, a hidden Startup entry on Windows), and now;
  4. a short offline demo stylization (skip with --no-demo).

The plug-in is standard-library Python only (it speaks ZeroMQ's wire protocol itself), so it runs
in whatever Python GIMP bundles: nothing compiled is installed for GIMP.
"""
import argparse
import glob
import json
import os
import plistlib
import re
import shlex
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent
sys.path[:0] = [str(REPO), str(REPO / "gimp_plugin" / "neural_style")]
from nst_contract.protocol import DEFAULT_ENDPOINT, parse_endpoint  # noqa: E402  (both: standard library only)
from nst_server.user_dirs import STATE_ENV, cache_dir, data_dir, state_dir  # noqa: E402

PLUGIN_SOURCE = REPO / "gimp_plugin" / "neural_style"
PLUGIN_NAME = "neural_style"
CONTRACT = "nst_contract"  # the plug-in's sub-package that the server imports by the same name
CONFIG = "config.json"  # in the plug-in folder, beside the .py files
# The system to install for: this one, unless NST_INSTALL_SYSTEM names another ("linux", "win32",
# "darwin"; the tests simulate each system's folders with it and with HOME, APPDATA, ...).
SYSTEM = os.environ.get("NST_INSTALL_SYSTEM") or sys.platform
IS_WINDOWS = SYSTEM == "win32"
AUTOSTART_LABEL = "org.neural-style-gimp.nst-server"
NEWEST_KNOWN = "3.2"  # installed for when no GIMP 3 is found and none has run yet
VERSION = re.compile(r"\b3\.(\d+)")
# PyTorch's CPU-only builds: on Linux PyPI's torch is the CUDA build (~5.7 GB with its libraries),
# useless without an NVIDIA card; this one is ~0.2 GB and just as fast on a CPU.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
NVIDIA_DRIVER = Path("/proc/driver/nvidia/version")  # present once Linux's NVIDIA driver is loaded
TICK = 10.0  # s: the longest a long step goes without saying that it is still at work
BIG_DOWNLOAD_MB = 10  # pip's downloads worth a line of their own (PyTorch's are hundreds of MB)


MANIFEST = data_dir() / "installed.json"


def venv_bin(venv, name):
    return Path(venv) / ("Scripts" if IS_WINDOWS else "bin") / (name + (".exe" if IS_WINDOWS else ""))


# -- finding GIMP ------------------------------------------------------------------------------


def gimp_config_roots():
    """Folders where GIMP 3 keeps its per-version user folders (3.0, 3.2, ...), the one it
    creates first. Flatpak GIMP shares ~/.config/GIMP with the host (older builds used their own
    ~/.var/app folder)."""
    home = Path.home()
    if IS_WINDOWS:
        return [Path(os.environ.get("APPDATA", home / "AppData" / "Roaming")) / "GIMP"]
    if SYSTEM == "darwin":
        return [home / "Library" / "Application Support" / "GIMP"]
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return [config / "GIMP", home / ".var" / "app" / "org.gimp.GIMP" / "config" / "GIMP"]


def version_key(version):
    return tuple(int(part) for part in version.split("."))


def user_folders():
    """The GIMP 3.x user folders that exist (GIMP has run), oldest version first."""
    found = [Path(p) for root in gimp_config_roots() for p in glob.glob(str(root / "3.*"))
             if Path(p).is_dir() and re.fullmatch(r"3\.\d+", Path(p).name)]
    return sorted(found, key=lambda p: version_key(p.name))


def find_gimps():
    """(version "3.N", path) of every GIMP 3 found by its binaries, newest first."""
    found = {}
    for path in gimp_binaries():
        match = VERSION.search(Path(path).name) or VERSION.search(_version_output(path))
        if match:
            found.setdefault(f"3.{match.group(1)}", path)
    return sorted(found.items(), key=lambda item: version_key(item[0]), reverse=True)


def gimp_binaries():
    """Candidate GIMP executables of this system, versioned names first."""
    if IS_WINDOWS:
        bases = [os.environ.get("ProgramFiles", r"C:\Program Files"),
                 str(Path(os.environ.get("LOCALAPPDATA", Path.home())) / "Programs")]
        return [p for base in bases for p in glob.glob(str(Path(base, "GIMP 3*", "bin", "gimp-3*.exe")))]
    if SYSTEM == "darwin":
        return [str(plist) for folder in ("/Applications", Path.home() / "Applications")
                for plist in Path(folder).glob("GIMP*.app/Contents/Info.plist")]
    flatpaks = [Path("/var/lib/flatpak"), Path.home() / ".local" / "share" / "flatpak"]
    found = [p for folder in os.environ.get("PATH", "").split(os.pathsep) if folder
             for pattern in ("gimp-3.*", "gimp-console-3.*") for p in glob.glob(str(Path(folder, pattern)))]
    found += [p for root in flatpaks
              for p in glob.glob(str(root / "app/org.gimp.GIMP/current/active/files/bin/gimp-3.*"))]
    plain = shutil.which("gimp")
    return found + ([plain] if plain else [])


def _version_output(path):
    """What GIMP says its version is: Info.plist's on macOS, `--version` elsewhere."""
    if path.endswith("Info.plist"):
        try:
            with open(path, "rb") as f:
                return "GIMP " + str(plistlib.load(f).get("CFBundleShortVersionString", ""))
        except (OSError, ValueError, plistlib.InvalidFileException):
            return ""
    try:
        return subprocess.run([path, "--version"], capture_output=True, text=True,
                              timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def find_plugin_dirs():
    """Where to install: every GIMP 3.x user folder that exists (GIMP carries a plug-in forward
    from there on an upgrade, so no newer folder is made before GIMP makes it: that would stop
    GIMP from carrying the user's settings forward); if none exists yet, one for the newest GIMP 3
    found (or, with none found, the newest this installer knows)."""
    if os.environ.get("GIMP3_DIRECTORY"):
        return [Path(os.environ["GIMP3_DIRECTORY"]) / "plug-ins"]
    existing = user_folders()
    if existing:
        return [folder / "plug-ins" for folder in existing]
    gimps = find_gimps()
    return [gimp_config_roots()[0] / (gimps[0][0] if gimps else NEWEST_KNOWN) / "plug-ins"]


def plugin_copies():
    """Every installed copy of the plug-in in the GIMP 3.x user folders (GIMP copies it forward
    when it upgrades a folder)."""
    return [folder / "plug-ins" / PLUGIN_NAME for folder in user_folders()
            if (folder / "plug-ins" / PLUGIN_NAME / "neural_style.py").exists()]


# -- the steps -----------------------------------------------------------------------------------


class Installer:
    def __init__(self, args):
        self.args = args
        self.venv = Path(args.venv).expanduser() if args.venv else data_dir() / "venv"

    def step(self, text):
        print(("would: " if self.args.dry_run else "") + text, flush=True)
        return not self.args.dry_run

    def install(self):
        # A server still running from before runs the old code, which may refuse what the new
        # plug-in sends (a new setting): stopped, the filter starts the new one on its next use.
        stop_server(self.venv, self.args.dry_run, " (the old version): the filter starts the new one")
        self.install_server()
        gimps = find_gimps()
        print("GIMP 3: " + (", ".join(f"{v} ({path})" for v, path in gimps) if gimps else
                            "not found (the plug-in is installed for when it is)"))
        dirs = [Path(self.args.gimp_dir).expanduser()] if self.args.gimp_dir else find_plugin_dirs()
        print("GIMP 3 plug-in folder(s): " + ", ".join(map(str, dirs)))
        written = {str(d / PLUGIN_NAME): self.install_plugin(d) for d in dirs}
        autostart = self.install_autostart() if self.args.autostart else recorded("autostart")
        if not self.args.dry_run:
            record(venv=str(self.venv), created_venv=self.created_venv, plugins=written,
                   autostart=autostart)
        print("Installed. Open GIMP 3: Filters > Artistic > Neural Style... (the server starts "
              "with the filter)", flush=True)
        if not self.args.no_demo:
            self.run_demo()

    def install_server(self):
        nst_server = venv_bin(self.venv, "nst-server")
        self.created_venv = not self.venv.exists() or previously_created(self.venv)
        if self.args.venv and nst_server.exists():
            print(f"server: reusing {self.venv} (it has nst-server)")
            return
        if not self.venv.exists() and self.step(f"create virtualenv {self.venv}"):
            subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        pip = [str(venv_bin(self.venv, "python")), "-m", "pip", "install",
               "--disable-pip-version-check", "--progress-bar", "off"]
        build, why = torch_build(self.args.torch)
        print(f"PyTorch: {why}", flush=True)
        if build == "cpu" and self.step(f"install PyTorch's CPU-only build from {TORCH_CPU_INDEX}"):
            try:
                run_with_progress([*pip, "--index-url", TORCH_CPU_INDEX, "--retries", "1",
                                   "--timeout", "20", "torch", "torchvision"])
            except StepFailed:
                print(f"PyTorch: its CPU-only build could not be installed from {TORCH_CPU_INDEX} "
                      "(offline, or no build for this Python): installing PyPI's instead (it runs "
                      "on the CPU too, but is a much larger download)", flush=True)
        if self.step(f"install the server package and its libraries into {self.venv} (minutes: "
                     "PyTorch is large; progress below)"):
            run_with_progress([*pip, str(REPO)])
        print(f"server: {nst_server}")

    def install_plugin(self, plugins):
        """Copy the plug-in's files into `plugins`/neural_style, replacing only what an earlier run
        put there (files the user added stay), and merge config.json. Returns what it wrote."""
        target = plugins / PLUGIN_NAME
        shipped = sorted(p.name for p in PLUGIN_SOURCE.glob("*.py"))
        if self.step(f"copy the plug-in to {target}"):
            target.mkdir(parents=True, exist_ok=True)
            for name in set(installed_files(target)) - {*shipped, CONTRACT, CONFIG}:
                (target / name).unlink(missing_ok=True)  # ours, from an older version
            for name in shipped:
                shutil.copyfile(PLUGIN_SOURCE / name, target / name)
            shutil.rmtree(target / CONTRACT, ignore_errors=True)  # all ours: replaced whole
            shutil.copytree(PLUGIN_SOURCE / CONTRACT, target / CONTRACT,
                            ignore=shutil.ignore_patterns("__pycache__"))
            os.chmod(target / "neural_style.py", 0o755)
            self.write_config(target / CONFIG)
        return [*shipped, CONTRACT, CONFIG]

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

    def install_autostart(self):
        """Write this system's log-in entry for the server and enable it; returns its path."""
        command = [str(venv_bin(self.venv, "nst-server"))]
        endpoint = self.args.endpoint or DEFAULT_ENDPOINT
        path, content, enable = autostart_entry(command, endpoint)
        if not self.step(f"start the server at log-in: {path}"):
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        if enable and shutil.which(enable[0]):
            done = subprocess.run(enable, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"autostart: '{' '.join(enable)}' failed ({done.stderr.strip()[:200]}); "
                      "it takes effect at your next log-in")
        return str(path)

    def run_demo(self):
        out = Path.cwd() / "neural-style-demo.png"
        if self.step(f"run an offline demo stylization into {out}"):
            started = time.monotonic()
            subprocess.run([str(venv_bin(self.venv, "nst-stylize")), "--demo", "-o", str(out)],
                           check=True)
            print(f"Demo: {out} is a sample photo (a cat) repainted in a sample painting's style, "
                  f"made offline by the server just installed, in {time.monotonic() - started:.0f} "
                  "s on this computer: open it to see what the filter does.")


def torch_build(choice):
    """("cpu" or "pypi", why in words): which PyTorch to install on this system, for --torch
    `choice` (auto, cpu or cuda)."""
    if SYSTEM == "darwin":
        return "pypi", "PyPI's build for macOS (it uses the Apple GPU where there is one)"
    if IS_WINDOWS:
        card = ("; an NVIDIA card is present: to use it, install PyTorch's CUDA build into the "
                "virtualenv (pytorch.org/get-started), then run install.py --venv VENV"
                if shutil.which("nvidia-smi") else "")
        return "pypi", f"PyPI's build for Windows (the CPU){card}"
    if choice == "auto":
        choice = "cuda" if has_nvidia_gpu() else "cpu"
        seen = "an NVIDIA graphics card was found" if choice == "cuda" else \
            "no NVIDIA graphics card was found"
    else:
        seen = f"--torch {choice}"
    if choice == "cuda":
        return "pypi", f"the CUDA build (~5.7 GB, for NVIDIA cards): {seen}; --torch cpu to change"
    return "cpu", f"the CPU-only build (~0.2 GB): {seen}; --torch cuda to change"


def has_nvidia_gpu():
    """An NVIDIA driver is loaded (Linux): its /proc entry, or nvidia-smi on PATH."""
    return NVIDIA_DRIVER.exists() or shutil.which("nvidia-smi") is not None


def run_with_progress(command):
    """Run a long pip command: print its news (big downloads, the install) and, after TICK s
    without news, that it is still at work; StepFailed, holding its last lines, when it fails."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, errors="replace")
    lines: queue.Queue = queue.Queue()

    def read():  # a thread: the loop below must wake up even while pip says nothing
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    started = said = time.monotonic()
    doing, tail = "starting", []
    while (line := _next_line(lines, said + TICK)) is not None:
        if line.strip():
            tail = [*tail[-19:], line.rstrip()]
        news = pip_news(line)
        if news:
            doing = news
            print(f"  {doing}", flush=True)
            said = time.monotonic()
        if time.monotonic() >= said + TICK:
            print(f"  ... still at work ({time.monotonic() - started:.0f} s): {doing}", flush=True)
            said = time.monotonic()
    if process.wait() != 0:
        raise StepFailed(process.returncode, command, "\n".join(tail))


class StepFailed(subprocess.CalledProcessError):
    """A step's command failed; `output` holds its last lines."""


def pip_news(line):
    """What a line of pip's output is worth telling a user, in a few words, or None."""
    download = re.match(r"\s*Downloading (\S+?)(?:-\d[^-]*)?-.*\((\d+(?:\.\d+)?) MB\)", line)
    if download and float(download.group(2)) >= BIG_DOWNLOAD_MB:
        return f"downloading {download.group(1)} ({download.group(2)} MB)"
    for start, doing in (("Installing collected packages:", "installing"),
                         ("Successfully installed", "installed")):
        if line.strip().startswith(start):
            count = len(line.split(start, 1)[1].replace(",", " ").split())
            return f"{doing} {count} package{'s' if count != 1 else ''}"
    return None


def _next_line(lines, deadline):
    """The next output line, "" if none came by `deadline`, None at the end of the output."""
    try:
        return lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        return ""


def installed_files(target):
    """What an earlier run of this installer wrote into the plug-in folder `target`."""
    return (recorded("plugins") or {}).get(str(target), [])


def autostart_entry(command, endpoint):
    """(file, its text, the command that enables it now or None) that starts the server at log-in
    on this system. Linux's and macOS's service managers run it in the foreground; Windows runs a
    hidden `nst-server start` (no console window)."""
    home, log = Path.home(), state_dir() / "nst-server.log"
    run = [*command, "run", "--endpoint", endpoint, "--log-file", str(log)]
    if IS_WINDOWS:
        startup = Path(os.environ.get("APPDATA", home / "AppData" / "Roaming"))
        path = startup / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup" / "nst-server.vbs"
        line = f'""{command[0]}"" start --endpoint {endpoint}'  # "" is a quote inside VBScript
        return path, f'CreateObject("WScript.Shell").Run "{line}", 0, False\r\n', None
    if SYSTEM == "darwin":
        path = home / "Library" / "LaunchAgents" / f"{AUTOSTART_LABEL}.plist"
        agent = {"Label": AUTOSTART_LABEL, "ProgramArguments": run, "RunAtLoad": True,
                 "KeepAlive": {"SuccessfulExit": False}}
        return path, plistlib.dumps(agent).decode(), ["launchctl", "load", "-w", str(path)]
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    path = config / "systemd" / "user" / "nst-server.service"
    unit = ("[Unit]\nDescription=Neural Style for GIMP server\n\n[Service]\n"
            f"ExecStart={' '.join(shlex.quote(part) for part in run)}\nRestart=on-failure\n\n"
            "[Install]\nWantedBy=default.target\n")
    return path, unit, ["systemctl", "--user", "enable", "--now", "nst-server.service"]


def disable_autostart(path, dry_run):
    """Undo autostart_entry: stop and disable the service, then remove its file."""
    path = Path(path)
    disable = {".service": ["systemctl", "--user", "disable", "--now", path.name],
               ".plist": ["launchctl", "unload", "-w", str(path)]}.get(path.suffix)
    if disable and shutil.which(disable[0]) and not dry_run:
        subprocess.run(disable, capture_output=True)
    remove([path], dry_run)


def recorded(key):
    """What the last installation recorded under `key`, or None."""
    try:
        return json.loads(MANIFEST.read_text()).get(key)
    except (OSError, ValueError):
        return None


def previously_created(venv):
    """Whether an earlier run of this installer made `venv` (so --uninstall removes it)."""
    return bool(recorded("created_venv")) and Path(recorded("venv") or "") == Path(venv)


def record(**facts):
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    MANIFEST.write_text(json.dumps(facts, indent=2) + "\n")


# -- --check and --uninstall ---------------------------------------------------------------------


def check(args):
    """One line per check; exit status 0 when all pass."""
    installed = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    plugin_dirs = ([Path(args.gimp_dir).expanduser() / PLUGIN_NAME] if args.gimp_dir else
                   list(dict.fromkeys([*map(Path, installed.get("plugins", {})), *plugin_copies()]))
                   or [d / PLUGIN_NAME for d in find_plugin_dirs()])
    gimps = find_gimps()
    results = [("GIMP 3", bool(gimps), ", ".join(f"{v} ({path})" for v, path in gimps) or
                "not found on PATH or in the usual places")]
    for folder in plugin_dirs:
        script = folder / "neural_style.py"
        ok = script.exists() and os.access(script, os.X_OK)
        results.append(("plug-in", ok, f"{script} " + ("present, executable" if ok else
                        "missing or not executable: run python3 install.py")))
    config = plugin_config(plugin_dirs)
    endpoint = args.endpoint or config.get("endpoint", DEFAULT_ENDPOINT)
    command = config.get("server_command") or [
        str(venv_bin(installed.get("venv", data_dir() / "venv"), "nst-server"))]
    results.append(("server", *server_status(command, endpoint)))
    for name, ok, detail in results:
        print(f"[{'ok' if ok else 'FAIL'}] {name}: {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


def plugin_config(plugin_dirs):
    """The config.json install.py wrote into the first installed plug-in folder, or {}."""
    for folder in plugin_dirs:
        try:
            return json.loads((folder / "config.json").read_text())
        except (OSError, ValueError):
            continue
    return {}


def server_status(command, endpoint):
    """(ok, detail): does an nst-server answer the protocol at `endpoint` (asked with the installed
    `nst-server status`, a real ping)? Nothing listening there passes: the filter starts the
    server when it needs it."""
    how = f"start it with {' '.join(command)} start --endpoint {endpoint}"
    if not Path(command[0]).exists():
        return False, f"{command[0]} is missing: run python3 install.py"
    if not port_taken(endpoint):
        return True, f"not running at {endpoint} (it starts with the filter)"
    try:
        done = subprocess.run([*command, "status", "--endpoint", endpoint], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"{' '.join(command)} status failed ({exc}): {how}"
    if done.returncode == 0:
        return True, f"{endpoint} answers"
    return False, (f"something that is not an nst-server listens at {endpoint}: stop it, or "
                   f"choose another port (python3 install.py --endpoint tcp://127.0.0.1:PORT)")


def port_taken(endpoint):
    """Whether anything accepts a TCP connection at `endpoint` (tcp://HOST:PORT)."""
    try:
        with socket.create_connection(parse_endpoint(endpoint), timeout=5):
            return True
    except (OSError, ValueError):
        return False


def uninstall(args):
    if not MANIFEST.exists():
        print("nothing to uninstall: no record of an installation")
        return 0
    installed = json.loads(MANIFEST.read_text())
    copies = dict(installed["plugins"])
    ours = sorted({name for names in copies.values() for name in names})
    for copy in plugin_copies():  # copies GIMP carried forward to a newer version's folder
        copies.setdefault(str(copy), ours)
    for folder, names in copies.items():
        names = [*names, "__pycache__"]  # Python's cache of our modules, written by GIMP's Python
        remove([Path(folder) / name for name in names], args.dry_run)
        left = sorted(p.name for p in Path(folder).iterdir() if p.name not in names) \
            if Path(folder).is_dir() else []
        if left:
            print(f"kept {folder}: it holds files install.py did not put there ({', '.join(left)})")
        elif Path(folder).exists():
            remove([Path(folder)], args.dry_run)
    if installed.get("autostart"):
        disable_autostart(installed["autostart"], args.dry_run)
    stop_server(installed["venv"], args.dry_run)
    if installed["created_venv"]:
        remove([Path(installed["venv"])], args.dry_run)
    remove(server_folders(), args.dry_run)
    if not args.dry_run:
        MANIFEST.unlink()
        if not any(MANIFEST.parent.iterdir()):  # the venv was elsewhere: nothing else of ours
            MANIFEST.parent.rmdir()
    return 0


def stop_server(venv, dry_run, why=""):
    """Stop the background server the plug-in started, before its files go or are replaced
    (else it runs on, holding its port, with no program left to stop it, or the old code)."""
    server = venv_bin(venv, "nst-server")
    if not server.exists():
        return
    if dry_run:
        print("would: stop the background server, if running")
        return
    try:
        done = subprocess.run([str(server), "stop"], capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"could not stop the background server ({exc}): stop it yourself if it runs")
        return
    if "stopped" in done.stdout:
        print(done.stdout.strip() + why)


def server_folders():
    """What the server wrote for itself: its cache (what it measured once) and its log and pid
    files, in folders named after this product; a folder set with $NST_STATE_DIR is the user's
    and stays."""
    return [cache_dir()] + ([] if os.environ.get(STATE_ENV) else [state_dir()])


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
    parser.add_argument("--endpoint", help=f"server endpoint to record (default {DEFAULT_ENDPOINT}); "
                        "with --check, the one to try (default: the recorded one)")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo stylization")
    parser.add_argument("--torch", choices=("auto", "cpu", "cuda"), default="auto",
                        help="Linux: PyTorch's CPU-only build or its CUDA build (default: CUDA "
                        "when an NVIDIA graphics card is found)")
    parser.add_argument("--autostart", action="store_true", help="start the server at log-in "
                        "(systemd user unit, LaunchAgent, or Startup entry; --uninstall removes it)")
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
        if exc.output:  # the failed step's last lines
            print(exc.output, file=sys.stderr)
        print(f"install.py: error: {' '.join(map(str, exc.cmd[:4]))}... failed "
              f"(exit {exc.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
