"""Engine benchmark: the presets against the classic recipe and the published one, on real
paintings, in one process.

    python benchmarks/bench_engine.py                      # ../shared/styles if present, 512 px
    python benchmarks/bench_engine.py --size 256 --classic 200 --recipes balanced   # quicker
    python benchmarks/bench_engine.py --sheet docs/images/presets.jpg               # + the sheet

Pairs: scikit-image's photos, each with a painting of the style folder in turn (default
../shared/styles when present, else the generated samples). Per pair, every recipe runs from the
same photo at the same working size:
  - `classic`: jcjohnson/neural-style's defaults (presets.CLASSIC) for the largest --classic
    budget, its losses noted at each budget;
  - each of --recipes (presets, `paper` among them, which keeps its published 256 px).
It prints each recipe's fixed-evaluator losses over time (nst_server.engine.evaluate: evaluation time
excluded from every timing), the palette distance to the painting (sliced Wasserstein in CIE Lab,
lower is closer), the time each preset needs to be no worse than the classic recipe on both losses
at each budget, and against `paper`. Then medians over the pairs, with the targets.
"""
import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from nst_server.engine import Stylizer
from nst_server.engine.evaluate import Evaluator, palette_distance
from nst_server.engine.images import fit_size
from nst_server.engine.presets import CLASSIC, PRESETS, classic_tv_weight
from nst_server.engine.samples import PALETTES, PHOTOS, painting, photo

SHARED_STYLES = Path(__file__).resolve().parents[2] / "shared" / "styles"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff")


def load_styles(folder):
    """{name: painting} from `folder`, or the generated samples when there is none."""
    if folder is None:
        return {name: painting(name) for name in PALETTES}
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        sys.exit(f"no paintings in {folder}")
    return {p.stem: Image.open(p).convert("RGB") for p in files}


class Timeline:
    """A recipe's run: (iteration, seconds, content loss, style loss), evaluated every `every`
    iterations, the evaluation's time excluded; each image scaled to the content's size first,
    as the run would deliver it had it ended there (the Gram loss of a 512-px result and of the
    same result scaled to a 1024-px photo and back differ up to 3x: judge both sides alike)."""

    def __init__(self, evaluator, content, style, every):
        self.evaluator, self.content, self.style, self.every = evaluator, content, style, every
        self.points, self.paused = [], 0.0

    def __call__(self, progress):
        if progress.iteration % self.every and progress.iteration != progress.total:
            return
        start = time.perf_counter()
        image = progress.preview()
        if image.size != self.content.size:
            image = image.resize(self.content.size, Image.Resampling.LANCZOS)
        self.points.append((progress.iteration, progress.elapsed - self.paused,
                            self.evaluator.content_loss(image, self.content),
                            self.evaluator.style_loss(image, self.style)))
        self.paused += time.perf_counter() - start

    def at(self, iteration):
        return next(p for p in self.points if p[0] >= iteration)

    def sampled(self, count=6):
        """`count` of the run's points, evenly spaced over its evaluations, the last included."""
        last = len(self.points) - 1
        return [self.points[round(i * last / (count - 1))] for i in range(count)]

    def time_to_reach(self, content_loss, style_loss):
        """First time both losses are no worse than the given ones (None: never)."""
        return next((t for _, t, c, s in self.points if c <= content_loss and s <= style_loss), None)


def run(stylizer, evaluator, content, style, settings, every, recipe=None):
    line = Timeline(evaluator, content, style, every)
    result = stylizer.stylize(content, style, settings, on_progress=line, recipe=recipe)
    return result, line


def print_over_time(name, line):
    print(f"    {name} over time (iteration, s, content, style): "
          + ", ".join(f"{i} {t:.1f} s {c:.3g} {s:.3g}" for i, t, c, s in line.sampled()))


def ratio(numerator, denominator):
    return float("inf") if numerator is None else numerator / denominator


