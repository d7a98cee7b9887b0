"""Running nst-server as a child process: spawning it, waiting until it answers, and the
background server's pid and log files (start/stop/status)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from neural_style.nst_client import Client, NSTError

from .user_dirs import state_dir

START_TIMEOUT = 120.0  # s: torch import + model load, on a slow first start


class StartError(RuntimeError):
    """The server process exited, or did not answer in time; the message says which."""


def pid_file() -> Path:
    return state_dir() / "nst-server.pid"


def log_file() -> Path:
    return state_dir() / "nst-server.log"


def answers(endpoint: str, timeout: float = 1.0) -> bool:
    """Whether an nst-server answers a ping at `endpoint` within `timeout` s."""
    try:
        Client(endpoint, timeout=timeout).ping()
        return True
    except NSTError:
        return False


def spawn(run_args: list[str], output: IO | int, detach: bool = False) -> subprocess.Popen:
    """`nst-server run RUN_ARGS` as a child process writing to `output`; `detach`: in a session
    (or, on Windows, a process group) of its own, so that it outlives its parent's terminal."""
    options = _detached() if detach else {}
    return subprocess.Popen([sys.executable, "-m", "nst_server.server_cli", "run", *run_args],
                            stdin=subprocess.DEVNULL, stdout=output, stderr=output, **options)


def _detached() -> dict:
    if sys.platform == "win32":
        return {"creationflags": subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def wait_until_answering(process: subprocess.Popen, endpoint: str,
                         timeout: float = START_TIMEOUT) -> None:
    """Return once the server `process` answers at `endpoint`; StartError if it exits first or
    stays silent for `timeout` s (then it is left running: the caller decides)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartError(f"nst-server exited at start (status {process.returncode})")
        if answers(endpoint, timeout=0.5):
            return
        time.sleep(0.2)
    raise StartError(f"nst-server did not answer within {timeout:g} s")


def running_pid() -> int | None:
    """The pid of the background server if its pid file names a live process, else None."""
    try:
        pid = int(pid_file().read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def start(run_args: list[str], endpoint: str) -> tuple[int, bool]:
    """Start `nst-server run RUN_ARGS` in the background and wait until it answers at `endpoint`.
    Returns (pid, whether it was started now)."""
    pid = running_pid()
    if pid is not None:
        return pid, False
    state_dir().mkdir(parents=True, exist_ok=True)
    with open(log_file(), "ab") as log:
        process = spawn(run_args, log, detach=True)
    pid_file().write_text(f"{process.pid}\n")
    try:
        wait_until_answering(process, endpoint)
    except StartError as exc:
        if process.poll() is None:
            stop()
        pid_file().unlink(missing_ok=True)
        raise StartError(f"{exc}; see {log_file()}") from None
    return process.pid, True


def stop(timeout: float = 15) -> int | None:
    """Stop the background server; return its pid, or None if none was running."""
    pid = running_pid()
    if pid is None:
        pid_file().unlink(missing_ok=True)
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    pid_file().unlink(missing_ok=True)
    return pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child of ours counts as gone
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True
