"""The preset table (every recipe's values in one place) and the resolution of a user's settings
over it into a `Run`: everything one stylization needs to know, as typed fields.

`paper` is the published recipe this product starts from and the baseline of every benchmark.
`fast`, `balanced` and `best` were chosen by measurement (benchmarks/bench_engine.py, README).
"""
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from nst_contract import settings as nst_settings

from .device import CPU_WORKING_SIZE
from .errors import InputError
from .images import fit_size
from .vgg import CAFFE_UNITS, PAINTING_PADDING, Padding

# Layer names are the ReLU outputs. The paper recipe's "conv1_1 ... conv5_1, conv4_2" are read
# there after the in-place ReLU of torchvision's VGG, i.e. these same activations.
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"

Scales = tuple[tuple[float, float], ...]  # (fraction of the working size, share of the iterations)
# Where the image starts: the content, uniform noise, or the mean colour plus faint noise
# (neural-style's `-init random`: randn x 0.001 in Caffe's 0..255 units)
Init = Literal["content", "noise", "faint noise"]
Resolution = Literal["auto", "full"]  # see nst_settings.KNOBS["resolution"] and plans.py


@dataclass(frozen=True)
class Preset:
    optimizer: Literal["adam", "lbfgs"]
    lr: float
    iterations: int
    content_weight: float      # alpha
    style_weight: float        # beta
    tv_weight: float
    style_layers: Mapping[str, float]
    content_layers: Mapping[str, float] = field(default_factory=lambda: {CONTENT_LAYER: 1.0})
    style_term: Literal["normalized", "paper"] = "normalized"  # see losses.style_loss
    # "content": style resized to the content's exact shape; "long side": aspect kept, longest
    # side the content's
    style_shape: Literal["content", "long side"] = "long side"
    scales: Scales = ((1.0, 1.0),)
    # iterations of each detail scale above the working size (plans.py), finest last
    detail_iterations: tuple[int, ...] = (24, 20, 10)
    # A detail scale runs Adam at this rate (normalized units): L-BFGS without line search, from
    # the converged start, took a quasi-Newton step into noise and repainted the composition
    # (measured on the 20-MP photo, docs/design.md); Adam's steps are bounded, and its memory
    # is two image-sized buffers, not a history.
    detail_lr: float = 0.05
    size: int | None = None    # working size fixed by the recipe; None = the device's
    # True: run as published (a baseline): float32 convolutions on every device, the network's
    # zero padding, no L-BFGS divergence guard
    published: bool = False
    clamp: bool = True         # keep pixels in 0..1 after every step (the recipe does not)
    init: Init | None = None   # the recipe's own start; None: the user's `init`
    palette: bool = False      # start from the photo in the painting's colours
    history: int = 50          # L-BFGS steps remembered (fewer where memory is short)
    # True: the content layers other than CONTENT_LAYER take the painting's nearest features as
    # targets (neighbours.py; style_weight weighs them), and there is no Gram term
    neighbours: bool = False
    # True: the style weight follows the photo's detail (weighed_by_detail)
    weigh_by_detail: bool = False
    # The style layers of every level after the first (None: style_layers). See REFINE.
    refine_layers: Mapping[str, float] | None = None

    @property
    def padding(self) -> Padding:
        """The convolutions' border: the network's zeros as published, else the painter's."""
        return "zeros" if self.published else PAINTING_PADDING


