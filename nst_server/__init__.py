"""Neural Style for GIMP: the server side (VGG19, the stylization engine, the ZeroMQ server)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neural-style-gimp")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
