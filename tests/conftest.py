"""Shared fixtures: one engine (VGG19 loaded once), small real images, real server processes."""
import io
import os
import socket
import subprocess
import sys

import pytest
from PIL import Image

from nst_server import daemon
from nst_server.samples import painting, photo


@pytest.fixture(scope="session")
def stylizer():
    from nst_server.engine import Stylizer
    return Stylizer()


@pytest.fixture(scope="session")
def evaluator(stylizer):
    from nst_server.evaluate import Evaluator
    return Evaluator(stylizer, size=96)


@pytest.fixture(scope="session")
def content():
    """A real photo (scikit-image's astronaut), small."""
    return photo("astronaut").resize((96, 80), Image.LANCZOS)


@pytest.fixture(scope="session")
def style():
    return painting("swirls", size=128)


# -- a real nst-server process on a free loopback port -------------------------------------------

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


@pytest.fixture
def start_server():
    """Factory: start_server(*nst-server run options) -> ServerProcess, stopped after the test."""
    started = []

    def start(*options, **kwargs):
        started.append(ServerProcess(*options, **kwargs))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server():
    """One server shared by a test module (the model loads once)."""
    process = ServerProcess("--job-timeout", "3")
    yield process
    process.stop()


@pytest.fixture(scope="session")
def style_png(style):
    buffer = io.BytesIO()
    style.save(buffer, "PNG")
    return buffer.getvalue()
