"""The blockwise objective and the plans: exact global loss in blocks, bounded memory, the
schedule per device, and full resolution end to end — on the real VGG19, at small sizes."""
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from nst_server.engine import objective as objective_module
from nst_server.engine.device import BLOCK_BYTES_PER_PIXEL, memory_plan
from nst_server.engine.levels import weights_of
from nst_server.engine.losses import gram_sum, style_loss, tv_loss_with_grad
from nst_server.engine.objective import (ALIGN, HALO, Anchor, Objective, features_by_block, grams_by_block,
                                  split)
from nst_server.engine.plans import plan
from nst_server.engine.presets import PRESETS, resolve
from support import SMALL_BLOCKS



@pytest.fixture
def true_float32():
    """True float32 on CUDA too: its default TF32 convolutions (10-bit mantissa) differ by ~1 %
    between block shapes. (monkeypatch cannot undo torch's cuBLAS flag, hence by hand.)"""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _evaluate(vgg, run, content, style, x0, max_pixels):
    blocks = split(content.shape[-2], content.shape[-1], max_pixels)
    features = features_by_block(vgg, content, list(run.preset.content_layers), blocks)
    grams, _ = grams_by_block(vgg, style, list(run.preset.style_layers),
                              split(style.shape[-2], style.shape[-1], max_pixels))
    x = x0.clone().requires_grad_(True)
    losses = Objective(vgg, weights_of(run), features, grams, blocks).evaluate(x)
    return len(blocks), losses, x.grad


@pytest.mark.parametrize("preset", ["balanced", "paper"])
def test_blocks_give_the_whole_image_loss_and_gradient(stylizer, preset, true_float32):
    vgg = stylizer.models.variant(torch.float32)
    run = resolve({"preset": preset}, 512)
    generator = torch.Generator().manual_seed(0)
    content = torch.randn(1, 3, 300, 400, generator=generator).to(stylizer.device)
    x0 = content + 0.5 * torch.randn(content.shape, generator=generator).to(stylizer.device)
    style = torch.randn(1, 3, 120, 130, generator=generator).to(stylizer.device)
    one, whole, grad = _evaluate(vgg, run, content, style, x0, 10**9)
    many, tiled, tiled_grad = _evaluate(vgg, run, content, style, x0, SMALL_BLOCKS)
    assert one == 1 and many == 12
    for term in ("content", "style", "tv", "total"):
        assert tiled[term] == pytest.approx(whole[term], rel=1e-5)
    assert float((tiled_grad - grad).norm() / grad.norm()) < 2e-6  # float32 rounding: ~4e-7


def test_the_anchor_is_the_style_loss_of_the_image_seen_at_the_scale_below(stylizer, true_float32):
    """A detail scale's anchor, in blocks, gives the loss and gradient autograd finds through the
    downsampling and one pass of the whole small image."""
    vgg = stylizer.models.variant(torch.float32)
    weights = replace(weights_of(resolve({}, 512)), content=0.0, tv=0.0, content_layers={})
    generator = torch.Generator().manual_seed(2)
    x0 = torch.randn(1, 3, 600, 800, generator=generator).to(stylizer.device)
    style = torch.randn(1, 3, 100, 120, generator=generator).to(stylizer.device)
    layers = list(weights.style_layers)
    grams, _ = grams_by_block(vgg, style, layers, split(100, 120, 10**9))
    size = (400, 300)
    anchor = Anchor(Objective(vgg, weights, {}, grams, split(300, 400, SMALL_BLOCKS)), size)
    x = x0.clone()
    x.grad = torch.zeros_like(x)
    loss = anchor.evaluate(x)

    reference = x0.clone().requires_grad_(True)
    small = torch.nn.functional.interpolate(reference, size=(300, 400), mode="area")
    feats = vgg(small, layers)
    positions = {n: f.shape[-2] * f.shape[-1] for n, f in feats.items()}
    expected = style_loss({n: gram_sum(f) / (f.shape[1] * positions[n]) for n, f in feats.items()},
                          grams, weights.style_layers, weights.style_term, positions)
    (weights.style * expected).backward()
    assert len(anchor.objective.blocks) > 1
    assert loss == pytest.approx(float(expected.detach()), rel=1e-5)
    assert float((x.grad - reference.grad).norm() / reference.grad.norm()) < 2e-6


