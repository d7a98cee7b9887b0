"""Loss terms of Gatys-style transfer. Grams and losses stay in float32 whatever dtype the
convolutions ran in: half-precision Grams overflow or lose the small differences that matter."""
import torch


def gram(features):
    """Gram matrix [b, c, c] of features [b, c, h, w], normalized by c*h*w."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w).float()
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def content_loss(features, targets, weights):
    """Weighted mean squared feature difference over the content layers."""
    return sum(w * torch.mean((features[n].float() - targets[n]) ** 2) for n, w in weights.items())


def style_loss(features, target_grams, weights, term):
    """Weighted Gram differences over the style layers.

    term "normalized": mean((G/chw - S/chw)^2), comparable across layers and image sizes.
    term "paper": the reference code's mean((G - S)^2) / (d*h*w) on unnormalized Grams, which is
    the normalized term times d*h*w.
    """
    total = 0.0
    for name, weight in weights.items():
        _, c, h, w = features[name].shape
        layer = torch.mean((gram(features[name]) - target_grams[name]) ** 2)
        total = total + weight * (layer * (c * h * w) if term == "paper" else layer)
    return total


def tv_loss(image):
    """Total variation: mean squared difference of neighbouring pixels (smooths speckle)."""
    dx = image[:, :, :, 1:] - image[:, :, :, :-1]
    dy = image[:, :, 1:, :] - image[:, :, :-1, :]
    return torch.mean(dx ** 2) + torch.mean(dy ** 2)
