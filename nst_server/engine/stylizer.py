"""The stylization engine: Gatys et al.'s optimization of the image itself, read top to bottom.

    stylizer = Stylizer()                      # loads VGG19 once
    result = stylizer.stylize(content, style, {"preset": "balanced"},
                              on_progress=print, should_stop=lambda: False)

The image is optimized in ImageNet-normalized RGB space, coarse to fine over the run's plan
(plans.py: the preset's scales over the working size, then detail scales up to the layer's own
size where the device or the user asks for it), then resampled to the content's size if the
finest level is smaller; alpha is re-attached unchanged.
"""
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from nst_contract import settings as nst_settings
from nst_contract.protocol import MAX_PREVIEW_SIDE, MAX_STYLES

from .clock import WorkClock
from .device import DeviceProfile, freed_buffers_returned, profile_for, select_device
from .errors import InputError, Stopped
from .images import (ImageInput, as_pil, image_digest, luminance_rgb,
                     match_exposure, match_luminance, match_palette, mean_lightness, recolor,
                     split_alpha, to_pil)
from .levels import RunInputs, detail_energy, initial
from .levels import objective as level_objective
from .models import Models
from .optimizers import UNIT_STEP, DivergenceGuard, make_optimizer
from .plans import Level, plan
from .presets import DETAIL_SIDE, Preset, Run, resolve, weighed_by_detail
from .regions import Regions, composite
from .regions import check as check_regions
from .style_targets import StyleTargets
from .vgg import VGG19Features, denormalize

PREVIEW_SIDE = MAX_PREVIEW_SIDE  # previews are for a screen, whatever the image's size
Blend = list[tuple[Image.Image, float]]  # paintings (RGB) and their shares, summing to 1


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
class Estimate:
    """A job's cost (Stylizer.estimate): pixel-iterations over all its scales."""
    work: float
    scales: int
    finest: tuple[int, int]


class Stylizer:
    """Paints pictures with one VGG19 (models.py, loaded once) and a cache of the paintings'
    targets (style_targets.py)."""

    def __init__(self, weights: str = "original", device: str | None = None, load: bool = True):
        """`load`: now; otherwise at the first use (see load(), unload())."""
        self.weights = weights
        self.models = Models(weights, profile_for(select_device(device)))
        self.targets = StyleTargets(self.models)
        if load:
            self.load()

    @property
    def profile(self) -> DeviceProfile:
        """The device and every setting that depends on it (device.py)."""
        return self.models.profile

    @profile.setter
    def profile(self, profile: DeviceProfile) -> None:  # tests and benchmarks try other devices' settings
        self.models.profile = profile

    @property
    def device(self) -> torch.device:
        return self.models.profile.device

    @property
    def vgg(self) -> VGG19Features:
        """The float32 master copy of the model, loaded on first use."""
        return self.models.vgg

    @property
    def loaded(self) -> bool:
        return self.models.loaded

    def load(self) -> None:
        """Load the weights onto the device (InputError if they cannot be used)."""
        self.models.load()

    def unload(self) -> None:
        """Free the model, its variants and the style cache (an idle server's memory); the next
        use loads it again."""
        self.targets.clear()
        self.models.unload()

    def style_cache_info(self) -> dict[str, int]:
        return self.targets.info()

    def resolve(self, settings: Mapping[str, Any], recipe: Preset | None = None) -> Run:
        """`settings` over the preset (or `recipe`) as this device runs them (presets.resolve)."""
        return resolve(settings, self.profile.working_size, recipe, self.profile.iteration_scale)

    def estimate(self, settings: Mapping[str, Any], size: tuple[int, int]) -> Estimate:
        """What painting a picture of `size` with `settings` costs, before anything runs
        (InputError for a bad setting)."""
        levels = plan(self.resolve(settings), size, self.profile)
        return Estimate(sum(level.work for level in levels), len(levels), levels[-1].size)

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
        run = self.resolve(settings or {}, recipe)
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
        elif run.preserve_exposure or run.preset.palette:
            photo = working_photo(content_rgb, run)
            if run.preserve_exposure:
                key = mean_lightness(photo)
                styles = [(match_exposure(image, key), share) for image, share in styles]
            if run.preset.palette:
                start = palette_start(photo, styles, regions)
        work = self._optimize(content_rgb, styles, run, start, regions, on_progress, should_stop,
                              should_finish or (lambda: False))
        return final_image(work, content_rgb, alpha, run.preserve_colors)

    # -- the optimization ------------------------------------------------------------------------

    def _optimize(self, content: Image.Image, styles: Blend, run: Run, start: Image.Image | None,
                  regions: Regions | None, on_progress: Callable[[Progress], None] | None,
                  should_stop: Callable[[], bool] | None,
                  should_finish: Callable[[], bool]) -> Image.Image:
        """Coarse to fine over the run's plan, from `start` (or the run's init) towards `content`'s
        features; return the finest level's result (or, once should_finish(), the current one)."""
        dtype = torch.float32 if run.preset.published else self.profile.dtype
        vgg = self.models.variant(dtype, run.preset.padding)
        photo = luminance_rgb(content) if run.preserve_colors else content
        if run.preset.weigh_by_detail:
            run = weighed_by_detail(run, detail_energy(vgg, self.models, photo, DETAIL_SIDE))
        job = RunInputs(vgg, photo, [(image, image_digest(image), share) for image, share in styles],
                        run, start, regions, self.models, self.targets)
        levels = plan(run, job.content.size, self.profile)
        clock = WorkClock(levels)

        def report(x: torch.Tensor, losses: dict[str, float]) -> None:
            if on_progress is not None:
                preview = partial(preview_image, x.detach(), content, run)
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

    def _paint_level(self, job: RunInputs, level: Level, previous: torch.Tensor | None,
                     clock: WorkClock, report: Callable[[torch.Tensor, dict[str, float]], None],
                     should_stop: Callable[[], bool] | None,
                     should_finish: Callable[[], bool]) -> torch.Tensor:
        """One level of the plan: its objective, its start (the level below's result upsampled,
        or the run's init) and its iterations; return the image it ends at."""
        run = job.run
        target = self.models.input(job.content, level.size)
        x = initial(job, target, previous)
        objective = level_objective(job, level, target, x, previous is None)
        del target
        detail = level.anchor_size is not None
        optimizer = make_optimizer(run.preset, x, self.profile.optimizer_bytes, detail=detail)
        guarded = isinstance(optimizer, torch.optim.LBFGS) and not run.preset.published
        guard = DivergenceGuard(x) if guarded else None
        for _ in range(level.iterations):
            if should_stop is not None and should_stop():
                raise Stopped("stopped on request")
            if should_finish():
                break
            if guard is not None:
                guard.remember(x)
            losses = objective.step(optimizer, x, run.preset.clamp, UNIT_STEP if guarded else None)
            if guard is not None and guard.diverged(x, losses["total"]):
                optimizer = make_optimizer(run.preset, x, self.profile.optimizer_bytes, detail=detail)
            clock.advance(level)
            report(x, losses)
        return x

