"""The preset table: every recipe's values in one place.

`paper` is the published recipe this product starts from and the baseline of every benchmark.
`fast`, `balanced` and `best` were chosen by measurement (benchmarks/bench_engine.py, README).
"""
from dataclasses import dataclass, field

# Layer names are the ReLU outputs. The paper recipe's "conv1_1 ... conv5_1, conv4_2" are read
# there after the in-place ReLU of torchvision's VGG, i.e. these same activations.
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"


@dataclass(frozen=True)
class Preset:
    optimizer: str             # "adam" or "lbfgs"
    lr: float
    iterations: int
    content_weight: float      # alpha
    style_weight: float        # beta
    tv_weight: float
    style_layers: dict
    content_layers: dict = field(default_factory=lambda: {CONTENT_LAYER: 1.0})
    style_term: str = "normalized"   # see losses.style_loss
    style_shape: str = "long side"   # "content": style resized to the content's exact shape;
                                     # "long side": aspect kept, longest side the content's
    scales: tuple = ((1.0, 1.0),)    # (fraction of the working size, share of the iterations)
    size: int = None                 # working size fixed by the recipe; None = the device's
    exact_fp32: bool = False         # True: float32 convolutions on every device, as published
    clamp: bool = True               # keep pixels in 0..1 after every step (the recipe does not)


EQUAL = dict.fromkeys(STYLE_LAYERS, 1.0)

PRESETS = {
    "paper": Preset(
        optimizer="adam", lr=0.003, iterations=500, content_weight=1.0, style_weight=1e3,
        tv_weight=0.0, style_term="paper", style_shape="content", size=256, exact_fp32=True, clamp=False,
        style_layers=dict(zip(STYLE_LAYERS, (1.0, 0.75, 0.2, 0.2, 0.2)))),
    "fast": Preset(
        optimizer="lbfgs", lr=1.0, iterations=40, content_weight=1.0, style_weight=2.0,
        tv_weight=5e5, style_layers=EQUAL, scales=((0.5, 0.3), (1.0, 0.7))),
    "balanced": Preset(
        optimizer="lbfgs", lr=1.0, iterations=80, content_weight=1.0, style_weight=2.0,
        tv_weight=5e5, style_layers=EQUAL, scales=((0.5, 0.3), (1.0, 0.7))),
    "best": Preset(
        optimizer="lbfgs", lr=1.0, iterations=300, content_weight=1.0, style_weight=2.0,
        tv_weight=5e5, style_layers=EQUAL, scales=((0.25, 0.2), (0.5, 0.3), (1.0, 0.5))),
}
