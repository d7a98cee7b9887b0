"""What the style term matches: the paintings' Gram matrices at the size each is seen at beside
the image, kept in a bounded LRU cache (a preview, a second run, the next scale reuse them)."""
from collections import OrderedDict

import torch
from PIL import Image

from .images import MIN_SIDE, fit_size
from .models import Models
from .objective import ByLayer, grams_by_block, split
from .presets import Run
from .vgg import VGG19Features

CACHE_ENTRIES = 16  # each holds five ByLayer, at most ~2.7 MB
KeyedStyles = list[tuple[Image.Image, str, float]]  # paintings, their cache keys, their shares


class StyleTargets:
    def __init__(self, models: Models):
        self.models = models
        self._cache: OrderedDict[tuple, ByLayer] = OrderedDict()
        self._stats = {"hits": 0, "misses": 0}

    def info(self) -> dict[str, int]:
        return dict(self._stats, size=len(self._cache))

    def clear(self) -> None:
        self._cache.clear()

    def blended(self, styles: KeyedStyles, size: tuple[int, int], run: Run,
                vgg: VGG19Features) -> ByLayer:
        """The Grams to match: one painting's, or the paintings' mixed by their shares (the
        weighted sum of Gram losses is, up to a constant, the loss against the weighted Grams)."""
        grams = [(self.grams(image, key, size, run, vgg), share) for image, key, share in styles]
        if len(grams) == 1:
            return grams[0][0]
        return {name: torch.stack([share * g[name] for g, share in grams]).sum(0)
                for name in grams[0][0]}

    def grams(self, style: Image.Image, style_key: str, image_size: tuple[int, int], run: Run,
              vgg: VGG19Features) -> ByLayer:
        """The style's Grams at the size style_size gives beside an image of `image_size`, from
        the cache when possible."""
        layers = list(run.preset.style_layers)
        size = style_size(style.size, image_size, run)
        key = (style_key, size, tuple(layers), vgg.dtype, vgg.padding)
        if key in self._cache:
            self._stats["hits"] += 1
            self._cache.move_to_end(key)
            return self._cache[key]
        self._stats["misses"] += 1
        blocks = split(size[1], size[0], self.models.profile.block_pixels)
        grams, _ = grams_by_block(vgg, self.models.input(style, size), layers, blocks)
        self._cache[key] = grams
        if len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return grams


def style_size(painting: tuple[int, int], image: tuple[int, int], run: Run) -> tuple[int, int]:
    """The size the painting is seen at beside an image of size `image`: its long side the
    image's times the brush size (`style_scale`), aspect kept, or the image's exact shape times
    it for recipes that ask so; never above the painting's own pixels (a detail scale larger
    than the painting matches its strokes at their own resolution)."""
    if run.preset.style_shape == "content":
        return (max(MIN_SIDE, round(image[0] * run.style_scale)),
                max(MIN_SIDE, round(image[1] * run.style_scale)))
    return fit_size(*painting, max(MIN_SIDE, round(max(image) * run.style_scale)))
