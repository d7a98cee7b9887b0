"""`nst-stylize --server ENDPOINT`: the same job, run by a running nst-server through the client."""
import io

from PIL import Image

from nst_contract.client import Client, JobEvent, JobEventKind

from ..engine import split_alpha


def stylize_remote(endpoint, content, styles, settings, style_weights=None, bar=None,
                   regions=None):
    """Send `content` (any PIL mode; alpha kept) and the paintings `styles` (blended by
    `style_weights`, or one per part of the picture by `regions`) to the server; return the
    result."""
    rgb, alpha = split_alpha(content)
    if alpha is not None:
        rgb.putalpha(alpha)

    def on_event(event: JobEvent) -> None:
        if bar is not None and event.kind is JobEventKind.PROGRESS:
            bar.update(event.fraction or 0.0, event.remaining)

    try:
        pixels = Client(endpoint).stylize(
            rgb.tobytes(), rgb.width, rgb.height, len(rgb.getbands()),
            [_png(style) for style in styles], settings, style_weights=style_weights,
            on_event=on_event, **({} if regions is None else {
                "regions": list(regions.paintings), "labels": regions.labels.tobytes()}))
    finally:
        if bar is not None:
            bar.close()
    return Image.frombytes(rgb.mode, rgb.size, pixels)


def _png(image):
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
