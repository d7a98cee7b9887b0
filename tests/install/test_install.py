"""install.py as a user runs it, into private folders (reusing this test virtualenv)."""
import importlib.util
import json
import os
import plistlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from support import free_endpoint

REPO = Path(__file__).resolve().parents[2]


def user_env(tmp_path):
    """A user's per-user folders under tmp_path (what install.py writes, and the server's own)."""
    env = dict(os.environ, **{f"XDG_{kind.upper()}_HOME": str(tmp_path / kind)
                              for kind in ("data", "config", "state", "cache")})
    for variable in ("GIMP3_DIRECTORY", "NST_STATE_DIR"):
        env.pop(variable, None)
    return env


def install_py(tmp_path, *args, **extra_env):
    env = dict(user_env(tmp_path), **extra_env)
    done = subprocess.run([sys.executable, str(REPO / "install.py"), *args], capture_output=True,
                          text=True, env=env, timeout=300)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def plugins(tmp_path):
    return tmp_path / "GIMP" / "3.0" / "plug-ins"


def common(plugins):
    return ["--venv", sys.prefix, "--gimp-dir", str(plugins), "--no-demo"]


def test_help_names_every_option(tmp_path):
    code, out = install_py(tmp_path, "--help")
    assert code == 0
    for option in ("--venv", "--gimp-dir", "--endpoint", "--check", "--uninstall", "--dry-run"):
        assert option in out


def test_dry_run_changes_nothing(tmp_path, plugins):
    code, out = install_py(tmp_path, *common(plugins), "--dry-run")
    assert code == 0 and "would: copy the plug-in" in out
    assert not plugins.exists() and not (tmp_path / "data").exists()


def test_install_is_idempotent_and_uninstall_removes_exactly_it(tmp_path, plugins):
    keep = plugins / "someone-elses-plugin"
    keep.mkdir(parents=True)
    for _ in range(2):
        code, out = install_py(tmp_path, *common(plugins))
        assert code == 0, out
        assert f"reusing {sys.prefix}" in out
    plugin = plugins / "neural_style"
    assert os.access(plugin / "neural_style.py", os.X_OK)
    assert {p.name for p in plugin.iterdir()} == {
        "neural_style.py", "nst_canvas.py", "nst_dialog.py", "nst_watch.py", "nst_contract",
        "config.json"}
    assert {p.name for p in (plugin / "nst_contract").iterdir()} == {
        "__init__.py", "client.py", "zmtp.py", "launch.py", "protocol.py", "settings.py"}
    config = json.loads((plugin / "config.json").read_text())
    assert config["server_command"] == [str(Path(sys.prefix) / "bin" / "nst-server")]
    assert config["endpoint"] == "tcp://127.0.0.1:5555"

    nobody = free_endpoint()
    code, out = install_py(tmp_path, "--check", "--gimp-dir", str(plugins), "--endpoint", nobody)
    lines = out.strip().splitlines()
    assert any(line.startswith("[ok] plug-in:") for line in lines)
    # right after an install nothing runs yet: the filter starts the server when it needs it
    assert f"[ok] server: not running at {nobody} (it starts with the filter)" in lines, lines
    failed = [line for line in lines if line.startswith("[FAIL]")]
    assert all(line.startswith("[FAIL] GIMP 3:") for line in failed), lines  # none here: chroots
    assert code == (1 if failed else 0)

    code, out = install_py(tmp_path, "--uninstall")
    assert code == 0 and f"remove {plugin}" in out
    assert not plugin.exists() and keep.exists() and Path(sys.prefix).exists()
    code, out = install_py(tmp_path, "--uninstall")
    assert "nothing to uninstall" in out


