"""The engine: VGG19 and the optimization that paints a picture (no sockets, no GIMP).

Its public surface is what this module exports; the service and the CLIs import nothing else.
All but the errors (torch is behind them) are imported on first use, so `nst-stylize --help` and the
request checks stay fast.
"""
from typing import TYPE_CHECKING, Any

from .errors import InputError, Stopped

if TYPE_CHECKING:
    from .images import MIN_SIDE, decode_image, split_alpha
    from .regions import Regions
    from .stylizer import Estimate, Progress, Stylizer

__all__ = ["Estimate", "InputError", "MIN_SIDE", "Progress", "Regions", "Stopped", "Stylizer",
           "decode_image", "split_alpha"]
_LAZY = {"Estimate": "stylizer", "Progress": "stylizer", "Stylizer": "stylizer", "Regions": "regions",
         "MIN_SIDE": "images", "decode_image": "images", "split_alpha": "images"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module
    return getattr(import_module(f".{_LAZY[name]}", __name__), name)
