"""Running nst-server as a child process: spawning it, waiting until it answers, and the
background server's pid and log files (start/stop/status)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from nst_contract.client import Client, NSTError
from nst_contract.launch import START_TIMEOUT, background_options

from ..user_dirs import state_dir



class StartError(RuntimeError):
    """The server process exited, or did not answer in time; the message says which."""


def pid_file() -> Path:
    """{"pid", "endpoint"} of the background server; trusted only once that server confirms it."""
    return state_dir() / "nst-server.pid"


def log_file() -> Path:
    return state_dir() / "nst-server.log"


def output_file() -> Path:
    """What the background server printed (start-up errors, crashes); new at every start."""
    return state_dir() / "nst-server.out"


def answers(endpoint: str, timeout: float = 1.0, pid: int | None = None,
            ready: bool = False) -> bool:
    """Whether an nst-server answers at `endpoint` within `timeout` s (and, given `pid`, is that
    process; with `ready`, has its model loaded)."""
    try:
        info = Client(endpoint, timeout=timeout).info()
    except NSTError:
        return False
    return (pid is None or info.get("pid") == pid) and (not ready or bool(info.get("model_loaded")))


def spawn(run_args: list[str], output: IO | int, detach: bool = False) -> subprocess.Popen:
    """`nst-server run RUN_ARGS` as a child process writing to `output`; `detach`: in a session
    (or, on Windows, a process group) of its own, so that it outlives its parent's terminal."""
    options = background_options(sys.platform) if detach else {}
    return subprocess.Popen([sys.executable, "-m", "nst_server.cli.server", "run", *run_args],
                            stdin=subprocess.DEVNULL, stdout=output, stderr=output, **options)


def wait_until_answering(process: subprocess.Popen, endpoint: str,
                         timeout: float = START_TIMEOUT) -> None:
    """Return once the server `process` itself answers at `endpoint` with its model loaded (so a
    model that cannot load is a failed start); StartError if it exits first or is not ready
    within `timeout` s (then it is left running: the caller decides)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartError(f"nst-server exited at start (status {process.returncode})")
        if answers(endpoint, timeout=0.5, pid=process.pid, ready=True):
            return
        time.sleep(0.2)
    raise StartError(f"nst-server did not answer within {timeout:g} s")


def running_server() -> tuple[int, str] | None:
    """(pid, endpoint) of the background server, if the pid file names a server that answers at
    its endpoint with that pid; a pid file naming anything else is stale and means None."""
    try:
        recorded = json.loads(pid_file().read_text())
        pid, endpoint = int(recorded["pid"]), str(recorded["endpoint"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (pid, endpoint) if answers(endpoint, pid=pid) else None


def start(run_args: list[str], endpoint: str) -> tuple[int, bool]:
    """Start `nst-server run RUN_ARGS` in the background and wait until it answers at `endpoint`.
    Returns (pid, whether it was started now). One background server per user: StartError if it
    runs on another endpoint, or if the new one does not come up (with its reason)."""
    current = running_server()
    if current is not None:
        pid, where = current
        if where != endpoint:
            raise StartError(f"nst-server is already running on {where} (pid {pid}); stop it "
                             "first with 'nst-server stop'")
        return pid, False
    state_dir().mkdir(parents=True, exist_ok=True)
    with open(output_file(), "wb") as output:
        process = spawn(run_args, output, detach=True)
    pid_file().write_text(json.dumps({"pid": process.pid, "endpoint": endpoint}) + "\n")
    try:
        wait_until_answering(process, endpoint)
    except StartError as exc:
        if process.poll() is None:
            process.kill()
        pid_file().unlink(missing_ok=True)
        raise StartError(_reason(output_file()) or f"{exc}; see {log_file()}") from None
    return process.pid, True


def _reason(output: Path) -> str | None:
    """The error line the failed server printed, without its program-name prefix."""
    try:
        lines = output.read_text(errors="replace").splitlines()
    except OSError:
        return None
    errors = [line.split("nst-server: error: ", 1)[1] for line in lines
              if line.startswith("nst-server: error: ")]
    return errors[-1] if errors else None


def stop(timeout: float = 15) -> int | None:
    """Stop the background server; return its pid, or None if none was running (a stale pid file
    is removed, and nothing is signalled)."""
    current = running_server()
    pid_file().unlink(missing_ok=True)
    if current is None:
        return None
    pid = current[0]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
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
