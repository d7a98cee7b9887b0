"""Starting the server from the plug-in, per system: the one place for how a server process is
started without a console window on Windows, and for what to say inside a Flatpak sandbox, which
cannot start programs on the host. Standard library only (GIMP's Python and the server use it)."""
import os

from . import protocol

# Windows process-creation flags (subprocess defines them only on Windows).
DETACHED_PROCESS = 0x00000008
CREATE_NEW_PROCESS_GROUP = 0x00000200
CREATE_NO_WINDOW = 0x08000000
FLATPAK_MARKER = "/.flatpak-info"  # present inside every Flatpak sandbox
START_TIMEOUT = 120.0  # s `nst-server start` waits for a new server's model (torch import + load)


def in_flatpak(marker: str = FLATPAK_MARKER) -> bool:
    return os.path.exists(marker)


def command_options(platform: str) -> dict:
    """subprocess options for a console command run to its end (`nst-server start`): on
    Windows, no console window flashes up."""
    return {"creationflags": CREATE_NO_WINDOW} if platform == "win32" else {}


def background_options(platform: str) -> dict:
    """subprocess options for a server that outlives whoever started it: no console at all and
    its own process group on Windows, its own session elsewhere."""
    if platform == "win32":
        return {"creationflags": DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def how_to_start(endpoint: str, command: list[str], flatpak: bool) -> str:
    """What to tell a user whose server is not running at `endpoint`: the command on a line of its
    own, as short as it can be (GIMP's message box wraps long lines, even inside an address)."""
    words = [*(command or ["nst-server"]), "start"]
    if endpoint != protocol.DEFAULT_ENDPOINT:
        words += ["--endpoint", endpoint]
    start = f"\n\n{' '.join(words)}\n\n"
    if flatpak:
        return ("The Neural Style server is not running, and GIMP (a Flatpak) cannot start it: "
                "its sandbox cannot run programs on your computer. Open a terminal (outside GIMP) "
                f"and run:{start}then run the filter again.")
    return (f"The Neural Style server is not running at {endpoint}. Start it in a terminal:{start}"
            "then run the filter again.")
