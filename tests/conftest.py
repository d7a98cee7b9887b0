"""Shared fixtures: one engine (VGG19 loaded once) and small real images for the whole run."""
import pytest
from PIL import Image

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
