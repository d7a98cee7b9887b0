"""The preset table and the device profile, judged by what they do."""
import json
import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from nst_contract import settings as nst_settings
from nst_server.engine.device import BF16_MARGIN, CPU_DTYPE_FILE, select_device
from nst_server.engine import Stylizer
from nst_server.engine.errors import InputError, Stopped
from nst_server.engine.images import to_tensor
from nst_server.engine.presets import CLASSIC, PRESETS, resolve
from nst_server.engine.samples import painting, photo
from nst_server.user_dirs import APP
from nst_server.engine.vgg import denormalize, load_vgg19, normalize

STEPS = 12


def published_recipe(vgg, content, style, steps):
    """Gatys et al.'s recipe as published, written from the paper's reference code and not from
    the engine: the image starts as the content; Adam at lr 0.003; content = MSE of conv4_2
    (after its ReLU) with alpha 1; style = beta 1e3 times the sum over conv1_1..conv5_1 (after
    their ReLUs) with weights 1, .75, .2, .2, .2 of mean((G - A)^2) / (d*h*w) on unnormalized
    Grams, the painting resized to the photo's shape; no smoothing, no clamping, float32.
    Returns (the image after `steps`, the total loss before each step)."""
    layers = {"relu1_1": 1.0, "relu2_1": 0.75, "relu3_1": 0.2, "relu4_1": 0.2, "relu5_1": 0.2}

    def unnormalized_gram(f):
        flat = f[0].reshape(f.shape[1], -1)
        return flat @ flat.T

    device = vgg.layers["conv1_1"].weight.device
    target = normalize(to_tensor(content).to(device))
    with torch.no_grad():
        content_features = vgg(target, ["relu4_2"])["relu4_2"]
        style_image = to_tensor(style.resize(content.size, Image.LANCZOS)).to(device)
        style_features = vgg(normalize(style_image), list(layers))
    style_grams = {n: unnormalized_gram(f) for n, f in style_features.items()}
    x = target.clone().requires_grad_(True)
    adam = torch.optim.Adam([x], lr=0.003)
    totals = []
    for _ in range(steps):
        adam.zero_grad()
        features = vgg(x, ["relu4_2", *layers])
        loss = torch.mean((features["relu4_2"] - content_features) ** 2)
        for name, weight in layers.items():
            _, d, h, w = features[name].shape
            error = torch.mean((unnormalized_gram(features[name]) - style_grams[name]) ** 2)
            loss = loss + 1e3 * weight * error / (d * h * w)
        loss.backward()
        totals.append(float(loss.detach()))
        adam.step()
    return denormalize(x.detach()), totals


