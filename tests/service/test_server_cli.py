"""`nst-server start / status / stop / run` as a user runs them (state files in a private folder),
and as an attacker or an accident would leave things: stale pid files, busy ports, a second
endpoint, a non-loopback address."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from support import SERVER, free_endpoint
from nst_server.service import daemon


@pytest.fixture
def user_env(tmp_path):
    env = dict(os.environ, NST_STATE_DIR=str(tmp_path / "state"), NST_ENDPOINT=free_endpoint())
    yield env
    subprocess.run([SERVER, "stop"], env=env, capture_output=True, timeout=30)


def nst_server(env, *args):
    done = subprocess.run([SERVER, *args], env=env, capture_output=True, text=True, timeout=180)
    return done.returncode, done.stdout + done.stderr


def recorded_pid(tmp_path):
    return json.loads((tmp_path / "state" / "nst-server.pid").read_text())["pid"]


def test_start_status_stop(user_env, tmp_path):
    code, out = nst_server(user_env, "status")
    assert code == 3 and "not answering" in out

    code, out = nst_server(user_env, "start")
    assert code == 0 and "started (pid" in out and user_env["NST_ENDPOINT"] in out
    pid = recorded_pid(tmp_path)
    os.kill(pid, 0)  # a real, detached process

    code, out = nst_server(user_env, "start")
    assert code == 0 and f"already running (pid {pid})" in out

    code, out = nst_server(user_env, "status")
    assert code == 0 and "is running" in out and f"(pid {pid})" in out and "device cpu" in out

    code, out = nst_server(user_env, "stop")
    assert code == 0 and f"stopped (pid {pid})" in out
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert "serving on" in (tmp_path / "state" / "nst-server.log").read_text()

    code, out = nst_server(user_env, "stop")
    assert code == 0 and "not running" in out


def test_a_stale_pid_file_never_gets_an_unrelated_process_killed(user_env, tmp_path, start_server):
    """The pid file names a live `sleep` (as after a crash and pid reuse), then a real server of
    someone else's: `stop` signals neither and says so; `start` replaces the stale file."""
    bystander = subprocess.Popen(["sleep", "60"])
    other = start_server()
    try:
        (tmp_path / "state").mkdir()
        for pid, endpoint in ((bystander.pid, user_env["NST_ENDPOINT"]),
                              (bystander.pid, other.endpoint)):
            (tmp_path / "state" / "nst-server.pid").write_text(
                json.dumps({"pid": pid, "endpoint": endpoint}))
            code, out = nst_server(user_env, "stop")
            assert code == 0 and "not running" in out
            time.sleep(0.5)
            assert bystander.poll() is None and other.process.poll() is None
        (tmp_path / "state" / "nst-server.pid").write_text(
            json.dumps({"pid": bystander.pid, "endpoint": user_env["NST_ENDPOINT"]}))
        code, out = nst_server(user_env, "start")
        assert code == 0 and "started (pid" in out
        assert recorded_pid(tmp_path) != bystander.pid and bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_start_on_a_busy_port_fails_with_the_reason(user_env, tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        env = dict(user_env, NST_ENDPOINT=f"tcp://127.0.0.1:{squatter.getsockname()[1]}")
        code, out = nst_server(env, "start")
    assert code == 1 and "address already in use" in out and "started" not in out
    assert not (tmp_path / "state" / "nst-server.pid").exists()


def test_a_second_start_on_another_endpoint_is_refused(user_env):
    assert nst_server(user_env, "start")[0] == 0
    elsewhere = free_endpoint()
    code, out = nst_server(user_env, "start", "--endpoint", elsewhere)
    assert code == 1 and f"already running on {user_env['NST_ENDPOINT']}" in out
    assert not daemon.answers(elsewhere)


def test_port_in_use_is_a_clear_error(user_env, start_server):
    busy = start_server()
    env = dict(user_env, NST_ENDPOINT=busy.endpoint)
    code, out = nst_server(env, "run")
    assert code == 1 and "cannot listen on" in out and "address already in use" in out


def test_non_loopback_addresses_need_allow_remote_and_get_a_warning(user_env, tmp_path):
    port = free_endpoint().rpartition(":")[2]
    code, out = nst_server(user_env, "run", "--endpoint", f"tcp://0.0.0.0:{port}")
    assert code == 2 and "not a loopback address" in out and "--allow-remote" in out
    code, out = nst_server(user_env, "start", "--endpoint", f"tcp://*:{port}")
    assert code == 2 and "not a loopback address" in out

    with open(tmp_path / "out.txt", "w") as output:
        process = subprocess.Popen([SERVER, "run", "--endpoint", f"tcp://0.0.0.0:{port}",
                                    "--allow-remote"], stdout=output, stderr=output)
    try:
        daemon.wait_until_answering(process, f"tcp://127.0.0.1:{port}", timeout=60)
    finally:
        process.terminate()
        process.wait(15)
    said = (tmp_path / "out.txt").read_text()
    assert "WARNING: listening on tcp://0.0.0.0:" in said and "ssh -L 5555:127.0.0.1:5555" in said


def test_a_flood_of_bad_messages_logs_a_bounded_number_of_lines(tmp_path):
    import zmq
    endpoint, log = free_endpoint(), tmp_path / "server.log"
    process = daemon.spawn(["--endpoint", endpoint, "--log-file", str(log)], subprocess.DEVNULL)
    context = zmq.Context.instance()
    try:
        daemon.wait_until_answering(process, endpoint, timeout=60)
        start = time.monotonic()
        sockets = [context.socket(zmq.DEALER) for _ in range(4)]
        for sock in sockets:
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(endpoint)
        for i in range(2000):
            sockets[i % 4].send(b'{"v": 1, "type": ' + b"[" * 2000 + b"]" * 2000 + b"}")
        replies = 0
        while any(sock.poll(1000) for sock in sockets):  # until the answers stop coming
            for sock in sockets:
                while sock.poll(0):
                    sock.recv()
                    replies += 1
        seconds = time.monotonic() - start
        assert daemon.answers(endpoint)
    finally:
        for sock in sockets:
            sock.close()
        process.terminate()
        process.wait(15)
    lines = [line for line in log.read_text().splitlines() if "refused a request" in line]
    print(f"\n2000 bad messages, {replies} answers, in {seconds:.1f} s: {len(lines)} log lines, "
          f"{log.stat().st_size} bytes")
    assert 1 <= len(lines) <= seconds + 2
    assert "nests deeper" in lines[0] and "Traceback" not in log.read_text()


def test_dead_endpoint_is_reported_within_the_reply_timeout():
    from nst_contract import protocol
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "nst_server.cli.server", "status", "--endpoint",
                           free_endpoint()], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert time.monotonic() - start < protocol.REPLY_TIMEOUT + 3


