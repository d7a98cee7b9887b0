"""Figures of a result that agree with the eye, beside the feature-space evaluator (evaluate.py).

The evaluator's Gram loss rewards texture statistics: an even carpet of the painting's strokes, or
colour speckle, can score well on it while the picture is lost. These figures look at what a
person sees, in CIE Lab (L 0..100) except where said:

- composition: the photo's layout of darks and lights kept — correlation of heavily blurred
  luminance between result and photo (1 = the same layout; a texture carpet or a flat image ~0);
  colour layout, the same for the a/b channels;
- value range: the result's spread of values (5th to 95th luminance percentile) over the
  painting's (1 = as deep darks and bright lights as the painting; a muddy result is well below);
- speckle: the result's energy in the finest 1-2-px band over what the painting's own share of
  detail in that band would give it, the painting's strokes at the size they are asked to have
  on the result (<= 1: no finer grain than the painting; colour speckle is far above). In sRGB,
  above the grain every 8-bit picture carries (its rounding), and with a just visible grain added
  to both: on a smooth enlarged result the finest band holds rounding and invisible traces, not
  what the eye calls speckle;
- border: the step in colour at the outermost band of the picture over the same step further
  inside, against the photo's own (1 = edges like the photo's; a band along an edge is well
  above);
- palette: the distance of the result's colours from the painting's (evaluate.palette_distance).
"""
import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from .evaluate import palette_distance
from .images import fit_size, lab_array

LAYOUT_SIDE = 64        # composition is compared at this long side ...
LAYOUT_BLUR = 1.5       # ... and blurred this much more: shapes of ~1/20 of the picture
FINE_BLUR = 1.0         # the finest band: what a 1-px Gaussian takes away
DETAIL_BLUR = 4.0       # all the detail up to ~8-px strokes
PERCENTILES = (5, 95)   # the darks and the lights of value range
BORDER_SIDE_SHARE = 256  # the border band is 1/256 of the long side wide (at least 2 px)
JUST_NOTICEABLE = 1.0   # ΔE: keeps border's ratio finite on flat interiors
ROUNDING_VARIANCE = 1 / 12  # of an 8-bit channel rounded to whole levels (uniform, ±½)
VISIBLE_GRAIN = 2.0     # sRGB levels (RMS) of grain on a flat area just visible at 100 %


@dataclass(frozen=True)
class Figures:
    composition: float    # higher is better, at most 1
    colour_layout: float  # higher is better, at most 1
    value_range: float    # 1 = the painting's; lower is muddier
    speckle: float        # <= 1 is no finer grain than the painting's
    border: float         # ~1 is the photo's edges; higher is a band at an edge
    palette: float        # lower is closer to the painting's colours

    def line(self) -> str:
        return (f"composition {self.composition:.2f}  colour layout {self.colour_layout:.2f}  "
                f"value range {self.value_range:.2f}  speckle {self.speckle:.2f}  "
                f"border {self.border:.2f}  palette {self.palette:.2f}")


def measure(result: Image.Image, photo: Image.Image, painting: Image.Image,
            style_scale: float = 1.0) -> Figures:
    """Every figure of `result` (RGB) painted from `photo` in the style of `painting`;
    `style_scale` is the run's brush size (the painting's long side against the result's)."""
    layout = layout_correlation(result, photo)
    return Figures(layout[0], layout[1], value_range(result, painting),
                   speckle(result, painting, style_scale), border(result) / border(photo),
                   palette_distance(result, painting))


def layout_correlation(result: Image.Image, photo: Image.Image) -> tuple[float, float]:
    """(luminance, colour) correlation of the two pictures blurred to their layout."""
    size = fit_size(*photo.size, LAYOUT_SIDE)
    ours, theirs = (ndimage.gaussian_filter(lab_array(i.resize(size, Image.Resampling.BOX)),
                                            (LAYOUT_BLUR, LAYOUT_BLUR, 0)) for i in (result, photo))
    return _correlation(ours[..., 0], theirs[..., 0]), _correlation(ours[..., 1:], theirs[..., 1:])


def value_range(result: Image.Image, painting: Image.Image) -> float:
    """The result's 5-95 % luminance spread over the painting's."""
    def spread(image: Image.Image) -> float:
        low, high = np.percentile(_lightness(lab_array(image)), PERCENTILES)
        return float(high - low)
    return spread(result) / max(spread(painting), 1e-6)