def test_the_paper_preset_reproduces_the_published_recipe(stylizer):
    """Same losses at every step and the same picture as the recipe written out independently:
    any change to its optimizer, rate, weights, layers, style term, style shape, smoothing or
    precision shows here."""
    content = photo("coffee").resize((72, 48), Image.LANCZOS)
    style = painting("embers", size=96)
    seen = []
    result = stylizer.stylize(content, style, {"preset": "paper", "iterations": STEPS},
                              on_progress=lambda p: seen.append(p.losses["total"]))
    as_trained = load_vgg19(stylizer.weights, padding="zeros").to(stylizer.device)  # as published
    expected, totals = published_recipe(as_trained, content, style, STEPS)
    assert seen == pytest.approx(totals, rel=1e-3)
    assert totals[-1] < 0.9 * totals[0]  # the steps did something, so the comparison means something
    reference = np.asarray(expected[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu())
    assert np.abs(np.asarray(result, dtype=int) - reference).max() <= 1


def test_preset_names_match_the_shared_settings_table():
    assert set(PRESETS) == set(nst_settings.PRESETS)
    assert nst_settings.DEFAULT_PRESET in PRESETS


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_scale_shares_add_up(name):
    assert sum(share for _, share in PRESETS[name].scales) == pytest.approx(1.0)
    assert PRESETS[name].scales[-1][0] == 1.0


def test_a_default_cpu_run_paints_at_512_px_in_a_precision_as_good_as_float32(stylizer, evaluator):
    """What the CPU profile decides, seen from outside: a default run on a photo larger than
    512 px works at 512 px (the previews' size), and its convolution precision (bf16 where the
    CPU has it natively) gives results as stylized as float32's, never float16."""
    if stylizer.device.type != "cpu":
        pytest.skip("the CPU profile's test (tests run on the GPU profile)")
    big = photo("chelsea").resize((600, 400), Image.LANCZOS)
    style = painting("swirls", size=256)
    sizes = []
    stylizer.stylize(big, style, {"iterations": 1}, on_progress=lambda p: sizes.append(p.preview().size))
    assert sizes == [(512, 341)]  # no detail scale above it on a CPU (device.py)

    assert stylizer.profile.dtype in (torch.bfloat16, torch.float32)
    small = big.resize((96, 64), Image.LANCZOS)
    settings = {"preset": "fast", "iterations": 12}
    as_profiled = stylizer.stylize(small, style, settings)
    float32 = float32_twin().stylize(small, style, settings)
    ours, reference = (evaluator.style_loss(r, style) for r in (as_profiled, float32))
    assert ours < evaluator.style_loss(small, style) * 0.7
    assert ours == pytest.approx(reference, rel=0.25)


def float32_twin():
    """A Stylizer like the default one, but with float32 convolutions."""
    twin = Stylizer()
    twin.profile = replace(twin.profile, dtype=torch.float32, iteration_scale=1.0)
    return twin


def test_a_faster_precision_buys_iterations_not_a_shorter_wait(stylizer):
    """The presets' iterations are float32's on a CPU: where bfloat16 was chosen for being at
    least BF16_MARGIN faster, a preset runs that many times as many; the user's own count and
    a published recipe's are kept."""
    bf16_cpu = stylizer.device.type == "cpu" and stylizer.profile.dtype == torch.bfloat16
    assert stylizer.profile.iteration_scale == (BF16_MARGIN if bf16_cpu else 1.0)
    scale = BF16_MARGIN
    for name, preset in PRESETS.items():
        expected = preset.iterations if preset.published else round(preset.iterations * scale)
        assert resolve({"preset": name}, 512, iteration_scale=scale).iterations == expected
    assert resolve({"iterations": 30}, 512, iteration_scale=scale).iterations == 30
    assert resolve({}, 512, CLASSIC, iteration_scale=scale).iterations == CLASSIC.iterations
    # a device with the scale (whatever this CPU chose): the run, its progress and the estimate
    # the server's cost limit reads all count the scaled iterations
    scaled = Stylizer()
    scaled.profile = replace(scaled.profile, iteration_scale=scale)
    expected = round(PRESETS["balanced"].iterations * scale)
    assert scaled.resolve({}).iterations == expected
    totals = []

    def first_progress(progress):
        totals.append(progress.total)

    with pytest.raises(Stopped):
        scaled.stylize(photo("chelsea").resize((96, 64)), painting("swirls", 64), {"size": 64},
                       on_progress=first_progress, should_stop=lambda: bool(totals))
    assert totals == [expected]
    unscaled = Stylizer()
    unscaled.profile = replace(scaled.profile, iteration_scale=1.0)
    ratio = scaled.estimate({}, (600, 400)).work / unscaled.estimate({}, (600, 400)).work
    assert ratio == pytest.approx(scale, rel=0.05)  # each scale's count is rounded on its own


def cpu_dtype_in_a_new_process(cache):
    """The CPU dtype a fresh server process picks, with `cache` as its cache folder."""
    done = subprocess.run([sys.executable, "-c", "from nst_server.engine.device import cpu_bf16_pays; "
                           "print(cpu_bf16_pays())"], env={**os.environ, "XDG_CACHE_HOME": str(cache)},
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip() == "True"


@pytest.mark.skipif(sys.platform != "linux", reason="XDG_CACHE_HOME names the cache folder on Linux")
def test_the_cpu_dtype_is_measured_once_and_remembered(tmp_path):
    """Measured afresh in each process, a close call flipped with the load of the moment and the
    same seed gave two results; every process after the first now takes the remembered verdict."""
    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("this CPU has no native bf16: float32, nothing to measure")
    verdict_file = tmp_path / APP / CPU_DTYPE_FILE
    measured = cpu_dtype_in_a_new_process(tmp_path)
    verdict = json.loads(verdict_file.read_text())
    assert verdict["dtype"] == ("bfloat16" if measured else "float32")
    assert verdict["bfloat16_s"] > 0 and verdict["float32_s"] > 0
    # the opposite verdict, written for this CPU and torch, is what the next process takes
    verdict_file.write_text(json.dumps({**verdict, "dtype": "float32" if measured else "bfloat16"}))
    assert cpu_dtype_in_a_new_process(tmp_path) is not measured
    # another torch's (or CPU's) verdict, or a damaged file, is measured again and replaced
    for stale in (json.dumps({**verdict, "key": "another torch"}), "{not json"):
        verdict_file.write_text(stale)
        cpu_dtype_in_a_new_process(tmp_path)
        assert json.loads(verdict_file.read_text())["key"] == verdict["key"]


def test_device_selection_here():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and torch.backends.mps.is_available():
        expected = "mps"
    assert select_device(None).type == expected
    assert select_device("cpu").type == "cpu"
    with pytest.raises(InputError, match="unknown device"):
        select_device("abacus")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU"):
            select_device("cuda")
