"""install.py as a user runs it, into private folders (reusing this test virtualenv)."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import free_endpoint

REPO = Path(__file__).resolve().parents[1]


def install_py(tmp_path, *args):
    env = dict(os.environ, XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    env.pop("GIMP3_DIRECTORY", None)
    done = subprocess.run([sys.executable, str(REPO / "install.py"), *args], capture_output=True,
                          text=True, env=env, timeout=300)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def plugins(tmp_path):
    return tmp_path / "GIMP" / "3.0" / "plug-ins"


def common(plugins):
    return ["--venv", sys.prefix, "--gimp-dir", str(plugins), "--gimp-python",
            "%d.%d" % sys.version_info[:2], "--no-demo"]


def test_help_names_every_option(tmp_path):
    code, out = install_py(tmp_path, "--help")
    assert code == 0
    for option in ("--venv", "--gimp-dir", "--gimp-python", "--check", "--uninstall", "--dry-run"):
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
    assert {p.name for p in plugin.iterdir()} >= {"neural_style.py", "nst_client.py",
                                                   "nst_protocol.py", "nst_settings.py", "vendor"}
    config = json.loads((plugin / "config.json").read_text())
    assert config["server_command"] == [str(Path(sys.prefix) / "bin" / "nst-server")]
    assert config["endpoint"] == "tcp://127.0.0.1:5555"

    nobody = free_endpoint()
    code, out = install_py(tmp_path, "--check", "--gimp-dir", str(plugins),
                           "--gimp-python", "%d.%d" % sys.version_info[:2], "--endpoint", nobody)
    lines = out.strip().splitlines()
    assert any(line.startswith("[ok] plug-in:") for line in lines)
    assert any(line.startswith("[ok] zmq for GIMP's Python:") for line in lines)
    assert f"[FAIL] server: {nobody} not answering: start it with " \
           f"{Path(sys.prefix) / 'bin' / 'nst-server'} start --endpoint {nobody}" in lines
    assert code == 1

    code, out = install_py(tmp_path, "--uninstall")
    assert code == 0 and f"remove {plugin}" in out
    assert not plugin.exists() and keep.exists() and Path(sys.prefix).exists()
    code, out = install_py(tmp_path, "--uninstall")
    assert "nothing to uninstall" in out


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
    listens (plain TCP, not nst-server) fails with how to start the server."""
    code, out = install_py(tmp_path, *common(plugins))
    assert code == 0, out
    with socket.socket() as impostor:
        impostor.bind(("127.0.0.1", 0))
        impostor.listen()
        other = f"tcp://127.0.0.1:{impostor.getsockname()[1]}"
        for endpoint, verdict in ((server.endpoint, "[ok] server: {} answers"),
                                  (other, "[FAIL] server: {} not answering: start it with")):
            code, out = install_py(tmp_path, "--check", "--gimp-dir", str(plugins),
                                   "--endpoint", endpoint)
            assert verdict.format(endpoint) in out, out


def test_finds_the_gimp3_plugin_folders(tmp_path):
    for version in ("3.0", "3.2"):
        (tmp_path / "config" / "GIMP" / version).mkdir(parents=True)
    code, out = install_py(tmp_path, "--venv", sys.prefix, "--no-demo", "--dry-run",
                           "--gimp-python", "3.13")
    assert code == 0
    for version in ("3.0", "3.2"):
        assert str(tmp_path / "config" / "GIMP" / version / "plug-ins") in out


def test_a_virtualenv_the_installer_made_is_removed_even_after_a_rerun(tmp_path, plugins):
    """Re-running install.py on the virtualenv an earlier run created keeps it on the list of what
    --uninstall removes (a virtualenv it merely reused never is)."""
    venv = tmp_path / "made-by-install"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)  # pip for vendoring pyzmq
    (venv / "bin" / "nst-server").symlink_to(Path(sys.prefix) / "bin" / "nst-server")
    manifest = tmp_path / "data" / "neural-style-gimp" / "installed.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"venv": str(venv), "created_venv": True, "plugins": []}))
    options = ["--venv", str(venv), "--gimp-dir", str(plugins), "--gimp-python",
               "%d.%d" % sys.version_info[:2], "--no-demo"]
    code, out = install_py(tmp_path, *options)
    assert code == 0, out
    assert json.loads(manifest.read_text())["created_venv"]
    code, out = install_py(tmp_path, "--uninstall")
    assert f"remove {venv}" in out and not venv.exists()


def system_python():
    """(version, has_zmq) of /usr/bin/python3, the Python GIMP runs plug-ins with on Linux."""
    probe = "import sys, importlib.util; print('%d.%d' % sys.version_info[:2], " \
            "importlib.util.find_spec('zmq') is not None)"
    try:
        out = subprocess.run(["/usr/bin/python3", "-c", probe], capture_output=True, text=True,
                             check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None, False
    return out[0], out[1] == "True"


def test_check_imports_zmq_in_gimps_python_and_catches_a_wheel_for_another_version(tmp_path, plugins):
    """--check imports zmq for real with the Python GIMP uses (the system python3 on Linux), the
    plug-in's way: a pyzmq vendored for another Python version is reported, not trusted."""
    version, has_zmq = system_python()
    if version is None or has_zmq:
        pytest.skip("needs a /usr/bin/python3 without its own pyzmq")
    other = "3.13" if version != "3.13" else "3.12"
    nobody = free_endpoint()
    for stated, verdict in ((version, "[ok]"), (other, "[FAIL]")):
        code, out = install_py(tmp_path, "--venv", sys.prefix, "--gimp-dir", str(plugins),
                               "--gimp-python", stated, "--endpoint", nobody, "--no-demo")
        assert code == 0, out
        code, out = install_py(tmp_path, "--check", "--gimp-dir", str(plugins))
        line = next(line for line in out.splitlines() if "zmq for GIMP's Python" in line)
        assert line.startswith(verdict), line
        assert f"[FAIL] server: {nobody} not answering" in out  # the recorded endpoint is tried
    assert "cannot import zmq" in line
