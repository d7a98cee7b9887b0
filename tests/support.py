"""What several test modules share: a real nst-server process on a free loopback port, small
layers and settings for the server's tests, a fake engine for the service's own, the engine
tests' small blocks."""
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from nst_server.engine import Estimate, InputError, Progress, Stopped
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
        from nst_contract.client import Client
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


# -- a fake engine: the service's tests without VGG -------------------------------------------------

@dataclass(frozen=True)
class FakeProfile:
    dtype: str = "float32"
    working_size: int = 64


class FakeEngine:
    """service.engine_protocol.Engine without a model: `stylize` inverts the photo over
    `iterations` steps of `step_seconds`, reporting each, honouring stop and finish early;
    `fail_with` makes every job raise it, `load_error` the model's load."""

    device, weights, profile = "fake", "none", FakeProfile()

    def __init__(self, step_seconds: float = 0.0, fail_with: Exception | None = None,
                 load_error: str | None = None):
        self.step_seconds, self.fail_with, self.load_error = step_seconds, fail_with, load_error
        self.loaded = False
        self.jobs: list[dict] = []  # the settings of every job run

    def load(self) -> None:
        if self.load_error:
            raise InputError(self.load_error)
        self.loaded = True

    def unload(self) -> None:
        self.loaded = False

    def style_cache_info(self) -> dict[str, int]:
        return {"hits": 0, "misses": 0, "size": 0}

    def estimate(self, settings, size) -> Estimate:
        return Estimate(size[0] * size[1] * settings.get("iterations", 10), 1, size)

    def stylize(self, content, style, settings, *, on_progress, should_stop, should_finish,
                style_weights, regions):
        self.jobs.append(dict(settings))
        if self.fail_with is not None:
            raise self.fail_with
        image = Image.fromarray(np.asarray(content)[..., :3])
        inverted = Image.fromarray(255 - np.asarray(image))
        total = settings.get("iterations", 10)
        start = time.monotonic()
        for done in range(1, total + 1):
            if should_stop():
                raise Stopped("stopped on request")
            if should_finish():
                break
            time.sleep(self.step_seconds)
            on_progress(Progress(done, total, time.monotonic() - start, done / total, None,
                                 {"total": float(total - done)}, lambda: inverted))
        if np.asarray(content).shape[-1] == 4:
            inverted.putalpha(Image.fromarray(np.asarray(content)[..., 3]))
        return inverted
