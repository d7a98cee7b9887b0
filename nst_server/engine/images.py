"""Image plumbing: decoding, any mode to RGB (+ alpha kept aside), resizing, tensors, colour."""
import functools
import hashlib
import io
import math
import warnings
from collections.abc import Sequence
from typing import Union

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from nst_contract import protocol

from .errors import InputError

MIN_SIDE = 16  # VGG19 pools four times before relu5_1: smaller sides leave nothing to compare

ImageInput = Union[Image.Image, np.ndarray]  # what the engine accepts: see as_pil


def decode_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode image file bytes (PNG, JPEG, WebP, TIFF, ...) with a pixel-count limit that also
    stops decompression bombs before their pixels are allocated."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(protocol.STYLE_FORMATS))
            if image.width * image.height > max_pixels:
                raise InputError(f"style image is {image.width}x{image.height}, "
                                 f"over the limit of {max_pixels} pixels")
            image.load()
    except InputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise InputError(f"style image: {_reason(exc)}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or corrupt files
        raise InputError(f"style image is damaged or truncated ({exc})") from None
    return ImageOps.exif_transpose(image)


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return f"not a {protocol.formats_in_words()} image"
    return "too many pixels (possible decompression bomb)"


def as_pil(image: ImageInput) -> Image.Image:
    """Accept a PIL image or a uint8/uint16 array (H, W) or (H, W, C) with C in 1..4."""
    if isinstance(image, Image.Image):
        return image
    array = np.asarray(image)
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    if array.dtype != np.uint8:
        raise InputError(f"pixel arrays must be uint8 or uint16, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise InputError(f"pixel arrays must be (H, W) or (H, W, 1..4), got shape {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array))  # mode from the shape: L, LA, RGB, RGBA


def split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Any PIL mode -> (RGB image, alpha band or None). 16-bit and float modes are scaled, not
    clipped; palette transparency becomes alpha."""
    if image.width < MIN_SIDE or image.height < MIN_SIDE:
        raise InputError(f"image is {image.width}x{image.height}; "
                         f"both sides must be at least {MIN_SIDE} pixels")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        scale = 257.0 if image.mode.startswith("I;16") or array.max() > 255 else 1.0
        image = Image.fromarray(np.clip(array / scale, 0, 255).astype(np.uint8))
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") else None
    return image.convert("RGB"), alpha


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The (w, h) with the longest side at most max_side, aspect kept; never upscales."""
    scale = min(1.0, max_side / max(width, height))
    return max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale))


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> float tensor [1, 3, H, W] in 0..1."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """Float tensor [1, 3, H, W] in 0..1 -> PIL RGB (clamped, rounded)."""
    array = tensor.detach().float().clamp(0, 1).mul(255).round().byte()
    return Image.fromarray(array[0].permute(1, 2, 0).cpu().numpy())


def image_digest(image: Image.Image) -> str:
    """A key for caches: equal for images with equal pixels, size and mode."""
    return hashlib.sha256(image.tobytes() + repr((image.size, image.mode)).encode()).hexdigest()


# -- colour ------------------------------------------------------------------------------------

def luminance_rgb(image: Image.Image) -> Image.Image:
    """The image's luminance as a grey RGB image (what a luminance-only transfer optimizes)."""
    return image.convert("L").convert("RGB")


def match_luminance(style: Image.Image, content: Image.Image) -> Image.Image:
    """The style's luminance, shifted and scaled to the content's mean and spread, as grey RGB:
    Gatys et al. 2016's colour preservation by luminance-only transfer."""
    s = to_tensor(luminance_rgb(style))
    c = to_tensor(luminance_rgb(content))
    matched = (s - s.mean()) / (s.std() + 1e-6) * c.std() + c.mean()
    return to_pil(matched)


def recolor(image: Image.Image, content: Image.Image) -> Image.Image:
    """`image`'s luminance with `content`'s chroma (same size)."""
    _, cb, cr = content.convert("YCbCr").split()
    return Image.merge("YCbCr", (image.convert("L"), cb, cr)).convert("RGB")


# How far the palette start's lightness moves from the photo's mean to the paintings': all the way,
# a night seascape came back a beige day scene; none, it stayed so far from a day painting's
# statistics that no weight beat the classic recipe's style loss there. Three quarters keeps the
# Milky Way its brightest band over a dusk-lit sea and lowered the style loss on both photos whose
# key differs most from their paintings' (figures in docs/benchmarks.md, "The palette start's key").
KEY_SHARE = 0.75