EQUAL = dict.fromkeys(STYLE_LAYERS, 1.0)
# The first level sets the picture's large shapes with every style layer; the finer ones refine
# them without relu5_1, whose convolutions (conv4_3 to conv5_1) are a quarter of a pass and whose
# statistics the level below has set: measured on the storm and the night seascape, the finer
# level without it ended no worse on the evaluator's style loss (all five layers) nor on content,
# at 0.76x the cost (docs/benchmarks.md, "A quarter of a pass").
REFINE = dict.fromkeys(STYLE_LAYERS[:-1], 1.0)
# Style against content (the classic recipe's ratio, 100:5, is 20), for a photo whose detail is
# DETAIL_ENERGY: the mean square of its CONTENT_LAYER activations (Caffe units). A photo with less
# (a smooth storm sky, a night sky) has a content term that stays small even where its structure
# is painted over, so one weight for all let the painting take it over (Storm lost the classic
# recipe's content loss at every weight that kept the night seascape's style); one with more
# (grass, bark) resists more. So the weight scales by the photo's energy over DETAIL_ENERGY to
# the power DETAIL_POWER (weighed_by_detail; the four photos of benchmarks/bench_look.py:
# 1.0e5-3.2e5, weights 6.2-17.9 before the ceiling below), which beat classic@200 on both losses on all four
# (docs/benchmarks.md, "A quarter of a pass"; the square root, with more iterations, in "The
# style weight follows the photo"). The photo is seen at DETAIL_SIDE (or its own size if
# smaller), the CPU working size it was tuned at, so that every device weighs a photo alike.
# Outside DETAIL_RANGE the energy counts as the range's end: below, the span it was tuned on; above
# 2e5 the weight stops rising (11.6), since more only trades the photo's content for style
# the classic recipe does not reach anyway (Dune, 3.2e5: at 17.9 its content lost to classic@200
# on an AVX512 machine, whose L-BFGS path landed 8 % lower than on an AVX2 one; at 11.6 it beat
# it with style 0.82x, docs/benchmarks.md), and a 96-px thumbnail measures 1.5e6.
STYLE_WEIGHT = 10.0
DETAIL_ENERGY = 1.7e5
DETAIL_POWER = 0.9
DETAIL_SIDE = CPU_WORKING_SIZE
DETAIL_RANGE = (9e4, 2e5)
# Smoothness (the mean squared difference of neighbouring pixels, normalized units). At 1·10⁵
# the 512-px result of a 1024-px photo kept a fine pink-green grain and cross-hatch that the
# 2x scaling shows at 100 %; at 3·10⁵ the grain is gone, the strokes kept, and the fixed
# evaluator's style loss fell on all four photos of benchmarks/bench_look.py for 0.2-2 % of
# content: its relu4_1 term fell, relu2_1's (a tenth of it) rose — less of the finest texture,
# which the grain had been (docs/benchmarks.md, "Smoother").
# Lower weights raised it (the night seascape: 3·10⁴ 2434, 1·10⁵ 2306, 3·10⁵ 2065).
TV_WEIGHT = 3e5

PRESETS: dict[str, Preset] = {
    "paper": Preset(
        optimizer="adam", lr=0.003, iterations=500, content_weight=1.0, style_weight=1e3,
        tv_weight=0.0, style_term="paper", style_shape="content", size=256, published=True,
        clamp=False,
        style_layers=dict(zip(STYLE_LAYERS, (1.0, 0.75, 0.2, 0.2, 0.2)))),
    "fast": Preset(
        optimizer="lbfgs", lr=1.0, iterations=40, content_weight=1.0, style_weight=STYLE_WEIGHT,
        tv_weight=TV_WEIGHT, style_layers=EQUAL, refine_layers=REFINE, palette=True,
        weigh_by_detail=True,
        scales=((0.5, 0.3), (1.0, 0.7))),
    "balanced": Preset(
        optimizer="lbfgs", lr=1.0, iterations=110, content_weight=1.0, style_weight=STYLE_WEIGHT,
        tv_weight=TV_WEIGHT, style_layers=EQUAL, refine_layers=REFINE, palette=True,
        weigh_by_detail=True,  # steps of √2: less blur for the working size to recover than 2x
        scales=((0.5, 0.3), (0.7071, 0.32), (1.0, 0.38))),
    "best": Preset(
        optimizer="lbfgs", lr=1.0, iterations=300, content_weight=1.0, style_weight=STYLE_WEIGHT,
        tv_weight=TV_WEIGHT, style_layers=EQUAL, refine_layers=REFINE, palette=True,
        weigh_by_detail=True,
        scales=((0.25, 0.2), (0.5, 0.3), (1.0, 0.5))),
    # Adam, not L-BFGS: without line search L-BFGS climbed back out of its minimum into colour
    # confetti late in a 96-px run (loss 1.5 -> 5.0 over its last iterations); Adam settled lower.
    "painterly": Preset(
        optimizer="adam", lr=0.05, iterations=150, content_weight=0.1, style_weight=1.0,
        tv_weight=1.0, style_layers={}, neighbours=True, palette=True,
        content_layers=dict.fromkeys((CONTENT_LAYER, "relu2_1", "relu3_1", "relu4_1"), 1.0),
        scales=((0.25, 0.2), (0.5, 0.3), (1.0, 0.5))),
}


