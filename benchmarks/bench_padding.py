"""Where a style loss is decided: the saved results of bench_look.py judged with the evaluator's
network padded by zeros (the fixed yardstick, as trained), by mirroring (as the painting model
pads), and over the interior alone (each layer's positions whose view never reaches the padding,
the same under both). See docs/benchmarks.md, "The sea's style is decided in the band along the
edges".

    python benchmarks/bench_look.py --save DIR ...
    python benchmarks/bench_padding.py DIR

A result is named by bench_look.result_name; its painting is PAINTING.* in
--paintings (default ../shared/styles).
"""
import argparse
import sys
from pathlib import Path

from PIL import Image

from nst_server.engine import Stylizer
from nst_server.engine.evaluate import PADDING_REACH, Evaluator

sys.path.insert(0, str(Path(__file__).parent))
from bench_engine import SHARED_STYLES  # noqa: E402
from bench_look import EVALUATION_SIZE, painting_stem  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", type=Path, help="bench_look.py's --save folder")
    parser.add_argument("--paintings", type=Path, default=SHARED_STYLES)
    args = parser.parse_args()
    stylizer = Stylizer()
    evaluators = {p: Evaluator(stylizer, size=EVALUATION_SIZE, padding=p) for p in ("zeros", "mirror")}
    print(f"style loss at {EVALUATION_SIZE} px; interior: {PADDING_REACH} positions in from each edge\n")
    print(f"{'result':<52} {'zeros':>9} {'mirror':>9} {'interior':>9}")
    for path in sorted(args.results.glob("*.png")):
        stem = painting_stem(path)
        paintings = sorted(args.paintings.glob(f"{stem}.*"))
        if not paintings:
            print(f"{path.name}: no painting {stem}.* in {args.paintings}")
            continue
        image, painting = (Image.open(p).convert("RGB") for p in (path, paintings[0]))
        losses = [evaluators["zeros"].style_loss(image, painting),
                  evaluators["mirror"].style_loss(image, painting),
                  evaluators["zeros"].style_loss(image, painting, interior=True)]
        print(f"{path.stem:<52} " + " ".join(f"{v:9.0f}" for v in losses), flush=True)


if __name__ == "__main__":
    main()
