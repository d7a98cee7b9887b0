"""Regions (Gatys et al. 2017 spatial control): each part of the picture matched against its own
painting by guided Grams, a part without one kept, exact over blocks like the plain term; from
the engine, over the wire and from the CLI."""
import io
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from nst_contract import protocol
from nst_contract.client import ServerError
from nst_server.engine.errors import InputError
from nst_server.engine.objective import GuidedStyle, Objective, features_by_block, grams_by_block, split
from nst_server.engine.presets import resolve
from nst_server.engine.regions import Regions, guides, masks
from nst_server.engine.samples import photo
from nst_server.engine.levels import weights_of
from support import SMALL_BLOCKS

QUICK = {"preset": "fast", "size": 96}
CLI = os.path.join(os.path.dirname(sys.executable), "nst-stylize")


def textured(colour, seed, size=96):
    """A painting of one colour: strokes of its shades (noise blurred along one direction)."""
    rng = np.random.default_rng(seed)
    shade = rng.random((size, size // 4)).repeat(4, axis=1)[..., None]
    pixels = np.asarray(colour, float) * (0.55 + 0.45 * shade)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def picture():
    return photo("astronaut").resize((96, 96), Image.LANCZOS)


def halves(paintings):
    """The left half region 0, the right half region 1."""
    labels = np.zeros((96, 96), np.uint8)
    labels[:, 48:] = 1
    return Regions(labels, paintings)


def mean_rgb(image, columns):
    return np.asarray(image, float)[:, columns].reshape(-1, 3).mean(0)


def test_each_region_takes_its_own_painting(stylizer, picture):
    red, blue = textured((230, 40, 30), 0), textured((30, 60, 230), 1)
    result = stylizer.stylize(picture, [red, blue], QUICK, regions=halves((0, 1)))
    left, right = mean_rgb(result, slice(0, 40)), mean_rgb(result, slice(56, 96))
    assert left[0] > left[2] + 40 and right[2] > right[0] + 40, (left, right)


def test_a_region_without_a_painting_stays_near_the_photo(stylizer, picture):
    red = textured((230, 40, 30), 0)
    result = np.asarray(stylizer.stylize(picture, [red], QUICK, regions=halves((0, None))), float)
    own = np.asarray(picture, float)
    kept = np.abs(result[:, 56:] - own[:, 56:]).mean()
    painted = np.abs(result[:, :40] - own[:, :40]).mean()
    assert kept < 0.4 * painted, (kept, painted)


def test_guided_grams_are_exact_over_blocks(stylizer):
    """The guided term's loss and gradient over 12 blocks equal the one-pass ones (float32)."""
    vgg = stylizer.models.variant(torch.float32)
    run = resolve({"preset": "balanced"}, 512)
    generator = torch.Generator().manual_seed(3)
    content = torch.randn(1, 3, 300, 400, generator=generator).to(stylizer.device)
    x0 = content + 0.5 * torch.randn(content.shape, generator=generator).to(stylizer.device)
    paintings = [torch.randn(1, 3, 100, 120, generator=generator).to(stylizer.device)
                 for _ in range(2)]
    labels = np.zeros((300, 400), np.uint8)
    labels[100:, 150:] = 1
    layers = list(run.preset.style_layers)
    regions = [GuidedStyle(grams_by_block(vgg, paintings[index], layers, split(100, 120, 10**9))[0],
                           guide)
               for index, guide in guides(Regions(labels, (0, 1)), (400, 300), layers,
                                          stylizer.device)]
    results = []
    for max_pixels in (10**9, SMALL_BLOCKS):
        blocks = split(300, 400, max_pixels)
        features = features_by_block(vgg, content, list(run.preset.content_layers), blocks)
        x = x0.clone().requires_grad_(True)
        losses = Objective(vgg, weights_of(run), features, {}, blocks, regions=regions).evaluate(x)
        results.append((len(blocks), losses, x.grad))
    (one, whole, grad), (many, tiled, tiled_grad) = results
    assert one == 1 and many == 12 and whole["style"] > 0
    for term in ("content", "style", "total"):
        assert tiled[term] == pytest.approx(whole[term], rel=1e-5)
    assert float((tiled_grad - grad).norm() / grad.norm()) < 2e-6


def test_a_guide_of_ones_is_the_plain_gram_term(stylizer):
    vgg = stylizer.models.variant(torch.float32)
    run = resolve({"preset": "balanced"}, 512)
    generator = torch.Generator().manual_seed(4)
    content = torch.randn(1, 3, 128, 160, generator=generator)
    painting = torch.randn(1, 3, 96, 96, generator=generator)
    layers, blocks = list(run.preset.style_layers), split(128, 160, 10**9)
    grams = grams_by_block(vgg, painting, layers, blocks)[0]
    ones = guides(Regions(np.zeros((128, 160), np.uint8), (0,)), (160, 128), layers,
                  stylizer.device)[0][1]
    features = features_by_block(vgg, content, list(run.preset.content_layers), blocks)
    plain = Objective(vgg, weights_of(run), features, grams, blocks)
    guided = Objective(vgg, weights_of(run), features, {}, blocks, regions=[GuidedStyle(grams, ones)])
    plain, guided = (o.evaluate(content.clone().requires_grad_(True)) for o in (plain, guided))
    assert guided["style"] == pytest.approx(plain["style"], rel=1e-5)


def test_the_masks_are_soft_at_the_boundary_and_sum_to_one():
    soft = masks(halves((0, 1)), (96, 96))
    assert np.allclose(soft.sum(0), 1, atol=1e-5)
    assert soft[0, 48, 2] > 0.99 and soft[1, 48, 93] > 0.99
    assert 0.2 < soft[0, 48, 48] < 0.8  # the boundary blends


@pytest.mark.parametrize("regions, message", [
    (Regions(np.ones((96, 96), np.uint8), (0, 1)), "region 1 covers no part of the picture"),
    (Regions(np.zeros((96, 96), np.uint8), (None,)), "no region has a painting"),
    (Regions(np.full((96, 96), 3, np.uint8), (0, 1)), "label 3 has no region"),
    (Regions(np.zeros((90, 96), np.uint8), (0,)), "the label map must be 96x96"),
    (Regions(np.zeros((96, 96), np.uint8), (5,)), "painting 6 is not among the 2 sent"),
])
def test_bad_regions_are_refused_clearly(stylizer, picture, regions, message):
    red, blue = textured((230, 40, 30), 0), textured((30, 60, 230), 1)
    with pytest.raises(InputError, match=message):
        stylizer.stylize(picture, [red, blue], QUICK, regions=regions)


# -- from the CLI and over the wire ----------------------------------------------------------------

def png(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_the_server_paints_regions_sent_with_a_label_map(server, picture):
    """`regions` + a label-map frame: the left half red, the right half kept."""
    labels = halves((0, None)).labels
    pixels = server.client(timeout=30).stylize(
        picture.tobytes(), 96, 96, 3, [png(textured((230, 40, 30), 0))], QUICK,
        regions=[0, None], labels=labels.tobytes())
    result = np.frombuffer(pixels, np.uint8).reshape(96, 96, 3).astype(float)
    own = np.asarray(picture, float)
    left = result[:, :40].reshape(-1, 3).mean(0)
    assert left[0] > left[2] + 40, left
    assert np.abs(result[:, 56:] - own[:, 56:]).mean() < 0.4 * np.abs(result[:, :40] - own[:, :40]).mean()


@pytest.mark.parametrize("regions, labels, code, message", [
    ([0, 7], bytes(96 * 96), protocol.BAD_FIELD, "field 'regions' must list 1 to 8"),
    ([0], bytes(10), protocol.BAD_FRAMES, "the label map has 10 bytes; the layer needs 9216"),
    ([None, 0], bytes(96 * 96), protocol.BAD_IMAGE, "region 2 covers no part of the picture"),
])
def test_bad_regions_over_the_wire_get_a_clear_error(server, picture, regions, labels, code, message):
    with pytest.raises(ServerError) as raised:
        server.client(timeout=30).stylize(picture.tobytes(), 96, 96, 3,
                                          [png(textured((230, 40, 30), 0))], QUICK,
                                          regions=regions, labels=labels)
    assert raised.value.code == code and message in raised.value.message, raised.value.message
    assert server.client().ping() < 1


def test_the_cli_paints_each_mask_in_its_painting(tmp_path, picture):
    """nst-stylize PHOTO --region left.png=red.png --region right.png=blue.png: no STYLE for
    the rest (here the masks cover it all)."""
    picture.save(tmp_path / "photo.png")
    textured((230, 40, 30), 0).save(tmp_path / "red.png")
    textured((30, 60, 230), 1).save(tmp_path / "blue.png")
    left = np.zeros((96, 96), np.uint8)
    left[:, :48] = 255
    Image.fromarray(left).save(tmp_path / "left.png")
    Image.fromarray(255 - left).save(tmp_path / "right.png")
    done = subprocess.run([CLI, str(tmp_path / "photo.png"), "--region",
                           f"{tmp_path / 'left.png'}={tmp_path / 'red.png'}", "--region",
                           f"{tmp_path / 'right.png'}={tmp_path / 'blue.png'}", "-o",
                           str(tmp_path / "out.png"), "--preset", "fast", "--size", "96"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = Image.open(tmp_path / "out.png").convert("RGB")
    red, blue = mean_rgb(result, slice(0, 40)), mean_rgb(result, slice(56, 96))
    assert red[0] > red[2] + 40 and blue[2] > blue[0] + 40, (red, blue)
