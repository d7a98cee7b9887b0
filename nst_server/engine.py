"""The stylization engine: Gatys et al.'s optimization of the image itself, read top to bottom.

    stylizer = Stylizer()                      # loads VGG19 once
    result = stylizer.stylize(content, style, {"preset": "balanced"},
                              on_progress=print, should_stop=lambda: False)

The image is optimized in ImageNet-normalized RGB space, coarse to fine over the run's plan
(plans.py: the preset's scales over the working size, then detail scales up to the layer's own
size where the device or the user asks for it), then resampled to the content's size if the
finest level is smaller; alpha is re-attached unchanged.
"""
import copy
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from neural_style import nst_settings
from neural_style.nst_protocol import MAX_PREVIEW_SIDE, MAX_STYLES

from .device import freed_buffers_returned, profile_for, release_memory, select_device
from .errors import InputError, Stopped
from .images import (MIN_SIDE, ImageInput, as_pil, fit_size, image_digest, luminance_rgb,
                     match_luminance, match_palette, recolor, split_alpha, to_pil, to_tensor)
from .neighbours import MATCH_BLEND, neighbour_targets
from .objective import (Anchor, ByLayer, GuidedStyle, Objective, Weights, features_by_block,
                        grams_by_block, split)
from .plans import Level, plan
from .regions import Regions, composite
from .regions import check as check_regions
from .regions import guides as region_guides
from .presets import CONTENT_LAYER, Preset, Run, resolve
from .vgg import CAFFE_UNITS, PAINTING_PADDING, VGG19Features, denormalize, load_vgg19, normalize

STYLE_CACHE_ENTRIES = 16  # each holds five ByLayer, at most ~2.7 MB
PREVIEW_SIDE = MAX_PREVIEW_SIDE  # previews are for a screen, whatever the image's size
Blend = list[tuple[Image.Image, float]]  # paintings (RGB) and their shares, summing to 1
KeyedStyles = list[tuple[Image.Image, str, float]]  # paintings, their cache keys, their shares


@dataclass(frozen=True)
class Progress:
    """What `on_progress` gets after every iteration."""
    iteration: int
    total: int
    elapsed: float                      # seconds since the optimization started
    fraction: float                     # of the run's work done (0..1), see WorkClock
    remaining: float | None             # estimated seconds left (None: not yet known)
    losses: dict[str, float]            # "content", "style", "tv", "total" (weighted sum)
    preview: Callable[[], Image.Image]  # the current result, bounded to PREVIEW_SIDE, as PIL RGB;
    #                                     call it during the callback: the image moves on after


