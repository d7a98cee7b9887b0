"""Running nst-server in the background: state folder, pid file, log file, start/stop/status."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE_ENV = "NST_STATE_DIR"
START_TIMEOUT = 120  # s: torch import + model load, on a slow first start


def state_dir():
    """Where the pid and log files live: $NST_STATE_DIR, else the platform's per-user state folder."""
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV])
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "neural-style-gimp"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "neural-style-gimp"
    return Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "neural-style-gimp"


def pid_file():
    return state_dir() / "nst-server.pid"


def log_file():
    return state_dir() / "nst-server.log"


def running_pid():
    """The pid of the background server if its pid file names a live process, else None."""
    try:
        pid = int(pid_file().read_text().split()[0])
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError, IndexError):
        return None


def start(run_args, ping):
    """Start `nst-server run RUN_ARGS` detached; wait until `ping()` is true. Returns (pid, new)."""
    pid = running_pid()
    if pid is not None:
        return pid, False
    state_dir().mkdir(parents=True, exist_ok=True)
    with open(log_file(), "ab") as log:
        options = ({"creationflags": subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP}
                   if sys.platform == "win32" else {"start_new_session": True})
        process = subprocess.Popen([sys.executable, "-m", "nst_server.server_cli", "run", *run_args],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log, **options)
    pid_file().write_text(f"{process.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pid_file().unlink(missing_ok=True)
            raise RuntimeError(f"nst-server exited at start (status {process.returncode}); "
                               f"see {log_file()}")
        if ping():
            return process.pid, True
        time.sleep(0.3)
    stop()
    raise RuntimeError(f"nst-server did not answer within {START_TIMEOUT} s; see {log_file()}")


def stop(timeout=15):
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


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child of ours counts as gone
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True
