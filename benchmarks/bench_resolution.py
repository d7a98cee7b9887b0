"""Big layers: today's upscale vs the new default vs full resolution, on a real photo.

    python benchmarks/bench_resolution.py PHOTO [STYLE ...] [--modes today,default,full]
        [--megapixels N] [--sheet docs/images/resolution_crops.jpg]

Each mode runs in its own process (so peak RSS is its own) on the photo (downscaled to
--megapixels when given) with each painting (default: ../shared/styles/*.jpg when present, else a
bundled sample). Modes: `today` = the working size only, then Lanczos up (what 0.1 shipped);
`default` = `resolution: auto` on this device; `full` = `resolution: full`.
Per run it prints: wall time, the time of each scale, peak RSS, peak GPU memory (on a GPU), the
detail ratio at 100 % (RMS of luminance minus its radius-2 Gaussian blur, result / photo), the
fixed evaluator's losses on the result downscaled to 512 px, and the seam score (high-pass energy
within 2 px of the finest scale's block edges / elsewhere; 1 = no seams). It also times one
`paper` iteration at 256 px in the same process, and prints the wall time as a multiple of it.
With --sheet it saves 100 % crops: photo | each mode, one row per painting.
"""
import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
from PIL import Image, ImageFilter

STYLES = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "styles")
CROP = 512


def detail(image: Image.Image) -> np.ndarray:
    """High-pass luminance: the image minus its radius-2 Gaussian blur."""
    y = image.convert("L")
    return (np.asarray(y, np.float32) - np.asarray(y.filter(ImageFilter.GaussianBlur(2)), np.float32))


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(a ** 2)))


def seam_score(high: np.ndarray, blocks) -> float:
    """Mean high-pass energy within 2 px of inner block edges / elsewhere (1.0 without blocks)."""
    mask = np.zeros(high.shape, bool)
    for block in blocks:
        top, bottom, left, right = block.core
        for edge in (top, bottom):
            if 0 < edge < high.shape[0]:
                mask[max(0, edge - 2):edge + 2, left:right] = True
        for edge in (left, right):
            if 0 < edge < high.shape[1]:
                mask[top:bottom, max(0, edge - 2):edge + 2] = True
    if not mask.any():
        return 1.0
    energy = high ** 2
    return float(energy[mask].mean() / energy[~mask].mean())


def load_photo(path: str, megapixels: float | None) -> Image.Image:
    Image.MAX_IMAGE_PIXELS = None
    photo = Image.open(path).convert("RGB")
    if megapixels:
        scale = (megapixels * 1e6 / (photo.width * photo.height)) ** 0.5
        photo = photo.resize((round(photo.width * scale), round(photo.height * scale)),
                             Image.Resampling.LANCZOS)
    return photo


def one_run(args) -> None:
    """The child: one mode, one painting; prints one JSON line."""
    import torch
    from nst_server.engine import Stylizer
    from nst_server.engine.evaluate import Evaluator
    from nst_server.engine.plans import plan

    photo = load_photo(args.photo, args.megapixels)
    style = Image.open(args.style).convert("RGB")
    stylizer = Stylizer(device=args.device)
    if args.mode == "today":
        stylizer.profile = replace(stylizer.profile, detail_side=stylizer.profile.working_size)
    settings = {"resolution": "full" if args.mode == "full" else "auto"}
    levels = plan(stylizer.resolve(settings), photo.size, stylizer.profile)
    ends, marks = np.cumsum([lv.iterations for lv in levels]), []
    gpu = stylizer.device.type == "cuda"

    def on_progress(p):
        if p.iteration in ends:
            marks.append(p.elapsed)
            left = "no estimate yet" if p.remaining is None else f"{p.remaining:.0f} s left"
            print(f"scale {len(marks)}/{len(levels)} done at {p.elapsed:.0f} s, "
                  f"{left} by the progress estimate", file=sys.stderr, flush=True)

    if gpu:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = stylizer.stylize(photo, style, settings, on_progress=on_progress)
    if gpu:
        torch.cuda.synchronize()
    wall = time.perf_counter() - start
    peak_gpu = torch.cuda.max_memory_allocated() / 2**30 if gpu else None
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    paper: list[float] = []
    stylizer.stylize(photo, style, {"preset": "paper", "iterations": 12},
                     on_progress=lambda p: paper.append(p.elapsed))
    paper_iteration = (paper[-1] - paper[1]) / 10  # the first iteration warms up

    evaluator = Evaluator(stylizer, size=512)
    result.save(os.path.join(args.out, f"{args.mode}-{os.path.basename(args.style)}.png"))
    print(json.dumps({
        "mode": args.mode, "style": os.path.basename(args.style), "size": photo.size,
        "wall_s": round(wall, 1), "paper_iterations": round(wall / paper_iteration),
        "levels": [[*lv.size, lv.iterations, len(lv.blocks)] for lv in levels],
        "level_s": [round(b - a, 1) for a, b in zip([0.0, *marks], marks)],
        "peak_rss_gib": round(peak_rss, 2), "peak_gpu_gib": peak_gpu and round(peak_gpu, 2),
        "detail": round(rms(detail(result)) / rms(detail(photo)), 3),
        "seam": round(seam_score(detail(result), levels[-1].blocks), 3)
        if levels[-1].size == photo.size else None,
        "style_loss": evaluator.style_loss(result, style),
        "content_loss": evaluator.content_loss(result, photo)}), flush=True)


def sheet(photo: Image.Image, out: str, modes: list[str], styles: list[str], path: str) -> None:
    """100 % crops around the photo's most detailed region: photo | each mode, per painting."""
    high = np.abs(detail(photo))
    h, w = high.shape
    best = max(((y, x) for y in range(0, h - CROP, CROP // 2) for x in range(0, w - CROP, CROP // 2)),
               key=lambda yx: high[yx[0]:yx[0] + CROP, yx[1]:yx[1] + CROP].mean())
    box = (best[1], best[0], best[1] + CROP, best[0] + CROP)
    grid = Image.new("RGB", (CROP * (1 + len(modes)), CROP * len(styles)), "white")
    for row, style in enumerate(styles):
        grid.paste(photo.crop(box), (0, row * CROP))
        for col, mode in enumerate(modes, 1):
            result = Image.open(os.path.join(out, f"{mode}-{os.path.basename(style)}.png"))
            grid.paste(result.crop(box), (col * CROP, row * CROP))
    grid.save(path, quality=90)
    print(f"crops at {box} -> {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photo")
    parser.add_argument("styles", nargs="*")
    parser.add_argument("--modes", default="today,default,full")
    parser.add_argument("--megapixels", type=float)
    parser.add_argument("--device")
    parser.add_argument("--out", default="/tmp/bench_resolution")
    parser.add_argument("--sheet")
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # the child's
    parser.add_argument("--style", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        return one_run(args)
    os.makedirs(args.out, exist_ok=True)
    styles = args.styles or sorted(glob.glob(os.path.join(STYLES, "*.jpg")))
    if not styles:
        from nst_server.engine.samples import painting
        styles = [os.path.join(args.out, "swirls.png")]
        painting().save(styles[0])
    modes = args.modes.split(",")
    for style in styles:
        for mode in modes:
            command = [sys.executable, __file__, args.photo, "--mode", mode, "--style", style,
                       "--out", args.out]
            for flag in ("megapixels", "device"):
                if getattr(args, flag):
                    command += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
            subprocess.run(command, check=True)
    if args.sheet:
        sheet(load_photo(args.photo, args.megapixels), args.out, modes, styles, args.sheet)


if __name__ == "__main__":
    main()