@dataclass(frozen=True)
class Job:
    """What every level of one stylization shares."""
    vgg: VGG19Features         # in the run's dtype and layout
    content: Image.Image       # what the content loss sees: luminance only with preserve_colors
    styles: KeyedStyles
    run: Run
    start: Image.Image | None  # the palette start, where the preset asks for it
    regions: Regions | None    # a painting per part of the picture (regions.py), or one for all


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
        self._vgg = load_vgg19(self.weights, padding=PAINTING_PADDING).to(self.device).eval()

    def unload(self) -> None:
        """Free the model, its variants and the style cache (an idle server's memory); the next
        use loads it again."""
        self._vgg = None
        self._vgg_variants.clear()
        self._style_cache.clear()
        release_memory(self.device)

    def style_cache_info(self) -> dict[str, int]:
        return dict(self._cache_stats, size=len(self._style_cache))

    def stylize(self, content: ImageInput, style: ImageInput | Sequence[ImageInput],
                settings: Mapping[str, Any] | None = None, *,
                on_progress: Callable[[Progress], None] | None = None,
                should_stop: Callable[[], bool] | None = None,
                should_finish: Callable[[], bool] | None = None,
                style_weights: Sequence[float] | None = None,
                recipe: Preset | None = None, regions: Regions | None = None) -> Image.Image:
        """Return `content` repainted in the style of `style` — one painting, or several blended
        by `style_weights` (default equal) — at the content's size and with its alpha.
        `settings`: nst_settings.KNOBS names (a bad one raises InputError); `recipe`: a preset
        outside the table to apply them over (benchmarks' baselines). `regions`: instead of a
        blend, each part of the picture in its own painting (or kept), see regions.py.
        Polled before every iteration: once `should_stop()` is true, Stopped is raised; once
        `should_finish()` is, the current image is the result (the user judged it done)."""
        run = resolve(settings or {}, self.profile.working_size, recipe)
        content_rgb, alpha = split_alpha(as_pil(content))
        styles = blend(style, style_weights)
        if run.preset.neighbours and (len(styles) > 1 or regions is not None):
            raise InputError("the painterly quality paints with one painting: choose another "
                             "quality to mix two or to paint regions")
        if regions is not None:
            if style_weights is not None:
                raise InputError("regions: each region has its own painting; style weights "
                                 "do not apply")
            check_regions(regions, content_rgb.size, len(styles))
        start = None
        if run.preserve_colors:
            styles = [(match_luminance(image, content_rgb), share) for image, share in styles]
        elif run.preset.palette:
            start = self._palette_start(content_rgb, styles, regions)
        work = self._optimize(content_rgb, styles, run, start, regions, on_progress, should_stop,
                              should_finish or (lambda: False))
        return finish(work, content_rgb, alpha, run.preserve_colors)

    @staticmethod
    def _palette_start(content: Image.Image, styles: Blend, regions: Regions | None) -> Image.Image:
        """The photo in the paintings' colours; with regions, each region in its own painting's
        (a region without one keeps the photo's)."""
        if regions is None:
            return match_palette(content, styles)
        return composite(regions, [None if index is None else
                                   match_palette(content, [(styles[index][0], 1.0)])
                                   for index in regions.paintings], content)

    # -- the optimization ------------------------------------------------------------------------

    def _optimize(self, content: Image.Image, styles: Blend, run: Run, start: Image.Image | None,
                  regions: Regions | None, on_progress: Callable[[Progress], None] | None,
                  should_stop: Callable[[], bool] | None,
                  should_finish: Callable[[], bool]) -> Image.Image:
        """Coarse to fine over the run's plan, from `start` (or the run's init) towards `content`'s
        features; return the finest level's result (or, once should_finish(), the current one)."""
        job = Job(self._model(torch.float32 if run.preset.exact_fp32 else self.profile.dtype),
                  luminance_rgb(content) if run.preserve_colors else content,
                  [(image, image_digest(image), share) for image, share in styles], run, start,
                  regions)
        levels = plan(run, job.content.size, self.profile)
        clock = WorkClock(levels)

        def report(x: torch.Tensor, losses: dict[str, float]) -> None:
            if on_progress is not None:
                preview = partial(self._preview, x.detach(), content, run)
                on_progress(Progress(clock.iteration, clock.iterations, clock.elapsed, clock.fraction,
                                     clock.remaining, losses, preview))

        x = None
        for level in levels:
            if x is not None and should_finish():
                break
            with freed_buffers_returned(len(level.blocks) > 1):  # memory-bound
                x = self._paint_level(job, level, x, clock, report, should_stop, should_finish)
        assert x is not None
        return to_pil(denormalize(x))

    def _paint_level(self, job: Job, level: Level, previous: torch.Tensor | None, clock: "WorkClock",
                     report: Callable[[torch.Tensor, dict[str, float]], None],
                     should_stop: Callable[[], bool] | None,
                     should_finish: Callable[[], bool]) -> torch.Tensor:
        """One level of the plan: its objective, its start (the level below's result upsampled,
        or the run's init) and its iterations; return the image it ends at."""
        run, vgg = job.run, job.vgg
        target = self._model_input(job.content, level.size)
        x = self._initial(target, previous, run, job.start)
        if run.preset.neighbours:
            objective = self._neighbour_objective(job, level, target, x.detach(), previous is None)
        else:
            whole, guided = self._style_terms(job, level.size)
            objective = Objective(vgg, weights_of(run), self._content_features(target, run, vgg, level),
                                  whole, list(level.blocks), self._anchor(job, level), guided)
        del target
        detail = level.anchor is not None
        optimizer = make_optimizer(run.preset, x, self.profile.optimizer_bytes, detail=detail)
        guard = DivergenceGuard(x) if isinstance(optimizer, torch.optim.LBFGS) else None
        for _ in range(level.iterations):
            if should_stop is not None and should_stop():
                raise Stopped("stopped on request")
            if should_finish():
                break
            if guard is not None:
                guard.remember(x)
            losses = objective.step(optimizer, x, run.preset.clamp)
            if guard is not None and guard.diverged(x, losses["total"]):
                optimizer = make_optimizer(run.preset, x, self.profile.optimizer_bytes, detail=detail)
            clock.advance(level)
            report(x, losses)
        return x

    def _neighbour_objective(self, job: Job, level: Level, target: torch.Tensor, start: torch.Tensor,
                             first: bool) -> Objective:
        """`painterly`'s objective at one level (neighbours.py): the photo's own features at the
        content layer, the painting's nearest features at the others, each layer's term weighed
        by its target's magnitude; matched from the photo at the first level, then from the
        painting so far blended with the photo (NNST's coarse-to-fine)."""
        run, vgg, blocks = job.run, job.vgg, list(level.blocks)
        painting, _, _ = job.styles[0]
        size = style_size(painting.size, level.size, run)
        seen = target if first else MATCH_BLEND * start + (1 - MATCH_BLEND) * target
        layers = [n for n in run.preset.content_layers if n != CONTENT_LAYER]
        targets, scales = neighbour_targets(vgg, seen, blocks, self._model_input(painting, size),
                                            split(size[1], size[0], self.profile.block_pixels), layers)
        content = features_by_block(vgg, target, [CONTENT_LAYER], blocks)
        scales[CONTENT_LAYER] = 1.0 / float(torch.mean(content[CONTENT_LAYER].float() ** 2))
        weights = replace(weights_of(run), content=1.0, style=0.0, style_layers={}, content_layers={
            name: scales[name] * (run.content_weight if name == CONTENT_LAYER else run.style_weight)
            for name in run.preset.content_layers})
        return Objective(vgg, weights, {**targets, **content}, {}, blocks)

    @staticmethod
    def _preview(x: torch.Tensor, content: Image.Image, run: Run) -> Image.Image:
        """The current image as the user will get it (colour recombined), its longest side at
        most PREVIEW_SIDE."""
        side = max(x.shape[-2:])
        if side > PREVIEW_SIDE:
            x = F.interpolate(x, scale_factor=PREVIEW_SIDE / side, mode="area")
        image = to_pil(denormalize(x))
        if run.preserve_colors:
            image = recolor(image, content.resize(image.size, Image.Resampling.LANCZOS))
        return image

    @staticmethod
    def _content_features(target: torch.Tensor, run: Run, vgg: VGG19Features,
                          level: Level) -> ByLayer:
        return features_by_block(vgg, target, list(run.preset.content_layers), list(level.blocks))

    def _initial(self, target: torch.Tensor, previous: torch.Tensor | None, run: Run,
                 start: Image.Image | None) -> torch.Tensor:
        """Seeded noise (the run's init), else `start` or the content, at the first scale; the
        upsampled result at later ones."""
        if previous is not None:
            x = F.interpolate(previous.detach(), size=target.shape[-2:], mode="bicubic",
                              align_corners=False)
        elif run.init == "noise":
            generator = torch.Generator().manual_seed(run.seed)
            noise = torch.rand(target.shape, generator=generator)
            x = normalize(noise.to(self.device))
        elif run.init == "faint noise":  # the mean colour is 0 in normalized units
            generator = torch.Generator().manual_seed(run.seed)
            noise = torch.randn(target.shape, generator=generator) * 0.001 / CAFFE_UNITS
            x = noise.to(self.device)
        elif start is not None:
            x = self._model_input(start, (target.shape[-1], target.shape[-2]))
        else:
            x = target.clone()
        return x.requires_grad_(True)

    def _anchor(self, job: Job, level: Level) -> Anchor | None:
        """The style-only objective at the scale below a detail scale (objective.Anchor)."""
        if level.anchor is None:
            return None
        weights = replace(weights_of(job.run), content=0.0, tv=0.0, content_layers={})
        whole, guided = self._style_terms(job, level.anchor)
        return Anchor(Objective(job.vgg, weights, {}, whole, list(level.anchor_blocks),
                                regions=guided), level.anchor)

    def _style_terms(self, job: Job, size: tuple[int, int]) -> tuple[ByLayer, list[GuidedStyle]]:
        """What the style term matches for an image of `size`: the whole picture against the
        (blended) paintings; or, with regions, each painted region's guided Grams against its
        own painting's."""
        run, vgg = job.run, job.vgg
        if job.regions is None:
            return self._style_targets(job.styles, size, run, vgg), []
        terms = []
        for index, guide in region_guides(job.regions, size, list(run.preset.style_layers),
                                          self.device):
            image, key, _ = job.styles[index]
            terms.append(GuidedStyle(self._style_grams(image, key, size, run, vgg), guide))
        return {}, terms

    def _style_targets(self, styles: KeyedStyles, size: tuple[int, int],
                       run: Run, vgg: VGG19Features) -> ByLayer:
        """The Grams to match: one painting's, or the paintings' mixed by their shares (the
        weighted sum of Gram losses is, up to a constant, the loss against the weighted Grams)."""
        grams = [(self._style_grams(image, key, size, run, vgg), share)
                 for image, key, share in styles]
        if len(grams) == 1:
            return grams[0][0]
        return {name: torch.stack([share * g[name] for g, share in grams]).sum(0)
                for name in grams[0][0]}

    def _style_grams(self, style: Image.Image, style_key: str, image_size: tuple[int, int],
                     run: Run, vgg: VGG19Features) -> ByLayer:
        """The style's Grams at the size style_size gives beside an image of `image_size`, from
        the bounded LRU cache when possible."""
        layers = list(run.preset.style_layers)
        size = style_size(style.size, image_size, run)
        key = (style_key, size, tuple(layers), vgg.dtype)
        if key in self._style_cache:
            self._cache_stats["hits"] += 1
            self._style_cache.move_to_end(key)
            return self._style_cache[key]
        self._cache_stats["misses"] += 1
        blocks = split(size[1], size[0], self.profile.block_pixels)
        grams, _ = grams_by_block(vgg, self._model_input(style, size), layers, blocks)
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


