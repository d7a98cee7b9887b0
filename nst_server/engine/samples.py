"""Sample images that work offline: photos that scikit-image ships, and paintings generated here.

Used by `nst-stylize --demo`, the benchmark and the tests, so none of them needs a download.
The generated "paintings" are brush strokes laid along a swirling flow field with a fixed palette:
strong, recognizable textures at several scales, which is what style transfer picks up.
"""
import math
import random

from PIL import Image, ImageDraw, ImageFilter

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left")

PALETTES = {
    "swirls": ((18, 32, 84), (40, 72, 150), (90, 140, 200), (235, 200, 70), (250, 235, 160),
               (20, 20, 40)),
    "embers": ((60, 10, 10), (160, 40, 20), (230, 110, 30), (250, 200, 90), (40, 30, 30),
               (120, 90, 160)),
    "meadow": ((30, 70, 40), (90, 140, 60), (200, 190, 90), (240, 240, 220), (120, 60, 110),
               (60, 110, 160)),
}


def photo(name):
    """A photo that scikit-image ships, as a PIL RGB image."""
    from skimage import data
    if name not in PHOTOS:
        raise ValueError(f"unknown sample photo {name!r}; choose from {', '.join(PHOTOS)}")
    return Image.fromarray(getattr(data, name)())


def painting(name="swirls", size=512, seed=0):
    """A generated brush-stroke painting in one of PALETTES."""
    rng = random.Random(seed)
    palette = PALETTES[name]
    image = Image.new("RGB", (size, size), palette[0])
    draw = ImageDraw.Draw(image)
    centres = [(rng.uniform(0, size), rng.uniform(0, size), rng.choice((-1, 1))) for _ in range(5)]
    for _ in range(size * 6):
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        colour = _jitter(rng.choice(palette), rng)
        width = rng.choice((2, 3, 4, 6, 9))
        points = [(x, y)]
        for _ in range(rng.randint(4, 12)):
            angle = _flow(x, y, centres, size)
            x, y = x + 4 * math.cos(angle), y + 4 * math.sin(angle)
            points.append((x, y))
        draw.line(points, fill=colour, width=width, joint="curve")
    return image.filter(ImageFilter.SMOOTH)


def _flow(x, y, centres, size):
    """Direction of the swirl field at (x, y): circles around a few centres, plus a wave."""
    dx = dy = 0.0
    for cx, cy, turn in centres:
        rx, ry = x - cx, y - cy
        weight = 1.0 / (1.0 + (rx * rx + ry * ry) / (size * size / 16))
        dx, dy = dx - turn * ry * weight, dy + turn * rx * weight
    return math.atan2(dy, dx) + 0.3 * math.sin(y / size * 12)


def _jitter(colour, rng):
    return tuple(max(0, min(255, c + rng.randint(-18, 18))) for c in colour)