def working_photo(content: Image.Image, run: Run) -> Image.Image:
    """The photo at the run's working size, what the palette start and the photo's key are made
    from: only the first, coarsest level starts there, and on a 20-MP photo the palette start's
    Lab transforms at its own size took 6.5 s of a 90-s run; a 24-MP photo's mean L* at 512 px
    was its full size's within 0.002)."""
    size = run.working_size(content.size)
    return content if content.size == size else content.resize(size, Image.Resampling.LANCZOS)


def palette_start(photo: Image.Image, styles: Blend, regions: Regions | None) -> Image.Image:
    """The photo (working_photo) in the paintings' colours; with regions, each region in its own
    painting's (a region without one keeps the photo's)."""
    if regions is None:
        return match_palette(photo, styles)
    return composite(regions, [None if index is None else
                               match_palette(photo, [(styles[index][0], 1.0)])
                               for index in regions.paintings], photo)


def preview_image(x: torch.Tensor, content: Image.Image, run: Run) -> Image.Image:
    """The current image as the user will get it (colour recombined), its longest side at
    most PREVIEW_SIDE."""
    side = max(x.shape[-2:])
    if side > PREVIEW_SIDE:
        x = F.interpolate(x, scale_factor=PREVIEW_SIDE / side, mode="area")
    image = to_pil(denormalize(x))
    if run.preserve_colors:
        image = recolor(image, content.resize(image.size, Image.Resampling.LANCZOS))
    return image


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


# -- the result ---------------------------------------------------------------------------------

def final_image(work: Image.Image, content: Image.Image, alpha: Image.Image | None,
           preserve_colors: bool) -> Image.Image:
    """Resample the working-size result to the content's size; with preserve_colors, combine its
    luminance with the content's own colour at full resolution; re-attach alpha."""
    result = work if work.size == content.size else work.resize(content.size, Image.Resampling.LANCZOS)
    if preserve_colors:
        result = recolor(result, content)
    if alpha is not None:
        result.putalpha(alpha)
    return result