def match_palette(content: Image.Image, paintings: Sequence[tuple[Image.Image, float]]) -> Image.Image:
    """The content in the paintings' colours: each CIE Lab channel scaled to the spread of the
    paintings' pixels pooled by their shares, and the colour channels (a, b) shifted to their mean
    (Reinhard et al. 2001's colour transfer); lightness's mean moves KEY_SHARE of the way from
    the photo's to the paintings', so the painting's darks and lights come in a key between the
    two. Structure and shading stay the photo's: the start the palette presets optimize from."""
    photo = lab_array(content)
    stats = [(lab_pixels(image), share) for image, share in paintings]
    mean = sum(share * pixels.mean(0) for pixels, share in stats)
    spread = np.sqrt(sum(share * (pixels.var(0) + (pixels.mean(0) - mean) ** 2)
                         for pixels, share in stats))
    flat = photo.reshape(-1, 3)
    mean[0] = flat[:, 0].mean() + KEY_SHARE * (mean[0] - flat[:, 0].mean())
    return lab_to_rgb((photo - flat.mean(0)) / (flat.std(0) + 1e-6) * spread + mean)


# The power's range, e^±4 (0.018 to 55): enough to take a painting of any lightness in L* 10-90
# to within 4 % of black or of white.
EXPOSURE_LOG_POWER = 4.0


def match_exposure(painting: Image.Image, key: float) -> Image.Image:
    """The painting relit to `key`, a mean lightness (the photo's, mean_lightness): its CIE Lab
    lightness raised to the power that gives it that mean, its colour channels kept. A power
    keeps black black and white white (the Wave's crests stay its lightest strokes at night),
    where a shift would clip them; everything drawn from the painting — the palette start, the
    style targets — then comes in the photo's light."""
    lab = lab_array(painting)
    lightness = lab[..., 0] / 255
    # lightness comes in 256 steps: the power is found on its histogram
    share = np.bincount(lab[..., 0].astype(np.int64).ravel(), minlength=256) / lightness.size
    aim = key
    for _ in range(2):  # the second aims off by what sRGB's gamut added (dark saturated colours)
        lab[..., 0] = lightness ** _power(share, aim / 100) * 255
        relit = lab_to_rgb(lab)
        aim += key - mean_lightness(relit)
    return relit


def mean_lightness(image: Image.Image) -> float:
    """The image's mean CIE L* (0-100): a night photo's is ~30, a pale painting's ~65."""
    return float(lab_pixels(image)[:, 0].mean()) * (100 / 255)  # Pillow stores L as 0..255


def _power(share: np.ndarray, target: float) -> float:
    """The power p that gives lightness levels 0..255 in proportions `share` the mean `target`
    (0..1) once each is raised to it (within EXPOSURE_LOG_POWER)."""
    levels = np.arange(256) / 255
    low, high = -EXPOSURE_LOG_POWER, EXPOSURE_LOG_POWER  # the power's log: the mean falls with it
    for _ in range(30):  # to ~1e-8 of the log
        middle = (low + high) / 2
        low, high = (middle, high) if share @ levels ** math.exp(middle) > target else (low, middle)
    return math.exp((low + high) / 2)


def lab_to_rgb(lab: np.ndarray) -> Image.Image:
    """An sRGB image from CIE Lab float [h, w, 3] in lab_array's ranges (clipped to them)."""
    out = np.empty(lab.shape, np.uint8)
    out[..., 0] = lab[..., 0].clip(0, 255).round()
    out[..., 1:] = lab[..., 1:].clip(-128, 127).round().astype(np.int8).view(np.uint8)
    rgb = ImageCms.applyTransform(Image.fromarray(out, "LAB"), _lab_transforms()[1])
    assert rgb is not None  # None only when transforming in place
    return rgb


def lab_pixels(image: Image.Image) -> np.ndarray:
    """An RGB image's pixels [n, 3] in CIE Lab (see lab_array)."""
    return lab_array(image).reshape(-1, 3)


def lab_array(image: Image.Image) -> np.ndarray:
    """An RGB image in CIE Lab as float [h, w, 3]: L in 0..255, a and b signed (Pillow's LAB
    mode stores them as two's complement bytes)."""
    raw = np.asarray(ImageCms.applyTransform(image, _lab_transforms()[0]))
    out = raw.astype(np.float32)
    out[..., 1:] = raw[..., 1:].view(np.int8)
    return out


@functools.cache
def _lab_transforms() -> tuple[ImageCms.ImageCmsTransform, ImageCms.ImageCmsTransform]:
    srgb, lab = ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB")
    return (ImageCms.buildTransform(srgb, lab, "RGB", "LAB"),
            ImageCms.buildTransform(lab, srgb, "LAB", "RGB"))
