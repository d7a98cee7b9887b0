"""The stylization engine: Gatys et al.'s optimization of the image itself, read top to bottom.

    stylizer = Stylizer()                      # loads VGG19 once
    result = stylizer.stylize(content, style, {"preset": "balanced"},
                              on_progress=print, should_stop=lambda: False)

The image is optimized in ImageNet-normalized RGB space at a working size (coarse to fine over
the preset's scales), then resampled back to the content's size; alpha is re-attached unchanged.
"""
import copy
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from .device import profile_for, release_memory, select_device
from .errors import Stopped
from .images import (MIN_SIDE, ImageInput, as_pil, fit_size, image_digest, luminance_rgb,
                     match_luminance, recolor, split_alpha, to_pil, to_tensor)
from .losses import content_loss, gram, style_loss, tv_loss
from .presets import Preset, Run, Scales, resolve
from .vgg import VGG19Features, denormalize, load_vgg19, normalize

STYLE_CACHE_ENTRIES = 16  # each holds five ByLayer, at most ~2.7 MB


ByLayer = dict[str, torch.Tensor]  # activations or Grams, by layer name


@dataclass(frozen=True)
class Progress:
    """What `on_progress` gets after every iteration."""
    iteration: int
    total: int
    elapsed: float                      # seconds since the optimization started
    losses: dict[str, float]            # "content", "style", "tv", "total" (weighted sum)
    preview: Callable[[], Image.Image]  # the current result at the working size, as PIL RGB