def test_uninstall_stops_the_background_server_and_removes_its_log_and_cache(tmp_path, plugins):
    """The plug-in starts the server in the background (pid file and log in the state folder,
    the CPU's measured dtype in the cache folder): --dry-run only says what it would do;
    --uninstall stops the server first, then removes both folders (not a state folder the user
    set with NST_STATE_DIR), and the installer's own folder once empty."""
    assert install_py(tmp_path, *common(plugins))[0] == 0
    env = user_env(tmp_path)
    server = str(Path(sys.prefix) / "bin" / "nst-server")
    started = subprocess.run([server, "start", "--endpoint", free_endpoint()], env=env,
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    server_process = psutil.Process(int(started.stdout.split("(pid ")[1].split(")")[0]))
    try:
        uninstall_with_a_running_server(tmp_path, server_process.pid)
    finally:  # whatever failed, no server outlives the test
        if server_process.is_running():
            server_process.kill()


def test_a_reinstall_stops_the_server_running_the_old_code(tmp_path, plugins):
    """Installing over an installation stops the background server first: it would go on
    running the old code (which refuses a setting the new plug-in sends); the filter starts
    the new one."""
    assert install_py(tmp_path, *common(plugins))[0] == 0
    server = str(Path(sys.prefix) / "bin" / "nst-server")
    started = subprocess.run([server, "start", "--endpoint", free_endpoint()], env=user_env(tmp_path),
                             capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr
    server_process = psutil.Process(int(started.stdout.split("(pid ")[1].split(")")[0]))
    try:
        code, out = install_py(tmp_path, *common(plugins), "--dry-run")
        assert code == 0 and "would: stop the background server" in out, out
        assert server_process.is_running()
        code, out = install_py(tmp_path, *common(plugins))
        assert code == 0 and f"nst-server stopped (pid {server_process.pid})" in out, out
        server_process.wait(10)
    finally:  # whatever failed, no server outlives the test
        if server_process.is_running():
            server_process.kill()


def uninstall_with_a_running_server(tmp_path, pid):
    folders = [tmp_path / kind / "neural-style-gimp" for kind in ("state", "cache")]
    assert (folders[0] / "nst-server.pid").exists()
    verdict = folders[1] / "cpu-dtype.json"
    if torch.ops.mkldnn._is_mkldnn_bf16_supported():
        assert verdict.exists()  # the server measured this CPU's dtype
    else:  # float32 without measuring, nothing cached: a cache of ours to remove all the same
        verdict.parent.mkdir(parents=True)
        verdict.write_text("{}")
    code, out = install_py(tmp_path, "--uninstall", "--dry-run")
    assert code == 0 and "would: stop the background server" in out
    assert all(f"would: remove {f}" in out for f in folders), out
    assert psutil.pid_exists(pid) and all(f.exists() for f in folders)
    mine = tmp_path / "my-own-folder"  # a state folder the user chose is theirs: it stays
    mine.mkdir()
    code, out = install_py(tmp_path, "--uninstall", "--dry-run", NST_STATE_DIR=str(mine))
    assert f"remove {mine}" not in out and f"would: remove {folders[1]}" in out, out
    code, out = install_py(tmp_path, "--uninstall")
    assert code == 0 and f"nst-server stopped (pid {pid})" in out, out
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not any(f.exists() for f in folders) and Path(sys.prefix).exists()
    assert not (tmp_path / "data" / "neural-style-gimp").exists()  # the manifest's folder, emptied


def test_the_users_files_and_settings_survive_reinstall_and_uninstall(tmp_path, plugins):
    """A file the user put in the plug-in folder is neither deleted by a re-install nor by
    --uninstall; an endpoint the user set in config.json is kept (and said so) unless --endpoint
    names another; an old file of ours that a newer version no longer ships is removed."""
    assert install_py(tmp_path, *common(plugins))[0] == 0
    plugin = plugins / "neural_style"
    notes = plugin / "my-notes.txt"
    notes.write_text("mine")
    config = json.loads((plugin / "config.json").read_text())
    (plugin / "config.json").write_text(json.dumps(dict(config, endpoint="tcp://127.0.0.1:6000",
                                                        theme="dark")))
    manifest = tmp_path / "data" / "neural-style-gimp" / "installed.json"
    recorded = json.loads(manifest.read_text())
    recorded["plugins"][str(plugin)].append("nst_retired.py")
    manifest.write_text(json.dumps(recorded))
    (plugin / "nst_retired.py").write_text("# shipped by an older version")

    code, out = install_py(tmp_path, *common(plugins))
    assert code == 0, out
    assert f"{plugin / 'config.json'}: endpoint tcp://127.0.0.1:6000 (kept)" in out
    config = json.loads((plugin / "config.json").read_text())
    assert config["endpoint"] == "tcp://127.0.0.1:6000" and config["theme"] == "dark"
    assert notes.read_text() == "mine" and not (plugin / "nst_retired.py").exists()

    code, out = install_py(tmp_path, *common(plugins), "--endpoint", "tcp://127.0.0.1:6001")
    assert "endpoint tcp://127.0.0.1:6001 (changed from tcp://127.0.0.1:6000)" in out

    code, out = install_py(tmp_path, "--uninstall")
    assert code == 0 and f"kept {plugin}: it holds files install.py did not put there " \
                         "(my-notes.txt)" in out
    assert [p.name for p in plugin.iterdir()] == ["my-notes.txt"]


def test_check_passes_only_for_a_real_server(tmp_path, plugins, server):
    """--check asks with the protocol: the real server answers; a port where something else
    listens (plain TCP, not nst-server) fails, saying so and how to choose another port."""
    code, out = install_py(tmp_path, *common(plugins))
    assert code == 0, out
    with socket.socket() as impostor:
        impostor.bind(("127.0.0.1", 0))
        impostor.listen()
        other = f"tcp://127.0.0.1:{impostor.getsockname()[1]}"
        impostor_verdict = "[FAIL] server: something that is not an nst-server listens at {}: stop it"
        for endpoint, verdict in ((server.endpoint, "[ok] server: {} answers"), (other, impostor_verdict)):
            code, out = install_py(tmp_path, "--check", "--gimp-dir", str(plugins),
                                   "--endpoint", endpoint)
            assert verdict.format(endpoint) in out, out


def test_finds_the_gimp3_plugin_folders(tmp_path):
    for version in ("3.0", "3.2"):
        (tmp_path / "config" / "GIMP" / version).mkdir(parents=True)
    code, out = install_py(tmp_path, "--venv", sys.prefix, "--no-demo", "--dry-run")
    assert code == 0
    for version in ("3.0", "3.2"):
        assert str(tmp_path / "config" / "GIMP" / version / "plug-ins") in out


def test_a_virtualenv_the_installer_made_is_removed_even_after_a_rerun(tmp_path, plugins):
    """Re-running install.py on the virtualenv an earlier run created keeps it on the list of what
    --uninstall removes (a virtualenv it merely reused never is)."""
    venv = tmp_path / "made-by-install"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "nst-server").symlink_to(Path(sys.prefix) / "bin" / "nst-server")
    manifest = tmp_path / "data" / "neural-style-gimp" / "installed.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"venv": str(venv), "created_venv": True, "plugins": []}))
    options = ["--venv", str(venv), "--gimp-dir", str(plugins), "--no-demo"]
    code, out = install_py(tmp_path, *options)
    assert code == 0, out
    assert json.loads(manifest.read_text())["created_venv"]
    code, out = install_py(tmp_path, "--uninstall")
    assert f"remove {venv}" in out and not venv.exists()


CLIENT_RUN = """
import sys
sys.path.insert(0, sys.argv[3])  # as neural_style.py puts its own folder first
from nst_contract.client import Client, JobEventKind
client = Client(sys.argv[1])
assert client.ping() < 1 and client.info()["busy"] is False
events = []
style = open(sys.argv[2], "rb").read()
result = client.stylize(bytes(range(256)) * 36, 48, 64, 3, style,
                        {"preset": "fast", "size": 64, "iterations": 150},
                        on_event=events.append, preview_seconds=0.25, preview_side=32)
kinds = [e.kind.value for e in events]
assert len(result) == 48 * 64 * 3 and kinds[0] == "accepted" and kinds[-1] == "result", kinds
previews = [e for e in events if e.kind is JobEventKind.PREVIEW]
assert previews[0].iteration == 1 and len(previews[0].pixels) == 24 * 32 * 3, previews[0]
events = []
def outlived(seconds):  # the job has run `seconds` by the server's clock
    return any(e.kind is JobEventKind.PROGRESS and e.elapsed > seconds for e in events)
try:
    client.stylize(bytes(48 * 64 * 3), 48, 64, 3, style, {"preset": "fast", "iterations": 9999},
                   on_event=events.append, should_cancel=lambda: outlived(float(sys.argv[4])))
except Exception as exc:
    print("ended:", type(exc).__name__)
print("outlived:", outlived(float(sys.argv[4])))
print("modules:", sorted(m for m in sys.modules if m.split(".")[0] in ("zmq", "numpy", "PIL")))
"""


def test_the_installed_plugin_folder_runs_its_client_with_no_site_packages(tmp_path, plugins,
                                                                           server, style_png):
    """What GIMP loads is standard-library Python: from the installed folder, under `python3 -I
    -S` (no site-packages at all), the client pings, runs a job with previews, heartbeats it
    (the job outlives several heartbeat intervals) and cancels one, against the real server."""
    assert install_py(tmp_path, *common(plugins))[0] == 0
    folder = plugins / "neural_style"
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files and all(p.suffix == ".py" or p.name == "config.json" for p in files)
    (tmp_path / "style.png").write_bytes(style_png)
    # Cancelled by the client once it has run twice the server's job timeout (3 s): only
    # heartbeats kept it alive so long (an abandoned job is cancelled at 3 s, and never gets there).
    done = subprocess.run(["/usr/bin/python3", "-I", "-S", "-c", CLIENT_RUN, server.endpoint,
                           str(tmp_path / "style.png"), str(folder), str(2 * 3)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "ended: JobCancelled" in done.stdout and "modules: []" in done.stdout
    assert "outlived: True" in done.stdout, done.stdout


# -- every GIMP 3 on every system: simulated homes (HOME, APPDATA, ... and NST_INSTALL_SYSTEM) ----

SYSTEMS = [  # (case, system, user folders GIMP made, GIMP binaries, where the plug-in must land)
    ("linux, 3.0 has run", "linux", [".config/GIMP/3.0"], [], [".config/GIMP/3.0"]),
    ("linux, 3.2 has run", "linux", [".config/GIMP/3.2"], ["bin/gimp-3.2"], [".config/GIMP/3.2"]),
    ("linux, both have run", "linux", [".config/GIMP/3.0", ".config/GIMP/3.2"], ["bin/gimp-3.0"],
     [".config/GIMP/3.0", ".config/GIMP/3.2"]),
    ("linux, none yet, gimp-3.2 on PATH", "linux", [], ["bin/gimp-3.2", "bin/gimp-console-3.0"],
     [".config/GIMP/3.2"]),
    ("linux, no GIMP found", "linux", [], [], [".config/GIMP/3.2"]),
    ("flatpak, none yet", "linux", [],
     [".local/share/flatpak/app/org.gimp.GIMP/current/active/files/bin/gimp-3.2"],
     [".config/GIMP/3.2"]),
    ("flatpak, its own folder", "linux", [".var/app/org.gimp.GIMP/config/GIMP/3.0"], [],
     [".var/app/org.gimp.GIMP/config/GIMP/3.0"]),
    ("windows, 3.0 has run", "win32", ["AppData/Roaming/GIMP/3.0"],
     ["ProgramFiles/GIMP 3/bin/gimp-3.0.exe"], ["AppData/Roaming/GIMP/3.0"]),
    ("windows, none yet, per-user 3.2", "win32", [],
     ["AppData/Local/Programs/GIMP 3/bin/gimp-3.2.exe"], ["AppData/Roaming/GIMP/3.2"]),
    ("macos, 3.2 has run", "darwin", ["Library/Application Support/GIMP/3.2"], [],
     ["Library/Application Support/GIMP/3.2"]),
    ("macos, none yet, GIMP.app 3.0", "darwin", [], ["Applications/GIMP.app"],
     ["Library/Application Support/GIMP/3.0"]),
]


def simulated(tmp_path, system, folders, binaries):
    """A home with GIMP's user folders and binaries laid out as on `system`; returns its env."""
    home = tmp_path / "home"
    for folder in folders:
        (home / folder).mkdir(parents=True)
    for binary in binaries:
        path = home / binary
        path.parent.mkdir(parents=True, exist_ok=True)
        if binary.endswith(".app"):
            (path / "Contents").mkdir(parents=True)
            (path / "Contents" / "Info.plist").write_bytes(plistlib.dumps(
                {"CFBundleShortVersionString": "3.0.6"}))
        else:
            path.write_text("#!/bin/sh\necho 'GNU Image Manipulation Program version 3.x'\n")
            path.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "GIMP3"))}
    return dict(env, HOME=str(home), NST_INSTALL_SYSTEM=system, XDG_DATA_HOME=str(tmp_path / "data"),
                APPDATA=str(home / "AppData/Roaming"), LOCALAPPDATA=str(home / "AppData/Local"),
                ProgramFiles=str(home / "ProgramFiles"), PATH=f"{home / 'bin'}:/usr/bin:/bin")


