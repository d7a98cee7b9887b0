"""`nst-server start / status / stop` as a user runs them (state files in a private folder)."""
import os
import subprocess

import pytest

from conftest import SERVER, free_endpoint


@pytest.fixture
def user_env(tmp_path):
    env = dict(os.environ, NST_STATE_DIR=str(tmp_path / "state"), NST_ENDPOINT=free_endpoint())
    yield env
    subprocess.run([SERVER, "stop"], env=env, capture_output=True, timeout=30)


def nst_server(env, *args):
    done = subprocess.run([SERVER, *args], env=env, capture_output=True, text=True, timeout=180)
    return done.returncode, done.stdout + done.stderr


def test_start_status_stop(user_env, tmp_path):
    code, out = nst_server(user_env, "status")
    assert code == 3 and "not answering" in out

    code, out = nst_server(user_env, "start")
    assert code == 0 and "started (pid" in out and user_env["NST_ENDPOINT"] in out
    pid = int((tmp_path / "state" / "nst-server.pid").read_text())
    os.kill(pid, 0)  # a real, detached process

    code, out = nst_server(user_env, "start")
    assert code == 0 and f"already running (pid {pid})" in out

    code, out = nst_server(user_env, "status")
    assert code == 0 and "is running" in out and "device cpu" in out

    code, out = nst_server(user_env, "stop")
    assert code == 0 and f"stopped (pid {pid})" in out
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "serving on" in (tmp_path / "state" / "nst-server.log").read_text()

    code, out = nst_server(user_env, "stop")
    assert code == 0 and "not running" in out


def test_port_in_use_is_a_clear_error(user_env, start_server):
    busy = start_server()
    env = dict(user_env, NST_ENDPOINT=busy.endpoint)
    code, out = nst_server(env, "run")
    assert code == 1 and "cannot listen on" in out and "another nst-server" in out
