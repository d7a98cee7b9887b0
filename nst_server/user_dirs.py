"""The per-user folders of this product on each platform: the one place for these facts.

Standard library only: install.py (run with any Python 3.10+, before the server exists) imports it
too.
"""
import os
import sys
from pathlib import Path

APP = "neural-style-gimp"
STATE_ENV = "NST_STATE_DIR"  # overrides state_dir(), e.g. for tests and second servers


def _platform_dir(xdg_variable: str, xdg_default: str) -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / APP
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP
    return Path(os.environ.get(xdg_variable) or Path.home() / xdg_default) / APP


def data_dir() -> Path:
    """Installed things: the server's virtualenv and the installer's manifest."""
    return _platform_dir("XDG_DATA_HOME", ".local/share")


def cache_dir() -> Path:
    """What the server measured once and remembers (e.g. the CPU's convolution dtype)."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / APP
    return _platform_dir("XDG_CACHE_HOME", ".cache")


def state_dir() -> Path:
    """The background server's pid and log files: $NST_STATE_DIR, else the platform's."""
    if os.environ.get(STATE_ENV):
        return Path(os.environ[STATE_ENV])
    return _platform_dir("XDG_STATE_HOME", ".local/state")