class Stylizer:
    """Owns the VGG19 model (loaded once) and a bounded cache of style ByLayer."""

    def __init__(self, weights: str = "original", device: str | None = None, load: bool = True):
        """`load`: now; otherwise at the first use (see load(), unload())."""
        self.weights = weights
        self.profile = profile_for(select_device(device))
        self.device = self.profile.device
        self._vgg: VGG19Features | None = None
        self._vgg_variants: dict[torch.dtype, VGG19Features] = {}
        self._style_cache: OrderedDict[tuple, ByLayer] = OrderedDict()
        self._cache_stats = {"hits": 0, "misses": 0}

        if load:
            self.load()

    @property
    def vgg(self) -> VGG19Features:
        """The float32 master copy of the model, loaded on first use."""
        if self._vgg is None:
            self.load()
        assert self._vgg is not None
        return self._vgg

    @property
    def loaded(self) -> bool:
        return self._vgg is not None

    def load(self) -> None:
        """Load the weights onto the device (InputError if they cannot be used)."""
        self._vgg = load_vgg19(self.weights).to(self.device).eval()

    def unload(self) -> None:
        """Free the model, its variants and the style cache (an idle server's memory); the next
        use loads it again."""
        self._vgg = None
        self._vgg_variants.clear()
        self._style_cache.clear()
        release_memory(self.device)

    def style_cache_info(self) -> dict[str, int]:
        return dict(self._cache_stats, size=len(self._style_cache))

    def stylize(self, content: ImageInput, style: ImageInput,
                settings: Mapping[str, Any] | None = None, *,
                on_progress: Callable[[Progress], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> Image.Image:
        """Return `content` repainted in the style of `style`, at the content's size and with its
        alpha. `settings`: nst_settings.KNOBS names (a bad one raises InputError).
        `should_stop()` is polled before every iteration; once true, Stopped is raised."""
        run = resolve(settings or {}, self.profile.working_size)
        content_rgb, alpha = split_alpha(as_pil(content))
        style_rgb, _ = split_alpha(as_pil(style))
        if run.preserve_colors:
            style_rgb = match_luminance(style_rgb, content_rgb)
        work = self._optimize(content_rgb, style_rgb, run, on_progress, should_stop)
        return finish(work, content_rgb, alpha, run.preserve_colors)

    # -- the optimization ------------------------------------------------------------------------

    def _optimize(self, content: Image.Image, style: Image.Image, run: Run,
                  on_progress: Callable[[Progress], None] | None,
                  should_stop: Callable[[], bool] | None) -> Image.Image:
        """Coarse to fine over the preset's scales; return the working-size result."""
        vgg = self._model(torch.float32 if run.preset.exact_fp32 else self.profile.dtype)
        colour_source = content
        if run.preserve_colors:
            content = luminance_rgb(content)
        full = fit_size(content.width, content.height, run.size)
        style_key = image_digest(style)
        start, done, x = time.perf_counter(), 0, None
        for fraction, steps in iteration_schedule(run.preset.scales, run.iterations):
            shape = (max(MIN_SIDE, round(full[0] * fraction)), max(MIN_SIDE, round(full[1] * fraction)))
            target = self._model_input(content, shape)
            objective = Objective(vgg, run, self._content_features(target, run.preset, vgg),
                                  self._style_grams(style, style_key, shape, run.preset, vgg))
            x = self._initial(target, x, run)
            optimizer = make_optimizer(run.preset, x)
            for _ in range(steps):
                if should_stop is not None and should_stop():
                    raise Stopped("stopped on request")
                losses = objective.step(optimizer, x)
                done += 1
                if on_progress is not None:
                    preview = partial(self._preview, x.detach().clone(), colour_source, run)
                    on_progress(Progress(done, run.iterations, time.perf_counter() - start, losses,
                                         preview))
        return to_pil(denormalize(x))

    @staticmethod
    def _preview(x: torch.Tensor, content: Image.Image, run: Run) -> Image.Image:
        """The current image as the user will get it (colour recombined), at the working size."""
        image = to_pil(denormalize(x))
        if run.preserve_colors:
            image = recolor(image, content.resize(image.size, Image.Resampling.LANCZOS))
        return image

    @staticmethod
    def _content_features(target: torch.Tensor, preset: Preset, vgg: VGG19Features) -> ByLayer:
        with torch.no_grad():
            return {n: f.float() for n, f in vgg(target, list(preset.content_layers)).items()}

    def _initial(self, target: torch.Tensor, previous: torch.Tensor | None, run: Run) -> torch.Tensor:
        """Content (or seeded noise) at the first scale; the upsampled result at later ones."""
        if previous is not None:
            x = F.interpolate(previous.detach(), size=target.shape[-2:], mode="bicubic",
                              align_corners=False)
        elif run.init == "noise":
            generator = torch.Generator().manual_seed(run.seed)
            noise = torch.rand(target.shape, generator=generator)
            x = normalize(noise.to(self.device))
        else:
            x = target.clone()
        return x.requires_grad_(True)

    def _style_grams(self, style: Image.Image, style_key: str, shape: tuple[int, int],
                     preset: Preset, vgg: VGG19Features) -> ByLayer:
        """Style ByLayer at the size matching `shape`, from the bounded LRU cache when possible."""
        size = shape if preset.style_shape == "content" else fit_size(*style.size, max(shape))
        key = (style_key, size, tuple(preset.style_layers), vgg.dtype)
        if key in self._style_cache:
            self._cache_stats["hits"] += 1
            self._style_cache.move_to_end(key)
            return self._style_cache[key]
        self._cache_stats["misses"] += 1
        with torch.no_grad():
            feats = vgg(self._model_input(style, size), list(preset.style_layers))
            grams = {name: gram(f) for name, f in feats.items()}
        self._style_cache[key] = grams
        if len(self._style_cache) > STYLE_CACHE_ENTRIES:
            self._style_cache.popitem(last=False)
        return grams

    # -- device and tensor helpers ---------------------------------------------------------------

    def _model(self, dtype: torch.dtype) -> VGG19Features:
        """The VGG in `dtype` and this device's memory layout (each variant built once)."""
        if dtype not in self._vgg_variants:
            model = self.vgg
            if dtype != torch.float32 or self.profile.channels_last:
                model = copy.deepcopy(self.vgg).to(dtype)
            if self.profile.channels_last:
                model = model.to(memory_format=torch.channels_last)
                model.channels_last = True
            self._vgg_variants[dtype] = model
        return self._vgg_variants[dtype]

    def _model_input(self, image: Image.Image, size: tuple[int, int]) -> torch.Tensor:
        """`image` resized to `size`, as the model's normalized input tensor on this device."""
        resized = image if image.size == tuple(size) else image.resize(size, Image.Resampling.LANCZOS)
        return normalize(to_tensor(resized).to(self.device))


class Objective:
    """The loss of one scale: weighted content, style and total-variation terms."""

    def __init__(self, vgg: VGG19Features, run: Run, content_features: ByLayer, style_grams: ByLayer):
        self.vgg, self.run = vgg, run
        self.content_features, self.style_grams = content_features, style_grams

    def step(self, optimizer: torch.optim.Optimizer, x: torch.Tensor) -> dict[str, float]:
        """One optimizer iteration (one forward + backward); return the losses it saw."""
        losses: dict[str, float] = {}

        def closure() -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            preset, run = self.run.preset, self.run
            feats = self.vgg(x, run.layers)
            terms = {"content": content_loss(feats, self.content_features, preset.content_layers),
                     "style": style_loss(feats, self.style_grams, preset.style_layers,
                                         preset.style_term),
                     "tv": tv_loss(x)}
            total = (run.content_weight * terms["content"] + run.style_weight * terms["style"]
                     + run.tv_weight * terms["tv"])
            total.backward()
            losses.update({k: float(v.detach()) for k, v in terms.items()})
            losses["total"] = float(total.detach())
            return total

        optimizer.step(closure)  # type: ignore[arg-type]  # torch's stub says float; Tensor works
        if self.run.preset.clamp:
            with torch.no_grad():  # stay a real image: clipping later would undo the style
                x.copy_(normalize(denormalize(x).clamp(0, 1)))
        return losses


# -- the schedule and the optimizer ---------------------------------------------------------------

def iteration_schedule(scales: Scales, iterations: int) -> list[tuple[float, int]]:
    """Split `iterations` over the scales by their shares; the finest scale gets the remainder."""
    counts = [int(iterations * share) for _, share in scales[:-1]]
    counts.append(iterations - sum(counts))
    return [(fraction, n) for (fraction, _), n in zip(scales, counts) if n > 0]


def make_optimizer(preset: Preset, x: torch.Tensor) -> torch.optim.Optimizer:
    if preset.optimizer == "adam":
        return torch.optim.Adam([x], lr=preset.lr)
    # One function evaluation per step and no line search, as in Gatys/Johnson's neural-style:
    # the step is the iteration the user sees and can cancel after.
    return torch.optim.LBFGS([x], lr=preset.lr, max_iter=1, history_size=50,
                             tolerance_grad=0.0, tolerance_change=0.0)


# -- the result ---------------------------------------------------------------------------------

def finish(work: Image.Image, content: Image.Image, alpha: Image.Image | None,
           preserve_colors: bool) -> Image.Image:
    """Resample the working-size result to the content's size; with preserve_colors, combine its
    luminance with the content's own colour at full resolution; re-attach alpha."""
    result = work if work.size == content.size else work.resize(content.size, Image.Resampling.LANCZOS)
    if preserve_colors:
        result = recolor(result, content)
    if alpha is not None:
        result.putalpha(alpha)
    return result
