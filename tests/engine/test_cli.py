"""`nst-stylize` as a user runs it: the installed console script in a subprocess."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

CLI = os.path.join(os.path.dirname(sys.executable), "nst-stylize")
QUICK = ["--size", "64", "--iterations", "3", "--preset", "fast"]


def run(*args):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def images(tmp_path_factory, content, style):
    folder = tmp_path_factory.mktemp("cli")
    content_path, style_path = folder / "photo.png", folder / "painting.jpg"
    rgba = content.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(content_path)
    style.save(style_path)
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_stylizes_a_file_keeping_size_and_alpha(images):
    out = images / "out.png"
    done = run(str(images / "photo.png"), str(images / "painting.jpg"), "-o", str(out), *QUICK)
    assert done.returncode == 0, done.stderr
    result = Image.open(out)
    assert result.size == Image.open(images / "photo.png").size and result.mode == "RGBA"
    assert result.getchannel("A").getextrema() == (128, 128)
    assert "100%" in done.stderr and "33%" in done.stderr  # the bar counted the work to the end


@pytest.mark.parametrize("args, message", [
    (["missing.png", "painting.jpg"], "missing.png: no such file"),
    (["notes.txt", "painting.jpg"], "notes.txt: not an image file"),
    (["photo.png", "painting.jpg", "--preset", "turbo"],
     "--preset: must be one of fast, balanced, best, painterly, paper"),
    (["photo.png", "painting.jpg", "--strength", "-2"], "must be between 0.0 and 100.0"),
    (["photo.png", "painting.jpg", "--style-scale", "9"], "must be between 0.25 and 4.0"),
    (["photo.png", "painting.jpg", "painting.jpg", "--style-weights", "1,x"],
     "must be numbers separated by commas"),
    (["photo.png", "painting.jpg", "painting.jpg", "--style-weights", "1"],
     "--style-weights must be one number per style image (2)"),
    (["photo.png", "painting.jpg", "--size", "huge"], "must be a number"),
    (["photo.png", "painting.jpg", "--init", "zeros"], "must be one of content, noise"),
])
def test_bad_input_is_one_line_and_exit_2(images, args, message):
    args = [str(images / a) if a.endswith((".png", ".jpg", ".txt")) else a for a in args]
    done = run(*args, "-o", str(images / "never.png"), *QUICK)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (images / "never.png").exists()


def test_blended_styles_weighted_one_and_zero_equal_the_single_style(images):
    from nst_server.engine.samples import painting
    painting("embers", 128).save(images / "other.png")
    outs = [images / "single.png", images / "blend.png"]
    for out, styles in zip(outs, ([images / "painting.jpg"],
                                  [images / "painting.jpg", images / "other.png"])):
        done = run(str(images / "photo.png"), *map(str, styles), "-o", str(out), *QUICK,
                   "--style-weights", ",".join(["1", "0"][:len(styles)]))
        assert done.returncode == 0, done.stderr
    assert np.array_equal(np.asarray(Image.open(outs[0])), np.asarray(Image.open(outs[1])))


def test_unknown_output_format_is_refused_before_work(images):
    done = run(str(images / "photo.png"), str(images / "painting.jpg"), "-o", str(images / "x.zzz"))
    assert done.returncode == 2 and "unknown image format" in done.stderr


def test_demo_runs_offline(tmp_path):
    out = tmp_path / "demo.png"
    done = run("--demo", "-o", str(out), *QUICK)
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (451, 300)  # scikit-image's chelsea photo, full size


def test_server_option_runs_the_job_on_a_server(images, server):
    out = images / "remote.png"
    done = run(str(images / "photo.png"), str(images / "painting.jpg"), "-o", str(out),
               "--server", server.endpoint, *QUICK)
    assert done.returncode == 0, done.stderr
    result = Image.open(out)
    assert result.mode == "RGBA" and result.getchannel("A").getextrema() == (128, 128)
    assert "100%" in done.stderr


def test_server_option_with_no_server_says_how_to_start_one_within_the_reply_timeout(images):
    """The one reply timeout (5 s) bounds the wait for an absent server (the rest: imports)."""
    from support import free_endpoint
    from nst_contract import protocol
    start = time.monotonic()
    done = run(str(images / "photo.png"), str(images / "painting.jpg"), "-o",
               str(images / "never.png"), "--server", free_endpoint(), *QUICK)
    took = time.monotonic() - start
    assert done.returncode == 1 and "nst-server start" in done.stderr
    assert took < protocol.REPLY_TIMEOUT + 3, f"{took:.1f} s"