def test_an_idle_server_frees_its_model_and_reloads_it_for_the_next_job(start_server, style_png):
    """The model loads in the background after the server answers, is freed after
    --unload-after seconds without a job (the process shrinks), and a job loads it again."""
    import psutil
    server = start_server("--unload-after", "2")
    client, process = server.client(), psutil.Process(server.process.pid)
    deadline = time.monotonic() + 60
    while not client.info()["model_loaded"]:
        assert time.monotonic() < deadline, "the model never loaded"
        time.sleep(0.1)
    loaded = process.memory_info().rss
    time.sleep(2 + 1.5)
    assert client.info()["model_loaded"] is False
    freed = loaded - process.memory_info().rss
    pixels = client.stylize(bytes(64 * 48 * 3), 64, 48, 3, style_png,
                            {"preset": "fast", "size": 64, "iterations": 2})
    assert len(pixels) == 64 * 48 * 3 and client.info()["model_loaded"]
    print(f"\nmodel freed: RSS {loaded / 2**20:.0f} MiB -> {(loaded - freed) / 2**20:.0f} MiB")
    assert freed > 50 * 2**20  # VGG19 up to relu5_1 in float32: ~80 MB of weights


def test_unusable_weights_stop_the_server_with_the_reason(user_env, tmp_path):
    bad = tmp_path / "weights.pth"
    bad.write_bytes(b"not a state dict")
    code, out = nst_server(user_env, "run", "--weights", str(bad))
    assert code == 2 and f"weights file {bad}: not a loadable state dict" in out
    code, out = nst_server(user_env, "start", "--weights", str(bad))
    assert code == 1 and "not a loadable state dict" in out and "started" not in out


def test_help_says_what_the_server_is_in_whole_sentences(user_env):
    code, out = nst_server(user_env, "--help")
    description = " ".join(out.split("\n\n")[1].split())
    assert code == 0 and description.startswith("nst-server run | start | stop | status: the ")
    assert description.endswith("(with its log in the user's state folder)."), description