@pytest.mark.parametrize("weight", [3.5, 0.0])
def test_the_total_variation_gradient_by_hand_is_autograds(weight):
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(1, 3, 37, 53, generator=generator, dtype=torch.float64, requires_grad=True)
    dx, dy = x[..., 1:] - x[..., :-1], x[..., 1:, :] - x[..., :-1, :]
    expected = torch.mean(dx ** 2) + torch.mean(dy ** 2)
    (weight * expected).backward()
    grad = torch.ones_like(x)  # added to, not replaced
    value = tv_loss_with_grad(x.detach(), weight, grad)
    assert float(value) == pytest.approx(float(expected.detach()), rel=1e-6)
    assert torch.allclose(grad - 1, x.grad, rtol=0, atol=1e-12)


def test_a_halo_narrower_than_relu5_1_sees_shows(stylizer, monkeypatch):
    """The halo is what makes blocks exact: at a third of it the gradient is off by far more
    than float32 rounding (~2e-5 here, against ~4e-7; at x = content, where only the style
    term pulls, reflection padding at the halo's edge hid it: 1e-6)."""
    vgg = stylizer.models.variant(torch.float32)
    run = resolve({"preset": "balanced"}, 512)
    generator = torch.Generator().manual_seed(1)
    content = torch.randn(1, 3, 150, 200, generator=generator).to(stylizer.device)
    style = torch.randn(1, 3, 64, 64, generator=generator).to(stylizer.device)
    x0 = content + 0.5 * torch.randn(content.shape, generator=generator).to(stylizer.device)
    _, _, grad = _evaluate(vgg, run, content, style, x0, 10**9)
    monkeypatch.setattr(objective_module, "HALO", 32)
    _, _, narrow = _evaluate(vgg, run, content, style, x0, (64 + 64) ** 2)
    assert float((narrow - grad).norm() / grad.norm()) > 1e-5


@pytest.mark.parametrize("height,width,max_pixels", [(3391, 6028, 716_000), (4000, 6000, 1_000_000),
                                                     (100, 70, 500), (1000, 17, 60_000)])
def test_blocks_tile_the_image_once_aligned_and_within_the_budget(height, width, max_pixels):
    blocks = split(height, width, max_pixels)
    covered = np.zeros((height, width), np.int8)
    for block in blocks:
        top, bottom, left, right = block.core
        covered[top:bottom, left:right] += 1
        pt, pb, pl, pr = block.padded
        assert pt % ALIGN == 0 and pl % ALIGN == 0 and top % ALIGN == 0 and left % ALIGN == 0
        assert pt <= top and pb >= bottom and pl <= left and pr >= right
        if len(blocks) > 1:
            assert (pb - pt) * (pr - pl) <= max(max_pixels, (ALIGN + 2 * HALO) ** 2)
    assert (covered == 1).all()


def test_block_size_comes_from_the_free_memory():
    device = torch.device("cpu")
    pixels, optimizer_bytes = memory_plan(device, torch.float32)
    import psutil
    assert pixels * BLOCK_BYTES_PER_PIXEL[torch.float32] <= psutil.virtual_memory().available / 3
    assert 0 < optimizer_bytes <= psutil.virtual_memory().available / 3


FREED_BUFFERS = """
import contextlib, sys, psutil, torch
from nst_server.engine.device import freed_buffers_returned
if sys.argv[1] == "after":
    with freed_buffers_returned():
        pass
with freed_buffers_returned() if sys.argv[1] == "in blocks" else contextlib.nullcontext():
    torch.ones(24 << 20, dtype=torch.uint8)  # freed at once: glibc by default then keeps <= 24 MB
    buffers, between = [], []
    for _ in range(48):  # 8-MiB activations, each followed by something that stays
        buffers.append(torch.ones(8 << 20, dtype=torch.uint8))
        between.append(torch.ones(1 << 16))
    before = psutil.Process().memory_info().rss
    del buffers
    print((before - psutil.Process().memory_info().rss) >> 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_block_activations_go_back_to_the_system_in_levels_in_blocks():
    """What keeps a full-size run's peak down (device.MMAP_THRESHOLD): within a level in blocks,
    freed 8-MiB buffers leave the process at once, where glibc's default keeps them, fragmented,
    in its heap; after it, glibc's heap serves them again (faster for one-block levels)."""
    def released_mib(policy: str) -> int:
        out = subprocess.run([sys.executable, "-c", FREED_BUFFERS, policy], check=True,
                             capture_output=True, text=True).stdout
        return int(out)
    assert released_mib("in blocks") >= 380       # of 384
    assert released_mib("default") < 100
    assert released_mib("after") < 100