# jcjohnson/neural-style's defaults (2015), the classic recipe that benchmarks compare against,
# not offered to users: content 5 at relu4_2, style 100 on relu1_1..relu5_1 (its Gram / C·H·W and
# mean-squared criterion are our "normalized" term), L-BFGS with 100 corrections, faint-noise start,
# 512 px, no clamping. Its TV (strength 1e-3) is half the *sum* of squared neighbour differences in
# 0..255 units; ours is a mean in normalized units, hence a weight per pixel: see classic_tv_weight.
CLASSIC = Preset(
    optimizer="lbfgs", lr=1.0, iterations=1000, content_weight=5.0, style_weight=100.0,
    tv_weight=0.0, style_layers=EQUAL, init="faint noise", history=100, size=512, published=True,
    clamp=False)
CLASSIC_TV_STRENGTH = 1e-3


def classic_tv_weight(width: int, height: int) -> float:
    """neural-style's TV strength as our tv_weight at this size: 1e-3/2 · CAFFE_UNITS² per unit of
    squared difference, summed over the 3·w·h terms our mean divides by."""
    return CLASSIC_TV_STRENGTH / 2 * CAFFE_UNITS ** 2 * 3 * width * height


@dataclass(frozen=True)
class Run:
    """A preset with the user's settings applied."""
    preset: Preset
    size: int                  # working size: the longest side the preset's scales run at
    fixed_size: bool           # the size was set by the user or the recipe: `auto` keeps to it
    iterations: int
    content_weight: float
    style_weight: float
    tv_weight: float
    style_scale: float         # the painting's long side against the image's (neural-style's)
    preserve_colors: bool
    preserve_exposure: bool
    resolution: Resolution
    init: Init
    seed: int

    def working_size(self, content_size: tuple[int, int]) -> tuple[int, int]:
        """The photo at the working size: the finest scale before the detail scales, and the
        size the palette start is made at."""
        return fit_size(*content_size, self.size)


def resolve(settings: Mapping[str, Any], device_working_size: int,
            recipe: Preset | None = None, iteration_scale: float = 1.0) -> Run:
    """Validate the user's settings (nst_settings.KNOBS) and merge them over the chosen preset
    (or over `recipe`, a preset outside the table such as CLASSIC); a bad value raises
    InputError saying which and why. The preset's iterations are multiplied by the device's
    `iteration_scale` (DeviceProfile), a published recipe's and the user's own are not."""
    try:
        knobs = nst_settings.validate(dict(settings))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    preset = recipe or PRESETS[knobs["preset"]]

    def pick(name: str, preset_value: Any) -> Any:
        return preset_value if knobs[name] is None else knobs[name]

    return Run(
        preset=preset,
        size=pick("size", preset.size or device_working_size),
        fixed_size=knobs["size"] is not None or preset.size is not None,
        iterations=pick("iterations", preset.iterations if preset.published
                        else round(preset.iterations * iteration_scale)),
        content_weight=pick("content_weight", preset.content_weight),
        style_weight=preset.style_weight * knobs["strength"],
        tv_weight=pick("tv_weight", preset.tv_weight), style_scale=knobs["style_scale"],
        preserve_colors=knobs["preserve_colors"], preserve_exposure=knobs["preserve_exposure"],
        resolution=knobs["resolution"],
        init=preset.init or knobs["init"], seed=knobs["seed"])


def weighed_by_detail(run: Run, energy: float) -> Run:
    """`run` with its style weight scaled to the photo's detail `energy` (the mean square of its
    CONTENT_LAYER activations, the photo seen at DETAIL_SIDE; see STYLE_WEIGHT), for a preset
    that weighs by detail (the caller measures `energy` only then)."""
    energy = min(max(energy, DETAIL_RANGE[0]), DETAIL_RANGE[1])
    return replace(run, style_weight=run.style_weight * (energy / DETAIL_ENERGY) ** DETAIL_POWER)
