"""Engine benchmark: the `paper` baseline and the default preset side by side, in one process.

    python benchmarks/bench_engine.py            # 3 pairs at 256 px, plus the 512-px memory run
                                                 # and the 12-megapixel CLI run
    python benchmarks/bench_engine.py --pairs 1 --skip-photo --skip-memory   # quicker look

Per content/style pair it prints: wall seconds and seconds/iteration of both presets, the fixed
evaluator's (nst_server.evaluate) content and style losses of both results, and how long the
default needed to reach a result no worse than paper's final one on both losses. Evaluation time
is excluded from every timing. Then medians of the ratios, the achieved GFLOP/s per iteration,
peak memory of a 512-px run, and a timed `nst-stylize` run on a 12-megapixel photo.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from PIL import Image

from nst_server.engine import Stylizer
from nst_server.presets import resolve
from nst_server.evaluate import Evaluator
from nst_server.images import fit_size
from nst_server.presets import PRESETS
from nst_server.samples import painting, photo
from nst_server.vgg import BLOCKS
from neural_style.nst_settings import DEFAULT_PRESET

PAIRS = (("astronaut", "swirls"), ("chelsea", "embers"), ("coffee", "meadow"),
         ("rocket", "swirls"), ("motorcycle_left", "embers"))


def run_preset(stylizer, evaluator, content, style, preset, size, every):
    """Run one preset; return (result, wall s, s/iteration, [(t, content, style)] timeline)."""
    timeline, paused = [], [0.0]

    def on_progress(p):
        if p.iteration % every and p.iteration != p.total:
            return
        t0 = time.perf_counter()
        image = p.preview()
        timeline.append((p.elapsed - paused[0], evaluator.content_loss(image, content),
                         evaluator.style_loss(image, style)))
        paused[0] += time.perf_counter() - t0

    start = time.perf_counter()
    result = stylizer.stylize(content, style, {"preset": preset, "size": size},
                              on_progress=on_progress)
    wall = time.perf_counter() - start - paused[0]
    return result, wall, wall / resolve({"preset": preset}, size).iterations, timeline


def time_to_reach(timeline, content_loss, style_loss):
    """First time at which both losses are no worse than the given ones (None: never)."""
    return next((t for t, c, s in timeline if c <= content_loss and s <= style_loss), None)


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
    vgg = stylizer._model(stylizer.profile.dtype)
    layers = list(dict.fromkeys([*preset.content_layers, *preset.style_layers]))
    x = torch.randn(1, 3, size, size, device=stylizer.device, requires_grad=True)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        feats = vgg(x, layers)
        sum(f.float().square().mean() for f in feats.values()).backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def bench_pairs(stylizer, evaluator, pairs, size):
    rows, pictures = [], []
    for content_name, style_name in pairs:
        source = photo(content_name)
        content = source.resize(fit_size(*source.size, size), Image.LANCZOS)
        style = painting(style_name)
        paper, p_wall, p_it, p_line = run_preset(stylizer, evaluator, content, style, "paper",
                                                 size, 50)
        p_c, p_s = p_line[-1][1:]
        default, d_wall, d_it, d_line = run_preset(stylizer, evaluator, content, style,
                                                   DEFAULT_PRESET, size, 2)
        pictures.append((content, style, paper, default))
        d_c, d_s = d_line[-1][1:]
        reach = time_to_reach(d_line, p_c, p_s)
        rows.append((p_wall, d_wall, reach, d_s / p_s, d_c / p_c))
        print(f"{content_name:>15} + {style_name:<7} paper: {p_wall:6.1f} s {p_it:.3f} s/it "
              f"content {p_c:.4g} style {p_s:.4g} | {DEFAULT_PRESET}: {d_wall:5.1f} s "
              f"{d_it:.3f} s/it content {d_c:.4g} style {d_s:.4g} | reaches paper's final in "
              + (f"{reach:.1f} s ({reach / p_wall:.3f} of paper's time)" if reach else "never"),
              flush=True)
    return rows, pictures


def save_picture(pictures, path, height=256):
    """One row per pair: content | style | paper | default, each `height` px high."""
    rows = [[image.resize((round(image.width * height / image.height), height), Image.LANCZOS)
             for image in row] for row in pictures]
    sheet = Image.new("RGB", (max(sum(i.width for i in r) + 8 * 3 for r in rows),
                              len(rows) * (height + 8) - 8), "white")
    for y, row in enumerate(rows):
        x = 0
        for image in row:
            sheet.paste(image, (x, y * (height + 8)))
            x += image.width + 8
    sheet.save(path)
    print(f"side-by-side picture (content | style | paper | {DEFAULT_PRESET}): {path}")


def summarize(rows):
    median = statistics.median
    reach = [r[2] / r[0] if r[2] else float("inf") for r in rows]
    print(f"\nmedian over {len(rows)} pairs: time to reach paper's final / paper's time = "
          f"{median(reach):.3f} (target <= 0.05); final style loss / paper's = "
          f"{median(r[3] for r in rows):.3f} (target <= 0.5); final content loss / paper's = "
          f"{median(r[4] for r in rows):.3f} (target <= 1)")


def bench_memory(size):
    """Peak RSS of a fresh process that loads the model and runs the default preset at `size`."""
    code = ("import resource; from nst_server.engine import Stylizer;"
            "from nst_server.samples import photo, painting;"
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
    parser.add_argument("--pairs", type=int, default=3, help="content/style pairs (max 5)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-photo", action="store_true")
    parser.add_argument("--picture", help="save content | style | paper | default rows here")
    args = parser.parse_args()
    stylizer = Stylizer()
    print(f"device {stylizer.device}, convolutions in {stylizer.profile.dtype}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}\n")
    rows, pictures = bench_pairs(stylizer, Evaluator(stylizer), PAIRS[:args.pairs], args.size)
    summarize(rows)
    if args.picture:
        save_picture(pictures, args.picture)
    seconds = measure_iteration(stylizer, args.size)
    print(f"forward+backward to relu5_1 at {args.size}x{args.size}: {seconds:.3f} s, "
          f"{conv_gflop(args.size, args.size) / seconds:.0f} GFLOP/s (target >= 300)")
    if not args.skip_memory:
        bench_memory(512)
    if not args.skip_photo:
        bench_photo()
    print(f"\nthis process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
