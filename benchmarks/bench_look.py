"""The look on photos of the size people have: each preset as a user runs it against the classic
recipe, in one process, judged by the evaluator and by the yardstick (nst_server/engine/yardstick.py).

    bash benchmarks/get_photos.sh                  # Debian's wallpapers into /var/tmp/nst-photos
    python benchmarks/bench_look.py --sheet docs/images/look_1024.jpg
    python benchmarks/bench_look.py --pair my.jpg=painting.jpg --presets balanced

Pairs (--pair PHOTO=PAINTING, repeatable; default PAIRS: four Debian wallpapers — sky and sea,
storm, a night seascape, a bird on a tree — with the paintings in ../shared/styles). Each photo is
scaled to --size (default 1024 px, an ordinary photo). Per pair:
  - `classic`: jcjohnson/neural-style's defaults (presets.CLASSIC) at 512 px, as published, run
    once for the largest --classic budget; its time, losses, figures and picture at each budget
    (L-BFGS's path to iteration 200 does not depend on the budget);
  - each of --presets with nothing but the preset set, as `nst-stylize` runs it on this device
    (working size and detail scales the device's); `balanced+preserve_exposure` also turns that
    switch on (any on/off setting of nst_contract/settings.py).
It prints time, the fixed evaluator's losses at 512 px (lower is better), every yardstick
figure and the mean lightness L* (beside the photo's and the painting's), each result beside
classic's — and where a preset keeps the photo's exposure, every result's style loss against
the painting relit to the photo's key too (images.match_exposure: the look asked for); then
medians over the pairs and the acceptance ratios of issue 23 (the first preset's final losses
against classic@first budget, and its time against that budget's).
"""
import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from nst_server.engine import Stylizer
from nst_server.engine.evaluate import Evaluator
from nst_contract import settings as nst_settings
from nst_server.engine.images import fit_size, match_exposure, mean_lightness
from nst_server.engine.presets import CLASSIC, classic_tv_weight
from nst_server.engine.yardstick import Figures, measure

sys.path.insert(0, str(Path(__file__).parent))
from bench_engine import SHARED_STYLES, Timeline, save_sheet  # noqa: E402

PHOTOS = Path("/var/tmp/nst-photos/usr/share/backgrounds")  # where get_photos.sh unpacks
PAIRS = (("mate/nature/Dune.jpg", "wave.jpg"), ("mate/nature/Storm.jpg", "composition_vii.jpg"),
         ("Infinite-Sea_by_Aury88.jpg", "wave.jpg"), ("Kleiber_by_Lukas_Baubkus.jpg", "udnie.jpg"))
EVALUATION_SIZE = 512  # the classic recipe's own size
CROP = 512             # side of the 100 % crops


def centre_crop(image: Image.Image) -> Image.Image:
    left, top = (image.width - CROP) // 2, (image.height - CROP) // 2
    return image.crop((left, top, left + CROP, top + CROP))


def default_pairs() -> list[tuple[Path, Path]]:
    pairs = [(PHOTOS / p, SHARED_STYLES / s) for p, s in PAIRS]
    missing = [str(p) for pair in pairs for p in pair if not p.exists()]
    if missing:
        sys.exit("missing " + ", ".join(missing) + ": run benchmarks/get_photos.sh, or give --pair")
    return pairs


def result_name(photo: Path, painting: Path, recipe: str) -> str:
    """The file name --save gives a result (bench_padding.py reads the painting back from it)."""
    return f"{photo.stem}-{painting.stem}-{recipe}.png"


def painting_stem(result: Path) -> str:
    """The painting's stem in a result_name (photo stems may hold '-', paintings and recipes not)."""
    return result.stem.rsplit("-", 2)[1]


def parse_pair(text: str) -> tuple[Path, Path]:
    photo, _, painting = text.partition("=")
    return Path(photo), Path(painting)


def figures_line(name: str, seconds: float, content: float, style: float, figures: Figures,
                 picture: Image.Image) -> str:
    return (f"  {name:<12} {seconds:7.1f} s  content {content:.4g}  style {style:.4g}  "
            f"{figures.line()}  L* {mean_lightness(picture):.1f}")


def preset_list(text: str) -> list[str]:
    entries = text.split(",")
    for entry in entries:
        preset_settings(entry)  # an error now, not after an hour of classic runs
    return entries


def preset_settings(entry: str) -> dict:
    """--presets entry `balanced` or `balanced+preserve_exposure`: the settings it runs with."""
    preset, *switches = entry.split("+")
    for switch in switches:
        if switch not in nst_settings.KNOBS or nst_settings.KNOBS[switch].kind is not bool:
            raise argparse.ArgumentTypeError(f"{switch!r} is not an on/off setting")
    return {"preset": preset, **{switch: True for switch in switches}}


