"""Shared fixtures: one engine (VGG19 loaded once), small real images, real server processes."""
import io

import pytest
from PIL import Image
from support import ServerProcess

from nst_server.engine.samples import painting, photo


@pytest.fixture(scope="session")
def stylizer():
    from nst_server.engine import Stylizer
    return Stylizer()


@pytest.fixture(scope="session")
def evaluator(stylizer):
    from nst_server.engine.evaluate import Evaluator
    return Evaluator(stylizer, size=96)


@pytest.fixture(scope="session")
def content():
    """A real photo (scikit-image's astronaut), small."""
    return photo("astronaut").resize((96, 80), Image.LANCZOS)


@pytest.fixture(scope="session")
def style():
    return painting("swirls", size=128)


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
