"""`nst-stylize CONTENT STYLE [STYLE ...] -o OUT`: the engine from a terminal, with a progress bar;
`--region MASK=PAINTING` (repeatable) paints each part of the picture in its own painting.

Option names are a public API shared with the GIMP plug-in's arguments (nst_settings.KNOBS).
Usage errors (missing file, not an image, bad value) print one line and exit with status 2.
"""
import argparse
import os
import sys
import time

import numpy as np
from PIL import Image, UnidentifiedImageError

from nst_contract import settings as nst_settings
from nst_contract.client import NSTError
from nst_contract.protocol import MAX_STYLES

from ..engine import InputError, Stopped

USAGE_ERROR = 2
DEMO_OUTPUT = "neural-style-demo.png"


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (no usage dump): users read the reason, not the synopsis."""

    def error(self, message):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def build_parser():
    parser = OneLineParser(
        prog="nst-stylize", description="Repaint CONTENT in the style of STYLE (neural style "
        "transfer, Gatys et al.). The result has CONTENT's size; alpha is kept.")
    parser.add_argument("content", nargs="?", help="the image to repaint")
    parser.add_argument("style", nargs="*", help="the painting whose style to use; several are "
                        "blended (see --style-weights); with --region, one for the rest of the "
                        "picture, or none to keep it")
    parser.add_argument("-o", "--output", help="where to write the result (PNG, JPEG, WebP, TIFF)")
    parser.add_argument("--demo", action="store_true", help="stylize a bundled photo with a "
                        f"bundled painting (offline); writes {DEMO_OUTPUT} unless -o is given")
    for knob in nst_settings.KNOBS.values():
        kwargs = {"help": knob.help, "dest": knob.name}
        if knob.kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs.update(type=_typed(knob), metavar=knob.name.upper())
        parser.add_argument(knob.option, default=knob.default, **kwargs)
    parser.add_argument("--style-weights", type=_weights, metavar="W1,W2,...",
                        help="each painting's weight in a blend, e.g. 0.7,0.3 (default: equal)")
    parser.add_argument("--region", action="append", type=_region, default=[],
                        metavar="MASK=PAINTING", help="paint where the mask image is white (over "
                        "50 %%) in this painting (repeatable: a painting per part of the picture; "
                        "a later mask wins where they overlap)")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    parser.add_argument("--weights", default="original", help="VGG19 weights: original (bundled, "
                        "offline), torchvision (downloads 548 MB once) or a state-dict file")
    parser.add_argument("--server", metavar="ENDPOINT", help="run on a running nst-server "
                        "(e.g. tcp://127.0.0.1:5555) instead of in this process")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return parser


def _typed(knob):
    """argparse type for a knob: parses the text, then applies the knob's own range check."""
    def convert(text):
        try:
            return knob.check(text if knob.kind is str else _number(text))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc).replace(f"{knob.name} must", "must")) from None
    return convert


def _weights(text):
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be numbers separated by commas, got {text!r}") from None


def _region(text):
    mask, _, painting = text.partition("=")
    if not mask or not painting:
        raise argparse.ArgumentTypeError(f"must be MASK=PAINTING, got {text!r}")
    return mask, painting


def _number(text):
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"must be a number, got {text!r}") from None


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        content, styles, output = _inputs(args, parser)
        regions = None
        if args.region:
            styles, regions = _regions(args, content, styles)
        settings = {name: getattr(args, name) for name in nst_settings.KNOBS}
        result = _run(args, content, styles, settings, regions)
        result.save(output)
    except (InputError, OSError) as exc:
        print(f"nst-stylize: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except NSTError as exc:  # from --server: the server is absent, or refused the job
        print(f"nst-stylize: error: {exc}", file=sys.stderr)
        return 1
    except (Stopped, KeyboardInterrupt):
        print("\nnst-stylize: stopped", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"wrote {output} ({result.width}x{result.height})", file=sys.stderr)
    return 0


def _inputs(args, parser):
    if args.demo:
        from ..engine.samples import painting, photo
        return photo("chelsea"), [painting("swirls")], args.output or DEMO_OUTPUT
    if not (args.content and (args.style or args.region) and args.output):
        parser.error("CONTENT, STYLE and -o OUT are required (or --demo)")
    if args.region and (len(args.style) > 1 or args.style_weights is not None):
        raise InputError("--region: give at most one STYLE (for the rest of the picture), "
                         "without --style-weights")
    if os.path.splitext(args.output)[1].lower() not in Image.registered_extensions():
        raise InputError(f"output {args.output}: unknown image format (use .png, .jpg, .webp, .tif)")
    if args.style_weights is not None:
        try:  # before any work: one weight per painting, usable
            nst_settings.style_shares(args.style_weights, len(args.style), MAX_STYLES)
        except ValueError as exc:
            raise InputError(str(exc).replace("style_weights", "--style-weights")) from None
    styles = [_open(path, "style") for path in args.style]
    return _open(args.content, "content"), styles, args.output


def _open(path, role):
    if not os.path.isfile(path):
        raise InputError(f"{role} image {path}: no such file")
    try:
        image = Image.open(path)
        image.load()
        return image
    except UnidentifiedImageError:
        raise InputError(f"{role} image {path}: not an image file") from None
    except Image.DecompressionBombError as exc:
        raise InputError(f"{role} image {path}: too many pixels ({exc})") from None


def _regions(args, content, rest):
    """The paintings and the label map of --region: label 0 is the rest of the picture (the one
    STYLE, or kept), label i the i-th mask's part."""
    from ..engine import Regions
    labels = np.zeros((content.height, content.width), np.uint8)
    paintings = list(rest)
    for number, (mask_path, painting_path) in enumerate(args.region, start=1):
        mask = _open(mask_path, "region mask").convert("L")
        if mask.size != content.size:
            mask = mask.resize(content.size, Image.Resampling.BILINEAR)
        labels[np.asarray(mask) >= 128] = number
        paintings.append(_open(painting_path, "region painting"))
    first = len(rest)
    return paintings, Regions(labels, (0 if rest else None,
                                       *range(first, first + len(args.region))))


def _run(args, content, styles, settings, regions=None):
    bar = None if args.quiet else ProgressBar()
    if args.server:
        from .remote import stylize_remote
        return stylize_remote(args.server, content, styles, settings, args.style_weights, bar,
                              regions)
    from ..engine import Stylizer
    stylizer = Stylizer(weights=args.weights, device=args.device)
    try:
        return stylizer.stylize(content, styles, settings, on_progress=bar,
                                style_weights=args.style_weights, regions=regions)
    finally:
        if bar:
            bar.close()


class ProgressBar:
    """A one-line progress bar of the work done on stderr: [#####.....] 45 % 12.3 s, ~15 s left."""

    WIDTH = 30

    def __init__(self, stream=sys.stderr):
        self.stream, self.start = stream, time.perf_counter()

    def __call__(self, progress):
        self.update(progress.fraction, progress.remaining)

    def update(self, fraction, remaining):
        filled = round(self.WIDTH * fraction)
        elapsed = time.perf_counter() - self.start
        left = "estimating time left" if remaining is None else f"~{remaining:.0f} s left"
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.WIDTH - filled)}] {fraction:4.0%} "
                          f"{elapsed:5.1f} s, {left:<22}")
        self.stream.flush()

    def close(self):
        self.stream.write("\n")
