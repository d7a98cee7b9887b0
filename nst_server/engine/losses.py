"""Loss terms of Gatys-style transfer. Grams and losses stay in float32 whatever dtype the
convolutions ran in: half-precision Grams overflow or lose the small differences that matter."""
from collections.abc import Mapping
from typing import Literal

import torch

StyleTerm = Literal["normalized", "paper"]


def gram_sum(features: torch.Tensor) -> torch.Tensor:
    """F·Fᵀ [c, c] of features [1, c, h, w], unnormalized: sums over positions add up across
    blocks of one image."""
    _, c, h, w = features.shape
    flat = features.reshape(c, h * w).float()
    return flat @ flat.T


def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrix [c, c] of features [1, c, h, w], normalized by c*h*w."""
    _, c, h, w = features.shape
    return gram_sum(features) / (c * h * w)


def content_sum(features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Sum of squared feature differences (the mean over a whole image is this over its size)."""
    return torch.sum((features.float() - targets.float()) ** 2)


def style_loss(grams: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
               weights: Mapping[str, float], term: StyleTerm,
               positions: Mapping[str, float]) -> torch.Tensor:
    """Weighted Gram differences over the style layers, from normalized Grams; `positions`: each
    layer's h*w over the whole image (a region's guide mass, for a guided Gram).

    term "normalized": mean((G/chw - S/chw)^2), comparable across layers and image sizes.
    term "paper": the reference code's mean((G - S)^2) / (d*h*w) on unnormalized Grams, which is
    the normalized term times d*h*w.
    """
    total = torch.zeros(())
    for name, weight in weights.items():
        layer = torch.mean((grams[name] - target_grams[name]) ** 2)
        if term == "paper":
            layer = layer * grams[name].shape[0] * positions[name]
        total = total.to(layer.device) + weight * layer
    return total


def tv_loss_with_grad(image: torch.Tensor, weight: float, grad: torch.Tensor) -> torch.Tensor:
    """Total variation of `image` — mean squared difference of neighbouring pixels, per
    direction, summed (smooths speckle) — and `weight` times its gradient added to `grad` in
    place. By hand, not by autograd: one image-sized temporary instead of autograd's seven (on a
    24-MP layer 0.27 GiB above the image and its gradient, against 1.88). No gradient work when
    `weight` is 0."""
    total = image.new_zeros(())
    with torch.no_grad():
        for dim in (-1, -2):
            length = image.shape[dim] - 1
            diff = image.narrow(dim, 1, length) - image.narrow(dim, 0, length)
            total += torch.dot(diff.view(-1), diff.view(-1)) / diff.numel()
            if weight:  # d/dx_i of mean((x_i+1 - x_i)²): +2·diff/n from the left, -2·diff/n right
                diff.mul_(2 * weight / diff.numel())
                grad.narrow(dim, 1, length).add_(diff)
                grad.narrow(dim, 0, length).sub_(diff)
            del diff  # before the next direction's
    return total
