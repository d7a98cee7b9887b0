"""Regions: a different painting for each part of the picture (Gatys et al. 2017, "Controlling
Perceptual Factors in Neural Style Transfer", spatial control). A label map gives each pixel a
region; each region has a painting, or none (it keeps the photo: content only). Each region's
guide — its mask, feathered so that styles meet without a seam — weighs the features whose Grams
are matched against its painting's (objective.GuidedStyle)."""
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from nst_contract.protocol import MAX_REGIONS

from .errors import InputError
from .vgg import layer_stride

FEATHER_SHARE = 0.01   # the guides' blur (sigma) as a share of the longer side: a soft edge
MIN_SHARE = 0.001      # a region smaller than this share of the picture is refused as empty


@dataclass(frozen=True)
class Regions:
    """`labels` [h, w] uint8 at the content's size: each pixel's region; `paintings[r]`: the
    index (among the job's paintings) region r is painted with, or None to keep the photo."""
    labels: np.ndarray
    paintings: tuple[int | None, ...]


def check(regions: Regions, size: tuple[int, int], paintings: int) -> None:
    """InputError unless `regions` fits a content of `size` (width, height) and `paintings`."""
    labels = regions.labels
    if labels.dtype != np.uint8 or labels.shape != (size[1], size[0]):
        raise InputError(f"regions: the label map must be {size[0]}x{size[1]} bytes, one per pixel")
    if not 1 <= len(regions.paintings) <= MAX_REGIONS:
        raise InputError(f"regions: give 1 to {MAX_REGIONS} regions, got {len(regions.paintings)}")
    if int(labels.max()) >= len(regions.paintings):
        raise InputError(f"regions: label {int(labels.max())} has no region (there are "
                         f"{len(regions.paintings)})")
    for index in regions.paintings:
        if index is not None and not 0 <= index < paintings:
            raise InputError(f"regions: painting {index + 1} is not among the {paintings} sent")
    counts = np.bincount(labels.ravel(), minlength=len(regions.paintings))
    for region, count in enumerate(counts):
        if regions.paintings[region] is not None and count < MIN_SHARE * labels.size:
            raise InputError(f"regions: region {region + 1} covers no part of the picture (its "
                             "guide is empty): paint it in the mask, or leave it out")
    if all(index is None for index in regions.paintings):
        raise InputError("regions: no region has a painting")


def masks(regions: Regions, size: tuple[int, int]) -> np.ndarray:
    """Each region's feathered mask at `size` (width, height), [regions, h, w] float32, summing
    to 1 at every pixel."""
    labels = np.asarray(Image.fromarray(regions.labels).resize(size, Image.Resampling.NEAREST))
    sigma = FEATHER_SHARE * max(size)
    soft = np.stack([ndimage.gaussian_filter((labels == r).astype(np.float32), sigma)
                     for r in range(len(regions.paintings))])
    return soft / np.maximum(soft.sum(0, keepdims=True), 1e-6)


def guides(regions: Regions, size: tuple[int, int], layers: Sequence[str],
           device: torch.device) -> list[tuple[int, dict[str, torch.Tensor]]]:
    """(painting index, guide by layer) of each painted region, for an image of `size`: its mask
    averaged over each layer's cells, [1, 1, h // stride, w // stride] as the layer's map."""
    soft = torch.from_numpy(masks(regions, size)).to(device)[:, None]
    found = []
    for region, painting in enumerate(regions.paintings):
        if painting is None:
            continue
        by_layer = {}
        for name in layers:
            stride = layer_stride(name)
            cells = (size[1] // stride, size[0] // stride)
            by_layer[name] = F.adaptive_avg_pool2d(soft[region:region + 1], cells)
        found.append((painting, by_layer))
    return found


def composite(regions: Regions, pictures: Sequence[Image.Image | None],
              photo: Image.Image) -> Image.Image:
    """One picture per region (None: the photo), blended by the feathered masks."""
    weights = masks(regions, photo.size)
    own = np.asarray(photo, np.float32)
    mixed = sum(w[..., None] * (own if p is None else np.asarray(p, np.float32))
                for w, p in zip(weights, pictures))
    return Image.fromarray(np.clip(np.round(mixed), 0, 255).astype(np.uint8))