def run_install(env, *args):
    done = subprocess.run([sys.executable, str(REPO / "install.py"), *args], capture_output=True,
                          text=True, env=env, timeout=120)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("case, system, folders, binaries, expected", SYSTEMS,
                         ids=[s[0] for s in SYSTEMS])
def test_the_plugin_lands_where_that_gimp_reads_it(tmp_path, case, system, folders, binaries,
                                                   expected):
    env = simulated(tmp_path, system, folders, binaries)
    home = Path(env["HOME"])
    venv = Path(sys.prefix)
    if system == "win32":  # a Windows virtualenv: commands are Scripts\*.exe
        venv = tmp_path / "venv"
        (venv / "Scripts").mkdir(parents=True)
        (venv / "Scripts" / "nst-server.exe").write_bytes(b"MZ")
    code, out = run_install(env, "--venv", str(venv), "--no-demo")
    assert code == 0, out
    landed = sorted(str(p.relative_to(home)) for p in home.rglob("neural_style/neural_style.py"))
    assert landed == sorted(f"{folder}/plug-ins/neural_style/neural_style.py" for folder in expected)
    config = json.loads((home / expected[0] / "plug-ins/neural_style/config.json").read_text())
    assert config["server_command"] == [str(venv / ("Scripts/nst-server.exe" if system == "win32"
                                                    else "bin/nst-server"))]
    if binaries:
        assert "GIMP 3: 3." in out
    code, out = run_install(env, "--check")
    for folder in expected:
        assert f"[ok] plug-in: {home / folder / 'plug-ins/neural_style/neural_style.py'}" in out