def bench_pair(stylizer, evaluator, photo, painting, args):
    """Classic and every preset on one pair; print their lines; return (rows, figures, pictures)."""
    budgets = sorted(args.classic)
    line = Timeline(evaluator, photo, painting, math.gcd(*budgets))  # judged at every budget exactly
    snapshots = {}  # classic's 512-px image at each budget

    def on_progress(progress):
        line(progress)
        if progress.iteration in budgets:
            snapshots[progress.iteration] = progress.preview()

    settings = {"size": 512, "iterations": budgets[-1],
                "tv_weight": classic_tv_weight(*fit_size(*photo.size, 512))}
    stylizer.stylize(photo, painting, settings, on_progress=on_progress, recipe=CLASSIC)
    relit = (match_exposure(painting, mean_lightness(photo)) if any(preset_settings(name).get("preserve_exposure")
                                                    for name in args.presets) else None)

    def against_relit(picture):
        return "" if relit is None else \
            f"  style against the painting relit {evaluator.style_loss(picture, relit):.4g}"

    rows, figures, pictures = {}, {}, {}
    for n in budgets:
        name = f"classic@{n}"
        _, seconds, content, style = line.at(n)
        picture = snapshots[n].resize(photo.size, Image.Resampling.LANCZOS)  # as it would be delivered
        rows[name], figures[name], pictures[name] = ((seconds, content, style),
                                                     measure(picture, photo, painting), picture)
        print(figures_line(name, seconds, content, style, figures[name], picture)
              + against_relit(picture), flush=True)
    for name in args.presets:
        settings = preset_settings(name)
        start = time.perf_counter()
        result = stylizer.stylize(photo, painting, settings)
        seconds = time.perf_counter() - start
        content, style = evaluator.content_loss(result, photo), evaluator.style_loss(result, painting)
        rows[name], figures[name], pictures[name] = (seconds, content, style), measure(result, photo,
                                                                                        painting), result
        print(figures_line(name, seconds, content, style, figures[name], result)
              + against_relit(result), flush=True)
    return rows, figures, pictures


def summarize(all_rows, all_figures, args):
    median = statistics.median
    first, budget = args.presets[0], f"classic@{min(args.classic)}"
    print(f"\nmedians over {len(all_rows)} pairs (figures: {', '.join(Figures.__annotations__)}):")
    for name in all_figures[0]:
        values = [median(getattr(f[name], field) for f in all_figures) for field in Figures.__annotations__]
        print(f"  {name:<12} " + "  ".join(f"{v:.2f}" for v in values))
    content = [r[first][1] / r[budget][1] for r in all_rows]
    style = [r[first][2] / r[budget][2] for r in all_rows]
    seconds = [r[first][0] / r[budget][0] for r in all_rows]
    print(f"\n{first} against {budget}, per pair: content " + ", ".join(f"{v:.2f}x" for v in content)
          + "; style " + ", ".join(f"{v:.2f}x" for v in style)
          + "; time " + ", ".join(f"{v:.2f}x" for v in seconds)
          + " (targets: < 1, < 1, <= 0.33 on every pair)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pair", action="append", type=parse_pair, help="PHOTO=PAINTING (repeatable)")
    parser.add_argument("--size", type=int, default=1024,
                        help="the photos' long side (default 1024; 0: their own size, e.g. 20 MP)")
    parser.add_argument("--classic", type=lambda v: [int(n) for n in v.split(",")], default=[200],
                        help="the classic recipe's iteration budgets (default 200; 200,1000 for both)")
    parser.add_argument("--presets", type=preset_list, default=["balanced", "best"],
                        help="presets to run, the default first (default balanced,best); "
                        "balanced+preserve_exposure turns that setting on")
    parser.add_argument("--sheet", help="save photo | painting | classic | each preset here")
    parser.add_argument("--save", type=Path, help="save every result in this folder (PNG)")
    parser.add_argument("--crops", help="save 100 %% crops (CROP px at the centre) photo | each result here")
    args = parser.parse_args()
    stylizer = Stylizer()
    evaluator = Evaluator(stylizer, size=EVALUATION_SIZE)
    print(f"device {stylizer.device} ({stylizer.profile.dtype} convolutions; classic float32), "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, photos at {args.size} px, "
          f"evaluated at {EVALUATION_SIZE} px\n")
    all_rows, all_figures, sheet_rows, crop_rows = [], [], [], []
    for photo_path, painting_path in args.pair or default_pairs():
        photo = Image.open(photo_path).convert("RGB")
        if args.size:
            photo = photo.resize(fit_size(*photo.size, args.size), Image.Resampling.LANCZOS)
        painting = Image.open(painting_path).convert("RGB")
        print(f"{photo_path.name} ({photo.width}x{photo.height}, L* {mean_lightness(photo):.1f}) + "
              f"{painting_path.name} (L* {mean_lightness(painting):.1f}):", flush=True)
        rows, figures, pictures = bench_pair(stylizer, evaluator, photo, painting, args)
        all_rows.append(rows)
        all_figures.append(figures)
        sheet_rows.append([photo, painting, *pictures.values()])
        crop_rows.append([centre_crop(p.resize(photo.size, Image.Resampling.LANCZOS))
                          for p in (photo, *pictures.values())])
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            for name, picture in pictures.items():
                picture.save(args.save / result_name(photo_path, painting_path, name))
    summarize(all_rows, all_figures, args)
    classic_names = [f"classic@{n}" for n in sorted(args.classic)]
    if args.sheet:
        save_sheet(sheet_rows, ["photo", "painting", *classic_names, *args.presets], args.sheet,
                   height=320)
    if args.crops:
        save_sheet(crop_rows, ["photo", *classic_names, *args.presets], args.crops, height=CROP)


if __name__ == "__main__":
    main()
