"""The plan of one run: the scales it optimizes at, coarse to fine, with their iterations and
blocks, and the work each costs (what progress and the server's cost limit count).

Coarse scales are the preset's, over the working size: they set the composition and the stroke
layout. Above the working size come detail scales up to the run's target (the layer's own size,
or the device's cap for `resolution: auto`), each half the next (detail_sides): each starts from the
upsampled, converged result of the scale below and adds detail at its own resolution
(Gatys et al. 2016, "Controlling Perceptual Factors"; SPST's coarse-to-fine schedule), while
keeping the style that scale set: its anchor (objective.Anchor).
"""
from dataclasses import dataclass

from .device import DeviceProfile
from .images import MIN_SIDE, fit_size
from .objective import Block, split
from .presets import Run, Scales

# A coarse scale smaller than this has too little for VGG19 to see (relu5_1 is 1/16 of it) and,
# measured, made L-BFGS diverge into colour confetti on 64-px layers: its iterations go to the
# next scale instead.
MIN_COARSE_SIDE = 64
# Forward + backward of a block costs ~3 forwards; the first (statistics) pass of a multi-block
# evaluation adds one: 4/3 the work of one pass over the same pixels.
TWO_PASS_WORK = 4 / 3


@dataclass(frozen=True)
class Level:
    size: tuple[int, int]  # (width, height) of the image optimized at this scale
    iterations: int
    blocks: tuple[Block, ...]
    # A detail scale also keeps the style of the scale below, seen at its size (objective.Anchor)
    anchor_size: tuple[int, int] | None = None
    anchor_blocks: tuple[Block, ...] = ()

    @property
    def work(self) -> float:
        """Pixels the VGG processes over this level's iterations (halos included)."""
        return (_seen(self.blocks) + _seen(self.anchor_blocks)) * self.iterations


def _seen(blocks: tuple[Block, ...]) -> float:
    """Pixels one evaluation over `blocks` processes."""
    pixels = sum((b.padded[1] - b.padded[0]) * (b.padded[3] - b.padded[2]) for b in blocks)
    return pixels * (TWO_PASS_WORK if len(blocks) > 1 else 1.0)


def plan(run: Run, content_size: tuple[int, int], profile: DeviceProfile) -> list[Level]:
    """The levels of `run` on a content image of `content_size` (width, height)."""
    base = run.working_size(content_size)
    sizes: list[tuple[tuple[int, int], int]] = []
    carried = 0
    schedule = iteration_schedule(run.preset.scales, run.iterations)
    for index, (fraction, n) in enumerate(schedule):
        size = _scaled(base, fraction)
        if max(size) < MIN_COARSE_SIDE and index < len(schedule) - 1:
            carried += n
            continue
        sizes.append((size, n + carried))
        carried = 0
    if run.resolution == "full":
        target = content_size
    elif run.fixed_size:
        target = base
    else:
        target = fit_size(*content_size, max(profile.detail_side or max(content_size), run.size))
    coarse = len(sizes)
    sides = detail_sides(max(base), max(target))
    sizes += [(fit_size(*target, side), n) for side, n in zip(sides, detail_iterations(run))]
    return [_level(size, n, sizes[i - 1][0] if i >= coarse else None, profile.block_pixels)
            for i, (size, n) in enumerate(sizes)]


def _level(size: tuple[int, int], iterations: int, anchor_size: tuple[int, int] | None,
           block_pixels: int) -> Level:
    def blocks(s: tuple[int, int]) -> tuple[Block, ...]:
        return tuple(split(s[1], s[0], block_pixels))
    return Level(size, iterations, blocks(size), anchor_size,
                 blocks(anchor_size) if anchor_size else ())


def detail_sides(base: int, target: int) -> list[int]:
    """Longest sides of the detail scales from `base` up to `target`: the target halved until
    the next halving would not exceed the base (SPST's ladder). Every detail scale is then
    twice its anchor (to the pixel), and the odd ratio, if any, falls on the cheapest step."""
    sides: list[int] = []
    side = target
    while side > base:
        sides.insert(0, side)
        side = -(-side // 2)
    return sides


def detail_iterations(run: Run) -> list[int]:
    """Iterations of each detail scale, finest last: the preset's list, its last entry repeated
    for as many doublings as a 64x larger layer would need; scaled like the user's iterations
    scale the preset's."""
    table = run.preset.detail_iterations
    scale = run.iterations / run.preset.iterations
    return [max(1, round(n * scale)) for n in (*table, *[table[-1]] * 6)]


def iteration_schedule(scales: Scales, iterations: int) -> list[tuple[float, int]]:
    """Split `iterations` over the scales by their shares; the finest scale gets the remainder."""
    counts = [int(iterations * share) for _, share in scales[:-1]]
    counts.append(iterations - sum(counts))
    return [(fraction, n) for (fraction, _), n in zip(scales, counts) if n > 0]


def _scaled(size: tuple[int, int], fraction: float) -> tuple[int, int]:
    return max(MIN_SIDE, round(size[0] * fraction)), max(MIN_SIDE, round(size[1] * fraction))
