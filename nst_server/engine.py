"""The stylization engine: Gatys et al.'s optimization of the image itself, read top to bottom.

    stylizer = Stylizer()                      # loads VGG19 once
    result = stylizer.stylize(content, style, {"preset": "balanced"}, on_progress, should_stop)

The image is optimized in ImageNet-normalized RGB space at a working size (coarse to fine over
the preset's scales), then resampled back to the content's size; alpha is re-attached unchanged.
"""
import copy
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from PIL import Image

from neural_style import nst_settings

from .device import profile_for, select_device
from .errors import Cancelled, InputError
from .images import MIN_SIDE, as_pil, fit_size, image_digest, split_alpha, to_pil, to_tensor
from .losses import content_loss, gram, style_loss, tv_loss
from .presets import PRESETS
from .vgg import denormalize, load_vgg19, normalize

STYLE_CACHE_ENTRIES = 16  # each holds five Grams, at most ~2.7 MB


@dataclass
class Progress:
    iteration: int
    total: int
    elapsed: float
    losses: dict
    preview: Callable[[], Image.Image]  # the current result at the working size, as PIL RGB


class Stylizer:
    """Owns the VGG19 model (loaded once) and a bounded cache of style Grams."""

    def __init__(self, weights="original", device=None):
        self.weights = weights
        self.profile = profile_for(select_device(device))
        self.device = self.profile.device
        self.vgg = load_vgg19(weights).to(self.device).eval()  # float32 master copy
        self._vgg_variants = {}
        self._style_cache = OrderedDict()
        self._cache_stats = {"hits": 0, "misses": 0}

    def style_cache_info(self):
        return dict(self._cache_stats, size=len(self._style_cache))

    def stylize(self, content, style, settings=None, on_progress=None, should_stop=None):
        """Return `content` repainted in the style of `style` (PIL image, content's size)."""
        run = resolve(settings or {}, self.profile.working_size)
        content_rgb, alpha = split_alpha(as_pil(content))
        style_rgb, _ = split_alpha(as_pil(style))
        if run.knobs["preserve_colors"]:
            style_rgb = match_luminance(style_rgb, content_rgb)
        work = self._optimize(content_rgb, style_rgb, run, on_progress, should_stop)
        return finish(work, content_rgb, alpha, run.knobs["preserve_colors"])

    # -- the optimization ------------------------------------------------------------------------

    def _optimize(self, content, style, run, on_progress, should_stop):
        """Coarse to fine over the preset's scales; return the working-size result."""
        vgg = self._model(torch.float32 if run.preset.exact_fp32 else self.profile.dtype)
        colour_source = content
        if run.knobs["preserve_colors"]:
            content = luminance_rgb(content)
        full = fit_size(content.width, content.height, run.size)
        style_key = image_digest(style)
        start, done, x = time.perf_counter(), 0, None
        for fraction, steps in iteration_schedule(run.preset.scales, run.iterations):
            shape = tuple(max(MIN_SIDE, round(side * fraction)) for side in full)
            target = self._normalize(content, shape)
            objective = Objective(vgg, run, self._content_features(target, run.preset, vgg),
                                  self._style_grams(style, style_key, shape, run.preset, vgg))
            x = self._initial(target, x, run)
            optimizer = make_optimizer(run.preset, x)
            for _ in range(steps):
                if should_stop is not None and should_stop():
                    raise Cancelled("stopped on request")
                losses = objective.step(optimizer, x)
                done += 1
                if on_progress is not None:
                    current = x.detach().clone()
                    on_progress(Progress(done, run.iterations, time.perf_counter() - start, losses,
                                         lambda c=current: self._preview(c, colour_source, run)))
        return to_pil(denormalize(x))

    @staticmethod
    def _preview(x, content, run):
        """The current image as the user will get it (colour recombined), at the working size."""
        image = to_pil(denormalize(x))
        if run.knobs["preserve_colors"]:
            image = recolor(image, content.resize(image.size, Image.LANCZOS))
        return image

    @staticmethod
    def _content_features(target, preset, vgg):
        with torch.no_grad():
            return {n: f.float() for n, f in vgg(target, list(preset.content_layers)).items()}

    def _initial(self, target, previous, run):
        """Content (or seeded noise) at the first scale; the upsampled result at later ones."""
        if previous is not None:
            x = F.interpolate(previous.detach(), size=target.shape[-2:], mode="bicubic",
                              align_corners=False)
        elif run.knobs["init"] == "noise":
            generator = torch.Generator().manual_seed(run.knobs["seed"])
            noise = torch.rand(target.shape, generator=generator)
            x = normalize(noise.to(self.device))
        else:
            x = target.clone()
        return x.requires_grad_(True)

    def _style_grams(self, style, style_key, shape, preset, vgg):
        """Style Grams at the size matching `shape`, from the bounded LRU cache when possible."""
        size = shape if preset.style_shape == "content" else fit_size(*style.size, max(shape))
        key = (style_key, size, tuple(preset.style_layers), vgg.dtype)
        if key in self._style_cache:
            self._cache_stats["hits"] += 1
            self._style_cache.move_to_end(key)
            return self._style_cache[key]
        self._cache_stats["misses"] += 1
        with torch.no_grad():
            feats = vgg(self._normalize(style, size), list(preset.style_layers))
            grams = {name: gram(f) for name, f in feats.items()}
        self._style_cache[key] = grams
        if len(self._style_cache) > STYLE_CACHE_ENTRIES:
            self._style_cache.popitem(last=False)
        return grams

    # -- device and tensor helpers ---------------------------------------------------------------

    def _model(self, dtype):
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

    def _normalize(self, image, size):
        resized = image if image.size == tuple(size) else image.resize(size, Image.LANCZOS)
        return normalize(to_tensor(resized).to(self.device))