def blend(style: ImageInput | Sequence[ImageInput], weights: Sequence[float] | None) -> Blend:
    """The paintings of a job with their shares; those with no share are left out (so a blend
    weighted (1, 0) is exactly the first painting). InputError for unusable weights."""
    images = [style] if isinstance(style, (Image.Image, np.ndarray)) else list(style)
    try:
        shares = nst_settings.style_shares(None if weights is None else list(weights), len(images),
                                           MAX_STYLES)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return [(split_alpha(as_pil(image))[0], share) for image, share in zip(images, shares) if share > 0]


def style_size(painting: tuple[int, int], image: tuple[int, int], run: Run) -> tuple[int, int]:
    """The size the painting is seen at beside an image of size `image`: its long side the
    image's times the brush size (`style_scale`), aspect kept, or the image's exact shape times
    it for recipes that ask so; never above the painting's own pixels (a detail scale larger
    than the painting matches its strokes at their own resolution)."""
    if run.preset.style_shape == "content":
        return (max(MIN_SIDE, round(image[0] * run.style_scale)),
                max(MIN_SIDE, round(image[1] * run.style_scale)))
    return fit_size(*painting, max(MIN_SIDE, round(max(image) * run.style_scale)))


def weights_of(run: Run) -> Weights:
    preset = run.preset
    return Weights(run.content_weight, run.style_weight, run.tv_weight, preset.content_layers,
                   preset.style_layers, preset.style_term)


