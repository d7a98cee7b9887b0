"""Starting the server per system (nst_contract.launch): no console window on Windows, a session of its
own elsewhere, and plain instructions inside a Flatpak sandbox."""
import os
import subprocess

from nst_contract import launch as nst_launch
from nst_server.service import daemon

# Windows' documented process-creation flag values (subprocess has them only on Windows, so the
# test compares with the documentation's numbers, which hold on every system).
WINDOWS = {"DETACHED_PROCESS": 0x8, "CREATE_NEW_PROCESS_GROUP": 0x200, "CREATE_NO_WINDOW": 0x8000000}


def test_on_windows_no_console_window_appears():
    start = nst_launch.command_options("win32")  # `nst-server start`, run by the plug-in
    assert start == {"creationflags": WINDOWS["CREATE_NO_WINDOW"]}
    server = nst_launch.background_options("win32")  # the server it leaves running
    assert server == {"creationflags": WINDOWS["DETACHED_PROCESS"] | WINDOWS["CREATE_NEW_PROCESS_GROUP"]}


def test_elsewhere_the_background_server_gets_a_session_of_its_own():
    assert nst_launch.command_options("linux") == {}
    process = daemon.spawn(["--help"], subprocess.DEVNULL, detach=True)
    try:
        assert os.getsid(process.pid) == process.pid != os.getsid(0)
    finally:
        process.wait(60)


def test_inside_a_flatpak_the_user_is_told_to_start_the_server_on_the_host(tmp_path):
    marker = tmp_path / ".flatpak-info"
    assert not nst_launch.in_flatpak(str(marker))
    marker.write_text("[Application]\nname=org.gimp.GIMP\n")
    assert nst_launch.in_flatpak(str(marker))
    command = ["/home/me/.local/share/neural-style-gimp/venv/bin/nst-server"]
    text = nst_launch.how_to_start("tcp://127.0.0.1:5555", command, flatpak=True)
    assert "Flatpak" in text and "terminal (outside GIMP)" in text
    assert f"\n\n{command[0]} start\n\n" in text  # the default address needs no option


def test_the_command_to_start_the_server_stands_on_a_line_of_its_own():
    """GIMP's message box wraps long lines, even inside an address: the command is alone on its
    line, with --endpoint only where the address is not the default."""
    command = ["/home/me/.local/share/neural-style-gimp/venv/bin/nst-server"]
    text = nst_launch.how_to_start("tcp://127.0.0.1:5555", command, flatpak=False)
    assert "not running at tcp://127.0.0.1:5555" in text
    assert f"\n\n{command[0]} start\n\n" in text
    other = nst_launch.how_to_start("tcp://127.0.0.1:6000", command, flatpak=False)
    assert f"\n\n{command[0]} start --endpoint tcp://127.0.0.1:6000\n\n" in other