def test_uninstall_removes_every_copy_gimp_carried_forward_and_nothing_else(tmp_path):
    env = simulated(tmp_path, "linux", [".config/GIMP/3.0"], [])
    gimp = Path(env["HOME"]) / ".config/GIMP"
    (gimp / "3.0/plug-ins/other-plugin").mkdir(parents=True)
    assert run_install(env, "--venv", sys.prefix, "--no-demo")[0] == 0
    shutil.copytree(gimp / "3.0", gimp / "3.2")  # what GIMP 3.2 does at its first start
    (gimp / "3.2/plug-ins/neural_style/__pycache__").mkdir()  # GIMP's Python ran the plug-in
    code, out = run_install(env, "--check")
    for version in ("3.0", "3.2"):
        assert f"[ok] plug-in: {gimp / version / 'plug-ins/neural_style/neural_style.py'}" in out
    code, out = run_install(env, "--uninstall")
    assert code == 0, out
    assert not list(gimp.rglob("neural_style"))
    assert (gimp / "3.0/plug-ins/other-plugin").is_dir() and (gimp / "3.2/plug-ins/other-plugin").is_dir()


AUTOSTART = [  # (system, the entry's place under HOME, the command that enables it, or None)
    ("linux", ".config/systemd/user/nst-server.service", "systemctl --user enable --now nst-server.service"),
    ("darwin", "Library/LaunchAgents/org.neural-style-gimp.nst-server.plist", "launchctl load -w"),
    ("win32", "AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Startup/nst-server.vbs", None),
]


