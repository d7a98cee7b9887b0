"""Regions on real pairs: a photo split at its horizon, the sky in one painting and the ground in
another, against each painting alone over the whole photo, in one process.

    bash benchmarks/get_photos.sh
    python benchmarks/bench_regions.py [--size 768] [--sheet docs/images/regions.jpg]

Per region it prints the evaluator's style loss of the region (a crop clear of the boundary)
against its own painting, as the regions run painted it and as the single-painting run did
(target: at most 1.2x), and against the other painting (target: at least 2x its own).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from nst_server.engine import Stylizer
from nst_server.engine.evaluate import Evaluator
from nst_server.engine.regions import Regions

sys.path.insert(0, str(Path(__file__).parent))
from bench_engine import SHARED_STYLES  # noqa: E402
from bench_look import PHOTOS  # noqa: E402

# photo, the horizon's height (share of the picture from the top), sky's painting, ground's
PAIRS = (("mate/nature/Storm.jpg", 0.52, "wave.jpg", "composition_vii.jpg"),
         ("mate/nature/Dune.jpg", 0.45, "udnie.jpg", "wave.jpg"))
MARGIN = 0.08  # of the height: the crops stay this far from the horizon


def crops(size, horizon):
    """(sky, ground) boxes clear of the horizon."""
    width, height = size
    line = round(horizon * height)
    margin = round(MARGIN * height)
    return (0, 0, width, line - margin), (0, line + margin, width, height)


def bench_pair(stylizer, evaluator, photo, horizon, paintings):
    labels = np.zeros((photo.height, photo.width), np.uint8)
    labels[round(horizon * photo.height):] = 1
    started = time.perf_counter()
    painted = stylizer.stylize(photo, paintings, regions=Regions(labels, (0, 1)))
    seconds = time.perf_counter() - started
    alone = [stylizer.stylize(photo, painting) for painting in paintings]
    lines, ok = [f"  regions run {seconds:.0f} s"], True
    for index, (name, box) in enumerate(zip(("sky", "ground"), crops(photo.size, horizon))):
        own, other = paintings[index], paintings[1 - index]
        ours = evaluator.style_loss(painted.crop(box), own)
        single = evaluator.style_loss(alone[index].crop(box), own)
        against = evaluator.style_loss(painted.crop(box), other)
        ok &= ours <= 1.2 * single and against >= 2 * ours
        lines.append(f"  {name}: own painting {ours:.4g} (alone {single:.4g}: "
                     f"{ours / single:.2f}x), the other painting {against:.4g} "
                     f"({against / ours:.1f}x its own)")
    return lines, ok, [photo, painted, *alone]


def save_sheet(rows, path, side=300, gap=8):
    shown = [[picture.copy() for picture in pictures] for pictures in rows]
    for pictures in shown:
        for picture in pictures:
            picture.thumbnail((side, side))
    heights = [max(p.height for p in pictures) for pictures in shown]
    sheet = Image.new("RGB", (4 * (side + gap), sum(h + gap for h in heights)), "white")
    top = 0
    for pictures, height in zip(shown, heights):
        for column, picture in enumerate(pictures):
            sheet.paste(picture, (column * (side + gap), top))
        top += height + gap
    sheet.save(path, quality=90)
    print(f"sheet: {path} (per row: photo | regions | sky's painting alone | ground's alone)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=768, help="the photos' longest side")
    parser.add_argument("--sheet", help="save photo | regions | each painting alone here")
    args = parser.parse_args()
    stylizer = Stylizer()
    evaluator = Evaluator(stylizer, size=512)
    rows, passed = [], True
    for photo_name, horizon, sky, ground in PAIRS:
        photo = Image.open(PHOTOS / photo_name).convert("RGB")
        photo.thumbnail((args.size, args.size))
        paintings = [Image.open(SHARED_STYLES / name).convert("RGB") for name in (sky, ground)]
        print(f"{photo_name} ({photo.width}x{photo.height}): sky {sky}, ground {ground}, "
              f"default settings, {stylizer.device.type}", flush=True)
        lines, ok, pictures = bench_pair(stylizer, evaluator, photo, horizon, paintings)
        print("\n".join(lines), flush=True)
        passed &= ok
        rows.append(pictures)
    print("targets met" if passed else "targets NOT met")
    if args.sheet:
        save_sheet(rows, args.sheet)


if __name__ == "__main__":
    main()
