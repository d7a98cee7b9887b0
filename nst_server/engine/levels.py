"""What one level of the plan paints towards (its objective) and where it starts."""
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from PIL import Image

from .images import fit_size
from .models import Models
from .neighbours import MATCH_BLEND, neighbour_targets
from .objective import Anchor, ByLayer, GuidedStyle, Objective, Weights, features_by_block, split
from .plans import Level
from .presets import CONTENT_LAYER, Run
from .regions import Regions
from .regions import guides as region_guides
from .style_targets import KeyedStyles, StyleTargets, style_size
from .vgg import CAFFE_UNITS, VGG19Features, normalize


@dataclass(frozen=True)
class RunInputs:
    """What every level of one stylization shares."""
    vgg: VGG19Features         # in the run's dtype and layout
    content: Image.Image       # what the content loss sees: luminance only with preserve_colors
    styles: KeyedStyles
    run: Run
    start: Image.Image | None  # the palette start at the working size, where the preset asks for it
    regions: Regions | None    # a painting per part of the picture (regions.py), or one for all
    models: Models             # the model's owner (inputs on its device)
    targets: StyleTargets      # the paintings' cached Grams


def objective(job: RunInputs, level: Level, target: torch.Tensor, x: torch.Tensor,
              first: bool) -> Objective:
    """What the level optimizes `x` towards: the preset's neighbour objective or Gatys' (the
    photo's features, the paintings' Grams, the scale below's anchor at a detail scale)."""
    if job.run.preset.neighbours:
        return neighbour_objective(job, level, target, x.detach(), first)
    whole, guided = style_terms(job, level.size)
    features = features_by_block(job.vgg, target, list(job.run.preset.content_layers),
                                 list(level.blocks))
    return Objective(job.vgg, weights_of(job.run, first), features, whole, list(level.blocks),
                     anchor(job, level), guided)


def neighbour_objective(job: RunInputs, level: Level, target: torch.Tensor, start: torch.Tensor,
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
    painting_blocks = split(size[1], size[0], job.models.profile.block_pixels)
    targets, scales = neighbour_targets(vgg, seen, blocks, job.models.input(painting, size),
                                        painting_blocks, layers)
    content = features_by_block(vgg, target, [CONTENT_LAYER], blocks)
    scales[CONTENT_LAYER] = 1.0 / float(torch.mean(content[CONTENT_LAYER].float() ** 2))
    weights = replace(weights_of(run), content=1.0, style=0.0, style_layers={}, content_layers={
        name: scales[name] * (run.content_weight if name == CONTENT_LAYER else run.style_weight)
        for name in run.preset.content_layers})
    return Objective(vgg, weights, {**targets, **content}, {}, blocks)


def detail_energy(vgg: VGG19Features, models: Models, photo: Image.Image, side: int) -> float:
    """The photo's detail as the style weight reads it (presets.weighed_by_detail): the mean
    square of its CONTENT_LAYER activations, the photo seen at `side` px (or its own size if
    smaller)."""
    size = fit_size(*photo.size, side)
    blocks = split(size[1], size[0], models.profile.block_pixels)
    features = features_by_block(vgg, models.input(photo, size), [CONTENT_LAYER], blocks)
    return float(torch.mean(features[CONTENT_LAYER].float() ** 2))


def initial(job: RunInputs, target: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
    """Seeded noise (the run's init), else `start` or the content, at the first scale; the
    upsampled result at later ones."""
    run, start, device = job.run, job.start, job.models.profile.device
    if previous is not None:
        x = F.interpolate(previous.detach(), size=target.shape[-2:], mode="bicubic",
                          align_corners=False)
    elif run.init == "noise":
        generator = torch.Generator().manual_seed(run.seed)
        noise = torch.rand(target.shape, generator=generator)
        x = normalize(noise.to(device))
    elif run.init == "faint noise":  # the mean colour is 0 in normalized units
        generator = torch.Generator().manual_seed(run.seed)
        noise = torch.randn(target.shape, generator=generator) * 0.001 / CAFFE_UNITS
        x = noise.to(device)
    elif start is not None:
        x = job.models.input(start, (target.shape[-1], target.shape[-2]))
    else:
        x = target.clone()
    return x.requires_grad_(True)


def anchor(job: RunInputs, level: Level) -> Anchor | None:
    """The style-only objective at the scale below a detail scale (objective.Anchor)."""
    if level.anchor_size is None:
        return None
    weights = replace(weights_of(job.run, first=False), content=0.0, tv=0.0, content_layers={})
    whole, guided = style_terms(job, level.anchor_size)
    return Anchor(Objective(job.vgg, weights, {}, whole, list(level.anchor_blocks),
                            regions=guided), level.anchor_size)


def style_terms(job: RunInputs, size: tuple[int, int]) -> tuple[ByLayer, list[GuidedStyle]]:
    """What the style term matches for an image of `size`: the whole picture against the
    (blended) paintings; or, with regions, each painted region's guided Grams against its
    own painting's."""
    run, vgg = job.run, job.vgg
    if job.regions is None:
        return job.targets.blended(job.styles, size, run, vgg), []
    terms = []
    for index, guide in region_guides(job.regions, size, list(run.preset.style_layers),
                                      job.models.profile.device):
        image, key, _ = job.styles[index]
        terms.append(GuidedStyle(job.targets.grams(image, key, size, run, vgg), guide))
    return {}, terms


def weights_of(run: Run, first: bool = True) -> Weights:
    """What the loss of the run's `first` level, or of a later one, weighs (Preset.refine_layers)."""
    preset = run.preset
    layers = preset.style_layers if first or preset.refine_layers is None else preset.refine_layers
    return Weights(run.content_weight, run.style_weight, run.tv_weight, preset.content_layers,
                   layers, preset.style_term)
