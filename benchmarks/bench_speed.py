"""Speed and memory of the engine: the achieved GFLOP/s of VGG19 forward + backward, the peak
memory of a 512-px run, and a timed `nst-stylize` run on a 12-megapixel photo.

    python benchmarks/bench_speed.py [--size 256] [--skip-memory] [--skip-photo]

(Quality against the classic and published recipes: bench_engine.py.)
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from PIL import Image

from nst_contract.settings import DEFAULT_PRESET
from nst_server.engine import Stylizer
from nst_server.engine.presets import PRESETS
from nst_server.engine.samples import painting, photo
from nst_server.engine.vgg import BLOCKS


def conv_gflop(width, height, deepest_block=5):
    """GFLOP of VGG19 up to relu5_1: forward plus the backward to the image (2x forward)."""
    flops, w, h, channels = 0, width, height, 3
    widths = (64, 128, 256, 512, 512)
    for (block, convs), out in zip(BLOCKS[:deepest_block], widths):
        for _ in range(convs):
            flops += 2 * 9 * channels * out * w * h
            channels = out
        w, h = w // 2, h // 2
    return 2 * flops / 1e9


def measure_iteration(stylizer, size, steps=8):
    """Seconds per forward+backward of the default preset's model at size x size."""
    preset = PRESETS[DEFAULT_PRESET]
    vgg = stylizer.models.variant(stylizer.profile.dtype)
    layers = list(dict.fromkeys([*preset.content_layers, *preset.style_layers]))
    x = torch.randn(1, 3, size, size, device=stylizer.device, requires_grad=True)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        feats = vgg(x, layers)
        sum(f.float().square().mean() for f in feats.values()).backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def bench_memory(size):
    """Peak RSS of a fresh process that loads the model and runs the default preset at `size`."""
    code = ("import resource; from nst_server.engine import Stylizer;"
            "from nst_server.engine.samples import photo, painting;"
            f"Stylizer().stylize(photo('astronaut'), painting('swirls'), {{'size': {size}}});"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    print(f"peak memory of a {size}-px run of '{DEFAULT_PRESET}' on "
          f"{Stylizer.__name__}'s default device: {int(out.stdout.split()[-1]) / 1024:.0f} MiB "
          "(whole process: Python, torch, model, run)")


def bench_photo(megapixels=12):
    """`nst-stylize` with default settings on a 4000x3000 photo, model load included."""
    with tempfile.TemporaryDirectory() as tmp:
        content, style, out = (os.path.join(tmp, n) for n in ("photo.jpg", "style.png", "out.jpg"))
        photo("astronaut").resize((4000, 3000), Image.LANCZOS).save(content, quality=92)
        painting("swirls").save(style)
        cli = os.path.join(os.path.dirname(sys.executable), "nst-stylize")
        start = time.perf_counter()
        subprocess.run([cli, content, style, "-o", out, "--quiet"], check=True)
        wall = time.perf_counter() - start
        size = Image.open(out).size
    print(f"nst-stylize, default settings, {megapixels}-megapixel photo: {wall:.1f} s "
          f"(target <= 60 s), result {size[0]}x{size[1]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-photo", action="store_true")
    args = parser.parse_args()
    stylizer = Stylizer()
    print(f"device {stylizer.device}, convolutions in {stylizer.profile.dtype}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    seconds = measure_iteration(stylizer, args.size)
    print(f"forward+backward to relu5_1 at {args.size}x{args.size}: {seconds:.3f} s, "
          f"{conv_gflop(args.size, args.size) / seconds:.0f} GFLOP/s (target >= 300)")
    if not args.skip_memory:
        bench_memory(512)
    if not args.skip_photo:
        bench_photo()


if __name__ == "__main__":
    main()