def speckle(result: Image.Image, painting: Image.Image, style_scale: float = 1.0) -> float:
    """The result's finest-band energy over the painting's share of detail there times the
    result's detail, the painting seen with its long side the result's times `style_scale` (its
    strokes the size the run asks for), a just visible grain added to both."""
    side = max(16, round(max(result.size) * style_scale))
    seen = painting.resize(fit_size(*painting.size, side) if max(painting.size) >= side
                           else _enlarged(painting.size, side), Image.Resampling.LANCZOS)
    fine, detail = band_energies(result)
    painting_fine, painting_detail = band_energies(seen)
    expected = detail * painting_fine / painting_detail if painting_detail > 0 else 0.0
    visible = VISIBLE_GRAIN ** 2 * _white_gain(FINE_BLUR)
    return (fine + visible) / (expected + visible)


def fine_share(image: Image.Image) -> float:
    """Of an image's detail, the share in the finest band: near 1 for per-pixel noise, small
    for strokes several pixels wide, 0 for a smooth picture whatever its rounding."""
    fine, detail = band_energies(image)
    return fine / detail if detail > 0 else 0.0


def band_energies(image: Image.Image) -> tuple[float, float]:
    """Mean squared sRGB (0..255) difference an image has from its 1-px blur (the finest band)
    and from its 4-px blur (all detail up to ~8-px strokes), each above its 8-bit rounding's."""
    rgb = np.asarray(image.convert("RGB"), np.float64)

    def energy(sigma: float) -> float:
        above = rgb - ndimage.gaussian_filter(rgb, (sigma, sigma, 0))
        return max(0.0, float(np.mean(above ** 2)) - ROUNDING_VARIANCE * _white_gain(sigma))
    return energy(FINE_BLUR), energy(DETAIL_BLUR)


@functools.cache
def _white_gain(sigma: float) -> float:
    """The share of white noise's energy that what a `sigma` blur removes keeps."""
    side = 8 * int(np.ceil(sigma)) + 1
    delta = np.zeros((side, side))
    delta[side // 2, side // 2] = 1.0
    return float(np.sum((delta - ndimage.gaussian_filter(delta, sigma, mode="constant")) ** 2))


def border(image: Image.Image) -> float:
    """The largest, over the four edges, of the colour step between the outermost band and the
    band inside it, over the same step between two bands further in (ΔE, floored at
    JUST_NOTICEABLE so flat pictures stay finite)."""
    lab = lab_array(image)
    lab[..., 0] = _lightness(lab)
    width = max(2, max(image.size) // BORDER_SIDE_SHARE)
    edges = (lab, lab[::-1], lab.transpose(1, 0, 2), lab.transpose(1, 0, 2)[::-1])
    ratios = []
    for rows in edges:  # each edge seen as the top rows of a view
        edge = _band_step(rows, 0, width)
        inside = np.mean([_band_step(rows, k * width, width) for k in (4, 8)])
        ratios.append((edge + JUST_NOTICEABLE) / (inside + JUST_NOTICEABLE))
    return float(max(ratios))


def _band_step(rows: np.ndarray, start: int, width: int) -> float:
    """Mean ΔE between bands [start, start+w) and [start+w, start+2w) of rows, compared in
    segments 8 bands long along the edge (a local step, not the edge's average colour)."""
    outer = rows[start:start + width].mean(0)
    inner = rows[start + width:start + 2 * width].mean(0)
    segment = 8 * width
    count = max(1, outer.shape[0] // segment)
    steps = [np.linalg.norm(outer[i * segment:(i + 1) * segment].mean(0)
                            - inner[i * segment:(i + 1) * segment].mean(0)) for i in range(count)]
    return float(np.mean(steps))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    norm = float(np.sqrt(np.sum(a * a) * np.sum(b * b)))
    return float(np.sum(a * b)) / norm if norm > 0 else 0.0


def _lightness(lab: np.ndarray) -> np.ndarray:
    """L in 0..100 (Pillow stores it as 0..255)."""
    return lab[..., 0] * (100 / 255)


def _enlarged(size: tuple[int, int], side: int) -> tuple[int, int]:
    scale = side / max(size)
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))