def bench_pair(stylizer, evaluator, content, style, args):
    """Run classic and every recipe on one pair; print its lines; return (figures, pictures)."""
    budgets = sorted(args.classic)
    classic_settings = {"size": args.size, "iterations": budgets[-1],
                        "tv_weight": classic_tv_weight(*content.size)}
    classic, classic_line = run(stylizer, evaluator, content, style, classic_settings, 10, CLASSIC)
    marks = {n: classic_line.at(n) for n in budgets}
    for n, (_, t, c, s) in marks.items():
        print(f"  classic @{n:<5} {t:7.1f} s  content {c:.4g}  style {s:.4g}")
    print(f"  classic palette distance {palette_distance(classic, style):.2f}")
    print_over_time("classic", classic_line)
    figures, pictures = {}, {"classic": classic}
    for name in args.recipes:
        # a recipe with a size of its own (paper: 256 px, as published) runs at it
        settings = {"preset": name} if PRESETS[name].size else {"preset": name, "size": args.size}
        result, line = run(stylizer, evaluator, content, style, settings, 50 if name == "paper" else 2)
        _, wall, c, s = line.points[-1]
        distance = palette_distance(result, style)
        reach = {n: line.time_to_reach(mc, ms) for n, (_, _, mc, ms) in marks.items()}
        figures[name] = {"line": line, "wall": wall, "content": c, "style": s, "palette": distance,
                         "vs classic": {n: ratio(reach[n], marks[n][1]) for n in budgets}}
        pictures[name] = result
        print(f"  {name:<9} {wall:7.1f} s  content {c:.4g}  style {s:.4g}  palette {distance:.2f}  "
              + "  ".join(f"reaches classic@{n} in " + (f"{reach[n]:.1f} s ({reach[n] / marks[n][1]:.2f}"
                                                       f" of its time)" if reach[n] else "never")
                          for n in budgets))
        print_over_time(name, line)
    figures["classic"] = {"marks": marks, "palette": palette_distance(classic, style)}
    return figures, pictures


def summarize(rows, budgets):
    median = statistics.median
    print(f"\nmedians over {len(rows)} pairs:")
    names = [n for n in rows[0] if n != "classic"]
    print(f"  palette distance: classic {median(r['classic']['palette'] for r in rows):.2f}, "
          + ", ".join(f"{n} {median(r[n]['palette'] for r in rows):.2f}" for n in names))
    for name in names:
        if name == "paper":
            continue
        for n in budgets:
            print(f"  {name} reaches classic@{n} in {median(r[name]['vs classic'][n] for r in rows):.3f}"
                  " of classic's time (targets: balanced@200 <= 0.333, best@1000 < 1)")
    if "paper" in names and "balanced" in names:
        reach = [ratio(r["balanced"]["line"].time_to_reach(r["paper"]["content"], r["paper"]["style"]),
                       r["paper"]["wall"]) for r in rows]
        style = median(r["balanced"]["style"] / r["paper"]["style"] for r in rows)
        content = median(r["balanced"]["content"] / r["paper"]["content"] for r in rows)
        print(f"  balanced reaches paper's final in {median(reach):.3f} of paper's time (target <= 0.05); "
              f"final style / paper's {style:.3f} (target <= 0.5); final content / paper's "
              f"{content:.3f} (target <= 1)")


def save_sheet(rows_of_pictures, columns, path, height=256):
    """One row per pair: photo | painting | each recipe, `height` px high, labelled above."""
    rows = [[image.resize((round(image.width * height / image.height), height), Image.LANCZOS)
             for image in row] for row in rows_of_pictures]
    width = max(sum(i.width + 8 for i in r) for r in rows)
    sheet = Image.new("RGB", (width, 20 + len(rows) * (height + 8)), "white")
    draw = ImageDraw.Draw(sheet)
    for y, row in enumerate(rows):
        x = 0
        for label, image in zip(columns, row):
            if y == 0:
                draw.text((x + 4, 4), label, fill="black")
            sheet.paste(image, (x, 20 + y * (height + 8)))
            x += image.width + 8
    sheet.save(path, quality=90)
    print(f"sheet ({' | '.join(columns)}): {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--styles", type=Path, default=SHARED_STYLES if SHARED_STYLES.is_dir() else None,
                        help="folder of paintings (default: ../shared/styles, else the samples)")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--classic", type=lambda v: [int(n) for n in v.split(",")], default=[200, 1000],
                        help="the classic recipe's iteration budgets (default 200,1000)")
    parser.add_argument("--recipes", type=lambda v: v.split(","),
                        default=["fast", "balanced", "best", "paper"])
    parser.add_argument("--sheet", help="save photo | painting | classic | each recipe here")
    args = parser.parse_args()
    stylizer = Stylizer()
    evaluator = Evaluator(stylizer)
    styles = load_styles(args.styles)
    print(f"device {stylizer.device} ({stylizer.profile.dtype} convolutions; classic and paper float32), "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{args.size} px, paintings from {args.styles or 'the samples'}\n")
    rows, sheet_rows = [], []
    for index in range(args.pairs):
        photo_name = PHOTOS[index % len(PHOTOS)]
        style_name, style = list(styles.items())[index % len(styles)]
        source = photo(photo_name)
        content = source.resize(fit_size(*source.size, args.size), Image.LANCZOS)
        print(f"{photo_name} + {style_name}:", flush=True)
        figures, pictures = bench_pair(stylizer, evaluator, content, style, args)
        rows.append(figures)
        sheet_rows.append([content, style, *pictures.values()])
    summarize(rows, sorted(args.classic))
    if args.sheet:
        save_sheet(sheet_rows, ["photo", "painting", f"classic @{max(args.classic)}", *args.recipes],
                   args.sheet)
    print(f"\nthis process: peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
