"""A fixed yardstick for results, independent of any preset's weights.

The engine's VGG19 weights as trained (zero padding, whatever the engine paints with), float32,
at a fixed evaluation size: style loss is the mean over
relu1_1..relu5_1 (equal weights) of the squared difference of Grams normalized by C*H*W; content
loss is the mean squared difference of relu4_2 activations. Used by the benchmark and by tests.
The style loss can also be taken over the interior alone: the positions the padding does not
reach, so the same whatever the network pads with (benchmarks/bench_padding.py).
"""
import math

import numpy as np
import torch
from PIL import Image

from .images import as_pil, fit_size, image_digest, lab_pixels, split_alpha, to_tensor
from .losses import gram
from .presets import CONTENT_LAYER, STYLE_LAYERS
from .vgg import layer_sequence, load_vgg19, normalize

EVALUATION_SIZE = 256


def _padding_reach() -> dict[str, int]:
    """Per style layer, how many positions in from each edge see the convolutions' padding: each
    3x3 convolution reaches one further in, each 2x2 pooling halves the reach (rounding up)."""
    reach, out = 0, {}
    for name in layer_sequence():
        if name.startswith("conv"):
            reach += 1
        elif name.startswith("pool"):
            reach = math.ceil(reach / 2)
        elif name in STYLE_LAYERS:
            out[name] = reach
    return out


PADDING_REACH = _padding_reach()


class Evaluator:
    def __init__(self, stylizer, size=EVALUATION_SIZE, padding="zeros"):
        """`padding`: the fixed yardstick's zeros, or the engine's (to see what it optimizes)."""
        self.device, self.size = stylizer.device, size
        self.vgg = load_vgg19(stylizer.weights, padding=padding).to(self.device).eval()
        self._style_cache = {}

    def style_loss(self, image, style, interior=False):
        """`interior`: the Grams over each layer's positions the padding does not reach."""
        ours, theirs = self._grams(image, interior), self._style_grams(style, interior)
        return sum(float(torch.mean((ours[n] - theirs[n]) ** 2)) for n in STYLE_LAYERS) / len(STYLE_LAYERS)

    def content_loss(self, image, content):
        rgb = self._rgb(content)
        ours = self._features(self._rgb(image), [CONTENT_LAYER], rgb.size)
        theirs = self._features(rgb, [CONTENT_LAYER], rgb.size)
        return float(torch.mean((ours[CONTENT_LAYER] - theirs[CONTENT_LAYER]) ** 2))

    def _style_grams(self, style, interior):
        """The style's Grams, computed once per style image (benchmarks evaluate often)."""
        key = (image_digest(as_pil(style)), interior)
        if key not in self._style_cache:
            self._style_cache[key] = self._grams(style, interior)
        return self._style_cache[key]

    def _grams(self, image, interior):
        rgb = self._rgb(image)
        features = self._features(rgb, STYLE_LAYERS, rgb.size)
        if interior:
            if min(features["relu5_1"].shape[-2:]) <= 2 * PADDING_REACH["relu5_1"]:
                raise ValueError(f"{rgb.size} has no interior at relu5_1: evaluate larger")
            features = {n: _inside(f, PADDING_REACH[n]) for n, f in features.items()}
        return {n: gram(f) for n, f in features.items()}

    def _rgb(self, image):
        rgb, _ = split_alpha(as_pil(image))
        size = fit_size(rgb.width, rgb.height, self.size)
        return rgb if rgb.size == size else rgb.resize(size, Image.Resampling.LANCZOS)

    @torch.no_grad()
    def _features(self, rgb, layers, size):
        rgb = rgb if rgb.size == size else rgb.resize(size, Image.Resampling.LANCZOS)
        return self.vgg(normalize(to_tensor(rgb).to(self.device)), list(layers))


def _inside(features, margin):
    """A [1, c, h, w] map without `margin` positions along each edge."""
    return features[..., margin:-margin, margin:-margin]


def palette_distance(image, painting, directions=64, samples=20000, seed=0):
    """How far `image`'s colours are from the painting's: the sliced Wasserstein-1 distance
    between their pixel distributions in CIE Lab (Pillow's units: L 0..255), over random
    directions; 0 = the same palette."""
    rng = np.random.default_rng(seed)
    ours, theirs = (lab_pixels(split_alpha(as_pil(i))[0]) for i in (image, painting))
    ours, theirs = (p[rng.choice(len(p), samples)] for p in (ours, theirs))
    axes = rng.normal(size=(directions, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    return float(np.mean(np.abs(np.sort(ours @ axes.T, axis=0) - np.sort(theirs @ axes.T, axis=0))))