def _profile(stylizer, **changes):
    return replace(stylizer.profile, **changes)


def test_the_plan_per_device(stylizer):
    # two coarse scales, whatever the default's tuning
    two = replace(PRESETS["balanced"], scales=((0.5, 0.4), (1.0, 0.6)))
    run = resolve({}, 512, two)
    cpu = _profile(stylizer, working_size=512, detail_side=512, block_pixels=700_000)
    gpu = _profile(stylizer, working_size=1024, detail_side=None, block_pixels=2_000_000)
    photo = (6000, 4000)
    assert [lv.size for lv in plan(run, photo, cpu)] == [(256, 170), (512, 341)]
    capped = replace(cpu, detail_side=1024)  # a detail side above the working size caps `auto`
    assert [lv.size for lv in plan(run, photo, capped)] == [(256, 170), (512, 341), (1024, 683)]
    gpu_run = resolve({}, 1024, two)
    sizes = [lv.size for lv in plan(gpu_run, photo, gpu)]
    assert sizes == [(512, 342), (1024, 683), (1500, 1000), (3000, 2000), (6000, 4000)]
    full = plan(resolve({"resolution": "full"}, 512, two), photo, cpu)
    assert full[-1].size == photo and len(full[-1].blocks) > 1
    # detail levels halve down from the layer's size: each exactly twice its anchor
    assert [lv.size for lv in full[1:]] == [(512, 341), (750, 500), (1500, 1000), (3000, 2000),
                                            photo]
    # each finer level is a detail level with fewer iterations; work grows with the pixels
    assert [lv.iterations for lv in full[2:]] == [24, 20, 10, 10]
    assert full[-1].work > full[-2].work > full[1].work
    # a detail level keeps the style of the level below (objective.Anchor); the preset's do not
    assert [lv.anchor_size for lv in full] == [None, None, *[lv.size for lv in full[1:-1]]]
    # a layer no larger than the working size gets the preset's scales only, on every device
    for profile in (cpu, gpu):
        assert [lv.size for lv in plan(run, (400, 300), profile)] == [(200, 150), (400, 300)]


def detail_ratio(image, photo):
    def high(im):
        y = im.convert("L")
        return np.asarray(y, np.float32) - np.asarray(y.filter(ImageFilter.GaussianBlur(2)), np.float32)
    return float(np.sqrt(np.mean(high(image) ** 2)) / np.sqrt(np.mean(high(photo) ** 2)))


def test_full_resolution_end_to_end_adds_detail_in_blocks(stylizer, style):
    """A 400x300 photo worked at 64 px: `auto` on a CPU whose detail side is 64 (today's
    behaviour) only upscales; `full` paints up to 400 px, its last level in blocks, and
    progress reaches the whole work."""
    from nst_server.engine.samples import photo
    image = photo("chelsea").resize((400, 300), Image.Resampling.LANCZOS)
    settings = {"preset": "fast", "size": 64, "iterations": 4}
    original = stylizer.profile
    try:
        stylizer.profile = replace(original, detail_side=64, block_pixels=SMALL_BLOCKS)
        upscaled = stylizer.stylize(image, style, settings)
        seen = []
        full = stylizer.stylize(image, style, dict(settings, resolution="full"),
                                on_progress=seen.append)
    finally:
        stylizer.profile = original
    assert full.size == upscaled.size == image.size
    # 0.84 vs 0.60 here in bfloat16 (style weight 20; 0.85 vs 0.51 at 8, float32)
    assert detail_ratio(full, image) > 1.25 * detail_ratio(upscaled, image)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert seen[-1].remaining == pytest.approx(0.0, abs=1e-6)
    assert max(seen[-1].preview().size) == 400


def test_coarse_scales_under_64_px_give_their_iterations_to_the_next(stylizer):
    """A 64-px layer is painted at one scale: a 32-px first scale made L-BFGS diverge."""
    cpu = _profile(stylizer, working_size=512, detail_side=1024, block_pixels=700_000)
    small = plan(resolve({"preset": "fast", "size": 64, "iterations": 8}, 512), (72, 64), cpu)
    assert [(lv.size, lv.iterations) for lv in small] == [((64, 57), 8)]
    larger = plan(resolve({"preset": "best", "size": 256, "iterations": 100}, 512), (256, 256), cpu)
    assert [(lv.size, lv.iterations) for lv in larger] == [((64, 64), 20), ((128, 128), 30),
                                                           ((256, 256), 50)]
