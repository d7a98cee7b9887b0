"""The loss of one scale — weighted content, style and total-variation terms — and its gradient,
evaluated over spatial blocks so that memory is bounded by a block, not by the image.

The loss is the exact global one (as in Galerne et al., "Scaling Painting Style Transfer", 2024):
Grams are sums over positions, so they add up block by block. With several blocks an evaluation
makes two passes: (1) every block forward without autograd, summing each style layer's F·Fᵀ;
(2) every block forward and backward again through a surrogate whose gradient is the global
loss's (the Grams' gradient is known after pass 1, and the content term is a sum over positions).
Blocks overlap by a halo wider than what relu5_1 sees, on a grid that keeps every pooling aligned,
so a block's core activations equal the whole image's: no seams, and the same loss and gradient as
one pass (tests/engine/test_objective.py). One block (a small image) is the plain one-pass case.
"""
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .losses import StyleTerm, content_sum, gram_sum, style_loss, tv_loss_with_grad
from .vgg import VGG19Features, clip_to_rgb_, layer_stride

HALO = 96   # relu5_1 sees 70 px before and 86 px after its own 16-px cell
ALIGN = 16  # four 2x2 poolings: edges on multiples of 16 keep every layer's grid aligned

ByLayer = dict[str, torch.Tensor]  # activations or Grams, by layer name


