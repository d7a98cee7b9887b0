"""Where a full-size run's memory goes: peak RSS per phase of the finest scale, on a real photo.

    python benchmarks/bench_memory.py PHOTO [PAINTING] [--megapixels N] [--iterations 2]

Builds the finest scale of `resolution: full` as the engine does (content targets, the
painting's Grams, the anchor, the start upsampled from the photo at the scale below) and runs a
few of its iterations, printing after each phase the peak resident memory since the last phase
and what is resident now (Linux: it resets the peak through /proc/self/clear_refs). Phases: the
target, the content features, the style targets, the start, then per iteration the main
evaluation's block passes, the anchor's, and the step (total variation, optimizer, clip).
"""
import argparse
import os
import sys
import time

from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from benchmarks.bench_resolution import STYLES, load_photo  # noqa: E402
from nst_server.engine import objective  # noqa: E402
from nst_server.engine.device import freed_buffers_returned  # noqa: E402
from nst_server.engine import Stylizer  # noqa: E402
from nst_server.engine.levels import RunInputs, anchor, initial, weights_of  # noqa: E402
from nst_server.engine.optimizers import make_optimizer  # noqa: E402
from nst_server.engine.images import image_digest  # noqa: E402
from nst_server.engine.plans import Level, plan  # noqa: E402
from nst_server.engine.presets import Run  # noqa: E402


class Phases:
    """Peak and current RSS between calls to `mark`."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def mark(self, name: str) -> None:
        status = open("/proc/self/status").read()

        def gib(key: str) -> float:
            return int(status.split(key + ":")[1].split()[0]) / 2**20
        print(f"{name:34s} peak {gib('VmHWM'):5.2f} GiB  now {gib('VmRSS'):5.2f} GiB  "
              f"({time.perf_counter() - self.start:.0f} s)", flush=True)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak
        self.start = time.perf_counter()

    def around(self, owner: type, method: str, name: str) -> None:
        """Mark a phase each time owner.method returns."""
        inner = getattr(owner, method)

        def marked(*args, **kwargs):
            result = inner(*args, **kwargs)
            self.mark(name)
            return result
        setattr(owner, method, marked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("photo")
    parser.add_argument("painting", nargs="?", default=os.path.join(STYLES, "wave.jpg"))
    parser.add_argument("--megapixels", type=float)
    parser.add_argument("--iterations", type=int, default=2)
    args = parser.parse_args()
    photo = load_photo(args.photo, args.megapixels)
    painting = Image.open(args.painting).convert("RGB")
    phases = Phases()
    stylizer = Stylizer()
    run = stylizer.resolve({"resolution": "full"})
    level = plan(run, photo.size, stylizer.profile)[-1]
    assert level.anchor_size is not None, "the photo is no larger than the working size"
    print(f"finest scale {level.size}, {len(level.blocks)} blocks; anchor {level.anchor_size}")
    phases.mark("model loaded")
    with freed_buffers_returned(len(level.blocks) > 1):  # as the engine runs the level
        finest_scale(stylizer, run, level, photo, painting, phases, args.iterations)


def finest_scale(stylizer: Stylizer, run: Run, level: Level, photo: Image.Image,
                 painting: Image.Image, phases: Phases, iterations: int) -> None:
    vgg = stylizer.models.variant(stylizer.profile.dtype)
    styles = [(painting, image_digest(painting), 1.0)]
    job = RunInputs(vgg, photo, styles, run, None, None, stylizer.models, stylizer.targets)
    target = stylizer.models.input(photo, level.size)
    phases.mark("content image")
    features = objective.features_by_block(vgg, target, list(run.preset.content_layers),
                                           list(level.blocks))
    phases.mark("content features")
    grams = stylizer.targets.blended(styles, level.size, run, vgg)
    below = anchor(job, level)
    phases.mark("style targets and anchor")
    loss = objective.Objective(vgg, weights_of(run), features, grams, list(level.blocks), below)
    assert level.anchor_size is not None
    x = initial(job, target, stylizer.models.input(photo, level.anchor_size))
    del target
    phases.mark("start")
    optimizer = make_optimizer(run.preset, x, stylizer.profile.optimizer_bytes, detail=True)
    phases.around(objective.Objective, "_two_passes", "  block passes (main, then anchor)")
    phases.around(objective.Anchor, "evaluate", "  anchor's gradient added")
    for i in range(iterations):
        loss.step(optimizer, x, run.preset.clamp)
        phases.mark(f"iteration {i + 1}: step (TV, Adam, clip)")


if __name__ == "__main__":
    main()
