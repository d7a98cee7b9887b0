"""What several test modules share: a real nst-server process on a free loopback port, small
layers and settings for the server's tests, the engine tests' small blocks."""
import os
import socket
import subprocess
import sys

import numpy as np
from PIL import Image

from nst_server.engine.objective import HALO
from nst_server.engine.samples import photo
from nst_server.service import daemon

# blocks with 128-px cores: (128 + 2 * HALO)^2 padded pixels
SMALL_BLOCKS = (128 + 2 * HALO) ** 2

SERVER = os.path.join(os.path.dirname(sys.executable), "nst-server")


def free_endpoint():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


class ServerProcess:
    """`nst-server run` in a subprocess, stopped at the end of the test that made it."""

    def __init__(self, *options, log_path=None, endpoint=None):
        self.endpoint = endpoint or free_endpoint()
        self.log = open(log_path or os.devnull, "w")
        self.process = daemon.spawn(["--endpoint", self.endpoint, *options], self.log)
        try:
            daemon.wait_until_answering(self.process, self.endpoint, timeout=60)
        except daemon.StartError:
            self.stop()
            raise

    def client(self, timeout=5.0):
        from neural_style.nst_client import Client
        return Client(self.endpoint, timeout)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()



# -- jobs for the server's tests -------------------------------------------------------------------

QUICK = {"preset": "fast", "size": 64, "iterations": 4}
LONG = {"preset": "fast", "size": 64, "iterations": 10000}


def layer(name="astronaut", size=(72, 64), alpha=True):
    """A small RGBA (or RGB) layer made from a real photo; alpha is a ramp with a hole."""
    image = photo(name).resize(size, Image.LANCZOS)
    if not alpha:
        return image
    ramp = (np.arange(size[0] * size[1]) % 256).astype(np.uint8).reshape(size[1], size[0])
    ramp[:10, :10] = 0
    image.putalpha(Image.fromarray(ramp))
    return image


def stylize(client, image, style_png, settings=QUICK, **kwargs):
    channels = len(image.getbands())
    pixels = client.stylize(image.tobytes(), image.width, image.height, channels, style_png,
                            settings, **kwargs)
    return Image.frombytes(image.mode, image.size, pixels)