@pytest.mark.parametrize("system, place, enable", AUTOSTART, ids=[a[0] for a in AUTOSTART])
def test_autostart_entry_per_system_and_uninstall_removes_it(tmp_path, system, place, enable):
    """--autostart writes the system's log-in entry for the server (with the installed command and
    the endpoint), enables it now where a service manager exists, and --uninstall disables and
    removes it. The service managers are stand-ins that record how they were called."""
    env = simulated(tmp_path, system, [], [])
    home, calls = Path(env["HOME"]), tmp_path / "calls.txt"
    for manager in ("systemctl", "launchctl"):
        fake = home / "bin" / manager
        fake.parent.mkdir(parents=True, exist_ok=True)
        fake.write_text(f'#!/bin/sh\necho "{manager} $*" >> {calls}\n')
        fake.chmod(0o755)
    venv = Path(sys.prefix)
    if system == "win32":
        venv = tmp_path / "venv"
        (venv / "Scripts").mkdir(parents=True)
        (venv / "Scripts" / "nst-server.exe").write_bytes(b"MZ")
    server = venv / ("Scripts/nst-server.exe" if system == "win32" else "bin/nst-server")
    code, out = run_install(env, "--venv", str(venv), "--no-demo", "--autostart",
                            "--endpoint", "tcp://127.0.0.1:5600")
    assert code == 0, out
    entry = (home / place).read_text()
    assert str(server) in entry and "tcp://127.0.0.1:5600" in entry
    if system == "win32":
        assert "start --endpoint" in entry and entry.rstrip().endswith(", 0, False")  # hidden
    else:
        assert "run" in entry and "--log-file" in entry
    said = calls.read_text() if calls.exists() else ""
    assert (enable in said) if enable else said == ""
    code, out = run_install(env, "--uninstall")
    assert code == 0 and not (home / place).exists()
    if enable:
        assert ("disable --now" if system == "linux" else "launchctl unload -w") in calls.read_text()