@dataclass(frozen=True)
class Block:
    """A rectangle of the image: `core` are the pixels whose activations it accounts for,
    `padded` the core plus halo (clipped to the image), which is what the VGG sees.
    Both are (top, bottom, left, right)."""
    core: tuple[int, int, int, int]
    padded: tuple[int, int, int, int]

    def pixels(self, image: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = self.padded
        return image[..., top:bottom, left:right]

    def core_of(self, features: torch.Tensor, name: str) -> torch.Tensor:
        """The core's part of this block's activations of layer `name`."""
        return features[..., self._rows(name, self.padded[0]), self._cols(name, self.padded[2])]

    def core_in(self, full: torch.Tensor, name: str) -> torch.Tensor:
        """The core's part of a whole image's activations of layer `name`."""
        return full[..., self._rows(name, 0), self._cols(name, 0)]

    def _rows(self, name: str, origin: int) -> slice:
        s = layer_stride(name)  # floor division also matches the pooling's floor at the edge
        return slice((self.core[0] - origin) // s, (self.core[1] - origin) // s)

    def _cols(self, name: str, origin: int) -> slice:
        s = layer_stride(name)
        return slice((self.core[2] - origin) // s, (self.core[3] - origin) // s)


def split(height: int, width: int, max_pixels: int) -> list[Block]:
    """Blocks covering a height x width image, each padded block at most ~max_pixels (one
    block, without halo, when the whole image fits)."""
    if height * width <= max_pixels:
        return [Block((0, height, 0, width), (0, height, 0, width))]
    side = max(ALIGN, (math.isqrt(max_pixels) - 2 * HALO) // ALIGN * ALIGN)
    rows, cols = _cuts(height, side), _cuts(width, side)
    return [Block((top, bottom, left, right),
                  (max(0, top - HALO), min(height, bottom + HALO),
                   max(0, left - HALO), min(width, right + HALO)))
            for top, bottom in rows for left, right in cols]


def _cuts(length: int, side: int) -> list[tuple[int, int]]:
    """`length` cut into near-equal aligned spans of at most about `side`."""
    count = math.ceil(length / side)
    step = math.ceil(length / count / ALIGN) * ALIGN
    edges = [min(length, i * step) for i in range(count)] + [length]
    return [(a, b) for a, b in zip(edges, edges[1:]) if b > a]


@dataclass(frozen=True)
class Weights:
    """What the loss weighs: the run's term weights and the preset's layers."""
    content: float
    style: float
    tv: float
    content_layers: Mapping[str, float]
    style_layers: Mapping[str, float]
    style_term: StyleTerm


def features_by_block(vgg: VGG19Features, image: torch.Tensor, layers: list[str],
                      blocks: list[Block]) -> ByLayer:
    """The whole image's activations of `layers`, assembled from the blocks' cores."""
    with torch.no_grad():
        out: ByLayer = {}
        for block, feats in _forward(vgg, image, layers, blocks):
            for name in layers:
                core = block.core_of(feats[name], name)
                if name not in out:
                    out[name] = _empty_map(core, image, name)
                block.core_in(out[name], name).copy_(core)
        return out


@dataclass(frozen=True)
class GuidedStyle:
    """A region's style term (regions.py): its painting's Grams, matched by the Grams of the
    picture's features weighted by the region's guide, normalized by the guide's mass (so a
    guide of ones is the plain Gram)."""
    grams: ByLayer
    guide: ByLayer  # per style layer: [1, 1, h, w], that layer's whole map


def grams_by_block(vgg: VGG19Features, image: torch.Tensor, layers: list[str],
                   blocks: list[Block]) -> tuple[ByLayer, dict[str, int]]:
    """The whole image's normalized Grams of `layers` and each layer's position count."""
    sums, masses = gram_sums_by_block(vgg, image, layers, blocks, [None])
    return ({n: sums[0][n] / (sums[0][n].shape[0] * masses[0][n]) for n in layers},
            {n: int(masses[0][n]) for n in layers})


def gram_sums_by_block(vgg: VGG19Features, image: torch.Tensor, layers: list[str],
                       blocks: list[Block], guides: list[ByLayer | None]
                       ) -> tuple[list[ByLayer], list[dict[str, float]]]:
    """Per guide (None: unweighted), each layer's F·Fᵀ of the guide-weighted features over the
    whole image, and the guide's mass there (Σ m², or the position count)."""
    with torch.no_grad():
        sums: list[ByLayer] = [{} for _ in guides]
        for block, feats in _forward(vgg, image, layers, blocks):
            for name in layers:
                for index, guide in enumerate(guides):
                    weighted = _guided(block, feats[name], name, guide)
                    sums[index][name] = sums[index].get(name, 0) + gram_sum(weighted)
        return sums, [_masses(guide, positions(image, layers)) for guide in guides]


def positions(image: torch.Tensor, layers: list[str]) -> dict[str, int]:
    """Each layer's position count over the whole image."""
    return {n: (image.shape[-2] // layer_stride(n)) * (image.shape[-1] // layer_stride(n))
            for n in layers}


def _masses(guide: ByLayer | None, positions: dict[str, int]) -> dict[str, float]:
    if guide is None:
        return {n: float(count) for n, count in positions.items()}
    return {n: float(guide[n].float().pow(2).sum()) for n in positions}


def _guided(block: Block, features: torch.Tensor, name: str,
            guide: ByLayer | None) -> torch.Tensor:
    """The block's core activations of `name`, weighted by the guide's (if any) over the core."""
    core = block.core_of(features, name)
    return core if guide is None else core * block.core_in(guide[name], name)


class Objective:
    """The loss of one scale for images of one shape, over fixed blocks. The style term: the
    whole picture against `style_grams` (none if empty), plus each of `regions`' guided terms."""

    def __init__(self, vgg: VGG19Features, weights: Weights, content_features: ByLayer,
                 style_grams: ByLayer, blocks: list[Block], anchor: "Anchor | None" = None,
                 regions: Sequence[GuidedStyle] = ()):
        self.vgg, self.weights, self.blocks = vgg, weights, blocks
        self.content_features = content_features
        self.styles: list[tuple[ByLayer, ByLayer | None]] = (
            [(style_grams, None)] if style_grams else []) + [(r.grams, r.guide) for r in regions]
        self.anchor = anchor
        self.gradient_scale: float | None = None  # see step()
        self.layers = list(dict.fromkeys([*weights.content_layers, *weights.style_layers]))

    def step(self, optimizer: torch.optim.Optimizer, x: torch.Tensor, clamp: bool,
             unit_step: float | None = None) -> dict[str, float]:
        """One optimizer iteration (one evaluation); return the losses it saw. `clamp`: keep the
        pixels in 0..1 after the step. `unit_step`: the optimizer sees the loss scaled so that
        the gradient at this objective's first evaluation has this RMS (optimizers.UNIT_STEP)."""
        losses: dict[str, float] = {}

        def closure() -> torch.Tensor:
            losses.update(self.evaluate(x))
            if unit_step is None:
                return torch.tensor(losses["total"])
            assert x.grad is not None
            if self.gradient_scale is None:
                self.gradient_scale = unit_step / max(float(x.grad.square().mean().sqrt()), 1e-30)
            x.grad.mul_(self.gradient_scale)
            return torch.tensor(losses["total"] * self.gradient_scale)

        optimizer.step(closure)  # type: ignore[arg-type]  # torch's stub says float; Tensor works
        if clamp:  # stay a real image: clipping later would undo the style
            with torch.no_grad():
                clip_to_rgb_(x)
        return losses

    def evaluate(self, x: torch.Tensor) -> dict[str, float]:
        """The losses at `x`; leaves the total's gradient in x.grad."""
        if x.grad is None:
            x.grad = torch.zeros_like(x)
        else:  # in place: a fresh one would briefly double an image-sized buffer
            x.grad.zero_()
        if len(self.blocks) == 1:
            terms = self._one_pass(x)
        else:
            terms = self._two_passes(x)
        terms["tv"] = float(tv_loss_with_grad(x.detach(), self.weights.tv, x.grad))
        if self.anchor is not None:  # the style at two scales, weighted alike
            terms["style"] += self.anchor.evaluate(x)
        w = self.weights
        terms["total"] = w.content * terms["content"] + w.style * terms["style"] + w.tv * terms["tv"]
        return terms

    def _style_layers(self) -> list[str]:
        return list(self.weights.style_layers) if self.styles else []

    def _one_pass(self, x: torch.Tensor) -> dict[str, float]:
        block, layers = self.blocks[0], self._style_layers()
        with torch.enable_grad():
            feats = self.vgg(x, self.layers)
            style = torch.zeros(())
            for grams_to_match, guide in self.styles:
                masses = _masses(guide, positions(x, layers))
                grams = {n: gram_sum(_guided(block, feats[n], n, guide)) / (feats[n].shape[1] * masses[n])
                         for n in layers}
                style = style.to(x.device) + style_loss(grams, grams_to_match, self.weights.style_layers,
                                                        self.weights.style_term, masses)
            content = self._content(feats, block)
            (self.weights.style * style + self.weights.content * content).backward()
        return {"content": float(content.detach()), "style": float(style.detach())}

    def _two_passes(self, x: torch.Tensor) -> dict[str, float]:
        detached = x.detach()
        style_layers = self._style_layers()
        gram_grads, style = self._gram_gradients(detached, style_layers) if style_layers else ([], 0.0)
        assert x.grad is not None
        content = 0.0
        for block in self.blocks:
            patch = block.pixels(detached).requires_grad_(True)
            with torch.enable_grad():
                feats = self.vgg(patch, self.layers)
                # gradient of sum(D * F Fᵀ) is the global loss's gradient through this block
                surrogate = sum(torch.sum(grads[n] * gram_sum(_guided(block, feats[n], n, guide)))
                                for (_, guide), grads in zip(self.styles, gram_grads)
                                for n in style_layers)
                block_content = self._content(feats, block)
                (surrogate + self.weights.content * block_content).backward()
            content += float(block_content.detach())
            assert patch.grad is not None
            block.pixels(x.grad).add_(patch.grad)
        return {"content": content, "style": float(style)}

    def _gram_gradients(self, detached: torch.Tensor,
                        style_layers: list[str]) -> tuple[list[ByLayer], float]:
        """Pass 1: each style term's Grams of the whole image over the blocks, then d(style
        loss)/d(F·Fᵀ) per term and layer (on c x c matrices only), and the style loss."""
        guides = [guide for _, guide in self.styles]
        sums, masses = gram_sums_by_block(self.vgg, detached, style_layers, self.blocks, guides)
        grads, style = [], 0.0
        for (grams_to_match, _), sums_of, mass in zip(self.styles, sums, masses):
            with torch.enable_grad():
                leaves = {n: (sums_of[n] / (sums_of[n].shape[0] * mass[n])).requires_grad_(True)
                          for n in style_layers}
                term = style_loss(leaves, grams_to_match, self.weights.style_layers,
                                  self.weights.style_term, mass)
                (self.weights.style * term).backward()
            grads.append({n: _grad(leaves[n]) / (leaves[n].shape[0] * mass[n]) for n in style_layers})
            style += float(term.detach())
        return grads, style

    def _content(self, feats: ByLayer, block: Block) -> torch.Tensor:
        """This block's share of the content term (mean squared difference over the image)."""
        total = torch.zeros((), device=feats[self.layers[0]].device)
        for name, weight in self.weights.content_layers.items():
            target = self.content_features[name]
            core = block.core_of(feats[name], name)
            total = total + weight * content_sum(core, block.core_in(target, name)) / target.numel()
        return total


class Anchor:
    """The style loss of the image downsampled to the scale below: keeps a detail scale from
    repainting the style that scale set while it adds strokes of its own (a Gram loss at two
    scales of the image, as in Snelgrove's multi-scale texture synthesis, 2017). Without it, the
    detail scale traded the coarse scale's match for its own: measured, 2.9x the style loss on
    the result seen at the working size (README, Big layers)."""

    def __init__(self, objective: "Objective", size: tuple[int, int]):
        """`objective`: style only, at `size` (width, height)."""
        self.objective, self.size = objective, size

    def evaluate(self, x: torch.Tensor) -> float:
        """The style loss of `x` seen at `size`; adds its gradient to x.grad."""
        with torch.enable_grad():
            source = x.detach().requires_grad_(True)
            small = F.interpolate(source, size=(self.size[1], self.size[0]), mode="area")
        leaf = small.detach().requires_grad_(True)
        style = self.objective.evaluate(leaf)["style"]
        small.backward(_grad(leaf))  # through the downsampling
        assert x.grad is not None
        x.grad.add_(_grad(source))
        return style


def _grad(leaf: torch.Tensor) -> torch.Tensor:
    assert leaf.grad is not None
    return leaf.grad


def _forward(vgg: VGG19Features, image: torch.Tensor, layers: list[str],
             blocks: list[Block]) -> Iterator[tuple[Block, ByLayer]]:
    for block in blocks:
        yield block, vgg(block.pixels(image), layers)


def _empty_map(core: torch.Tensor, image: torch.Tensor, name: str) -> torch.Tensor:
    """A whole image's activation map for layer `name`, shaped like the full-image forward's."""
    s = layer_stride(name)
    return core.new_empty((1, core.shape[1], image.shape[-2] // s, image.shape[-1] // s))