class Objective:
    """The loss of one scale: weighted content, style and total-variation terms."""

    def __init__(self, vgg, run, content_features, style_grams):
        self.vgg, self.run = vgg, run
        self.content_features, self.style_grams = content_features, style_grams

    def step(self, optimizer, x):
        """One optimizer iteration (one forward + backward); return the losses it saw."""
        losses = {}

        def closure():
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

        optimizer.step(closure)
        if self.run.preset.clamp:
            with torch.no_grad():  # stay a real image: clipping later would undo the style
                x.copy_(normalize(denormalize(x).clamp(0, 1)))
        return losses


# -- settings --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """A preset with the user's knobs applied: everything one stylization needs to know."""
    preset: object
    knobs: dict
    size: int
    iterations: int
    content_weight: float
    style_weight: float
    tv_weight: float
    layers: list


def resolve(settings, device_working_size):
    """Validate the user's knobs and merge them over the chosen preset."""
    try:
        knobs = nst_settings.validate(settings)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    preset = PRESETS[knobs["preset"]]

    def pick(name, preset_value):
        return preset_value if knobs[name] is None else knobs[name]

    return Run(
        preset=preset, knobs=knobs,
        size=pick("size", preset.size or device_working_size),
        iterations=pick("iterations", preset.iterations),
        content_weight=pick("content_weight", preset.content_weight),
        style_weight=preset.style_weight * knobs["strength"],
        tv_weight=pick("tv_weight", preset.tv_weight),
        layers=list(dict.fromkeys([*preset.content_layers, *preset.style_layers])))


def iteration_schedule(scales, iterations):
    """Split `iterations` over the scales by their shares; the finest scale gets the remainder."""
    counts = [int(iterations * share) for _, share in scales[:-1]]
    counts.append(iterations - sum(counts))
    return [(fraction, n) for (fraction, _), n in zip(scales, counts) if n > 0]


def make_optimizer(preset, x):
    if preset.optimizer == "adam":
        return torch.optim.Adam([x], lr=preset.lr)
    # One function evaluation per step and no line search, as in Gatys/Johnson's neural-style:
    # the step is the iteration the user sees and can cancel after.
    return torch.optim.LBFGS([x], lr=preset.lr, max_iter=1, history_size=50,
                             tolerance_grad=0.0, tolerance_change=0.0)


# -- colour handling -------------------------------------------------------------------------------

def luminance_rgb(image):
    """The image's luminance as a grey RGB image (what a luminance-only transfer optimizes)."""
    return image.convert("L").convert("RGB")


def match_luminance(style, content):
    """The style's luminance, shifted and scaled to the content's mean and spread, as grey RGB:
    Gatys et al. 2016's colour preservation by luminance-only transfer."""
    s = to_tensor(style.convert("L").convert("RGB"))
    c = to_tensor(content.convert("L").convert("RGB"))
    matched = (s - s.mean()) / (s.std() + 1e-6) * c.std() + c.mean()
    return to_pil(matched)


def recolor(image, content):
    """`image`'s luminance with `content`'s chroma (same size)."""
    _, cb, cr = content.convert("YCbCr").split()
    return Image.merge("YCbCr", (image.convert("L"), cb, cr)).convert("RGB")


def finish(work, content, alpha, preserve_colors):
    """Resample the working-size result to the content's size; with preserve_colors, combine its
    luminance with the content's own colour at full resolution; re-attach alpha."""
    result = work if work.size == content.size else work.resize(content.size, Image.LANCZOS)
    if preserve_colors:
        result = recolor(result, content)
    if alpha is not None:
        result.putalpha(alpha)
    return result