def test_linux_gets_the_cpu_build_of_pytorch_unless_an_nvidia_card_is_there(tmp_path, plugins):
    """PyPI's Linux torch is the CUDA build (5.7 GB): without an NVIDIA driver the installer
    takes PyTorch's CPU-only build, says so and how to choose; --torch chooses."""
    nvidia = Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi")
    expected = "the CUDA build" if nvidia else "the CPU-only build"
    dry = ["--gimp-dir", str(plugins), "--no-demo", "--dry-run", "--venv", str(tmp_path / "venv")]
    code, out = install_py(tmp_path, *dry, NST_INSTALL_SYSTEM="linux")
    assert code == 0 and f"PyTorch: {expected}" in out, out
    assert ("would: install PyTorch's CPU-only build" in out) == (not nvidia)
    code, out = install_py(tmp_path, *dry, "--torch", "cuda", NST_INSTALL_SYSTEM="linux")
    assert "PyTorch: the CUDA build (~5.7 GB, for NVIDIA cards): --torch cuda" in out, out
    assert "would: install PyTorch's CPU-only build" not in out
    code, out = install_py(tmp_path, *dry, NST_INSTALL_SYSTEM="darwin")
    assert "PyTorch: PyPI's build for macOS" in out and "CPU-only" not in out, out


def test_a_long_install_step_says_it_is_at_work_every_few_seconds(capsys):
    """While pip is silent (torch's files being unpacked: ~60 s), a line at least every TICK s;
    pip's news worth telling (big downloads, the install) is passed on in a few words, the rest
    kept back; a failure raises with the step's last lines."""
    installer = load_installer()
    silent = installer.TICK + 3
    started = time.monotonic()
    installer.run_with_progress([sys.executable, "-c", (
        "import time; print('Collecting torch', flush=True); "
        "print('  Downloading torch-2.14.1-cp311-cp311-manylinux_2_28_x86_64.whl (554.6 MB)', "
        f"flush=True); time.sleep({silent}); print('Successfully installed torch-2.14.1')")])
    out = capsys.readouterr().out.splitlines()
    assert time.monotonic() - started >= silent
    assert out[0] == "  downloading torch (554.6 MB)" and out[-1] == "  installed 1 package", out
    assert any(line.startswith("  ... still at work (1") and line.endswith(": downloading torch "
                                                                            "(554.6 MB)")
               for line in out[1:-1]), out
    assert "Collecting" not in "\n".join(out)
    with pytest.raises(subprocess.CalledProcessError) as failed:
        installer.run_with_progress([sys.executable, "-c", "print('ERROR: no such package'); exit(1)"])
    assert "ERROR: no such package" in failed.value.output


def load_installer():
    """install.py as a module (it is a script, not in a package)."""
    spec = importlib.util.spec_from_file_location("install_under_test", REPO / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