def make_optimizer(preset: Preset, x: torch.Tensor, memory: int,
                   detail: bool = False) -> torch.optim.Optimizer:
    """The preset's optimizer over `x`, Adam at a detail scale (`detail`; see Preset.detail_lr);
    L-BFGS keeps the preset's steps of history, fewer where they would not fit in `memory` bytes
    (a 24-MP image's step pair is 0.6 GB)."""
    if detail or preset.optimizer == "adam":  # fused: no image-sized temporaries in the step
        return torch.optim.Adam([x], lr=preset.detail_lr if detail else preset.lr, fused=True)
    pair = 2 * x.numel() * x.element_size()
    # One function evaluation per step and no line search, as in Gatys/Johnson's neural-style:
    # the step is the iteration the user sees and can cancel after.
    return torch.optim.LBFGS([x], lr=preset.lr, max_iter=1,
                             history_size=max(2, min(preset.history, memory // pair)),
                             tolerance_grad=0.0, tolerance_change=0.0)


class DivergenceGuard:
    """L-BFGS without line search can step far past the minimum and, with the pixels clamped
    after the step, keep climbing (measured: bfloat16, style weight 20, a 96-px `fast` run ended
    at 21x the photo's style loss, colour confetti). Each evaluation sees the image before its
    step; once the loss is DIVERGED times the best seen at this level, the best image comes back
    and the caller starts L-BFGS afresh (its history described the runaway steps)."""

    DIVERGED = 2.0

    def __init__(self, x: torch.Tensor):
        self.before = x.detach().clone()  # the image the next evaluation sees
        self.best_image = self.before.clone()
        self.best = float("inf")

    def remember(self, x: torch.Tensor) -> None:
        self.before.copy_(x.detach())

    def diverged(self, x: torch.Tensor, loss: float) -> bool:
        """Whether `loss` (of the remembered image) ran away; if so `x` is reset to the best."""
        if loss < self.best:
            self.best = loss
            self.best_image.copy_(self.before)
            return False
        if loss <= self.DIVERGED * self.best:
            return False
        with torch.no_grad():
            x.copy_(self.best_image)
        return True


class WorkClock:
    """Progress as work done and time left: a detail scale's iteration costs many coarse ones,
    so iterations alone would mislead (plans.Level.work). Time left is measured, never guessed:
    none until two iterations are done (the first also pays for the model's warm-up and the
    painting's targets, which made a first estimate of 1100 s for a 184-s run), then at the
    speed of the last RECENT s, so that a machine that gets busier, or a scale that costs more
    than its share, corrects it within that time."""

    RECENT = 30.0  # s of iterations the speed is measured over

    def __init__(self, levels: list[Level]):
        self.total = sum(level.work for level in levels)
        self.iterations = sum(level.iterations for level in levels)
        self.iteration = 0  # done so far
        self.done = 0.0
        self.start = time.perf_counter()
        self._marks: deque[tuple[float, float]] = deque()  # (time, work done) after iterations

    def advance(self, level: Level) -> None:
        self.iteration += 1
        self.done += level.work / level.iterations
        now = time.perf_counter()
        self._marks.append((now, self.done))
        while len(self._marks) > 2 and now - self._marks[1][0] >= self.RECENT:
            self._marks.popleft()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total)

    @property
    def remaining(self) -> float | None:
        """Seconds left at the recent speed; None before there is a speed to go by."""
        if self.fraction >= 1.0:
            return 0.0
        if len(self._marks) < 2:
            return None
        (then, done_then), (now, done_now) = self._marks[0], self._marks[-1]
        return (now - then) / (done_now - done_then) * (self.total - self.done)


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
