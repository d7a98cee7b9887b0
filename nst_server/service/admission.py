"""A submit checked and priced before it is queued: every field bounded, the settings validated
once, the job's cost asked of the engine; anything wrong is a ProtocolError the client hears."""
from dataclasses import dataclass

from nst_contract import protocol
from nst_contract import settings as nst_settings
from nst_contract.protocol import ProtocolError, field

from ..engine import MIN_SIDE
from .engine_protocol import Engine
from .jobs import Job


@dataclass(frozen=True)
class Limits:
    max_pixels: int = protocol.DEFAULT_MAX_PIXELS
    max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES
    max_queue: int = protocol.DEFAULT_MAX_QUEUE
    job_timeout: float = protocol.JOB_TIMEOUT
    max_jobs_per_client: int = protocol.DEFAULT_MAX_JOBS_PER_CLIENT
    max_cost: int = protocol.DEFAULT_MAX_COST
    max_clients: int = protocol.DEFAULT_MAX_CLIENTS

    def as_dict(self) -> dict:
        return dict(self.__dict__, max_frames=protocol.MAX_FRAMES,
                    requests_per_second=protocol.REQUESTS_PER_SECOND)


def admit(client: bytes, header: dict, frames: list, limits: Limits, engine: Engine) -> Job:
    """The job a submit asks for (not yet queued), or ProtocolError saying what is wrong."""
    width, height = field(header, "width", int, 1), field(header, "height", int, 1)
    channels = field(header, "channels", int, 3, 4)
    if max(width, height) > protocol.MAX_SIDE or width * height > limits.max_pixels:
        raise ProtocolError(protocol.TOO_LARGE, f"{width}x{height} is over the server's limit of "
                                                f"{limits.max_pixels} pixels")
    if min(width, height) < MIN_SIDE:
        raise ProtocolError(protocol.BAD_FIELD, f"the image is {width}x{height}; neural style "
                                                f"needs at least {MIN_SIDE}x{MIN_SIDE} pixels")
    pixels, *styles = frames
    regions, labels = None, None
    if "regions" in header:
        *styles, labels = styles
        regions = regions_field(header, labels, width * height, len(styles))
    elif len(styles) > protocol.MAX_STYLES:
        raise ProtocolError(protocol.BAD_FRAMES, f"a submit without regions carries 1 to "
                                                 f"{protocol.MAX_STYLES} paintings")
    if len(pixels) != width * height * channels:
        raise ProtocolError(protocol.BAD_PIXELS, f"pixel frame has {len(pixels)} bytes; "
                            f"{width}x{height}x{channels} needs {width * height * channels}")
    try:
        settings = nst_settings.validate(header.get("settings", {}))
        style_weights = nst_settings.style_shares(header.get("style_weights"), len(styles),
                                                  protocol.MAX_STYLES)
    except ValueError as exc:
        raise ProtocolError(protocol.BAD_SETTINGS, str(exc)[:300]) from None
    preview_seconds, preview_side = preview_fields(header)
    check_cost(engine, (width, height), settings, limits.max_cost)
    return Job(client, width, height, channels, pixels, styles, style_weights, settings,
               preview_seconds, preview_side, regions, labels)


def regions_field(header: dict, labels: bytes, pixels: int, paintings: int) -> list[int | None]:
    """A submit's `regions` (each label's painting index, or null to keep the photo) with
    its label-map frame, checked for shape; what they cover is the engine's to check."""
    regions = header["regions"]
    if (not isinstance(regions, list) or not 1 <= len(regions) <= protocol.MAX_REGIONS or
            not all(r is None or (type(r) is int and 0 <= r < paintings) for r in regions)):
        raise ProtocolError(protocol.BAD_FIELD, f"field 'regions' must list 1 to "
                            f"{protocol.MAX_REGIONS} painting indexes (0 to {paintings - 1}) "
                            "or nulls, one per label")
    if "style_weights" in header:
        raise ProtocolError(protocol.BAD_FIELD, "'style_weights' do not apply with 'regions': "
                                                "each region has its own painting")
    if len(labels) != pixels:
        raise ProtocolError(protocol.BAD_FRAMES, f"the label map has {len(labels)} bytes; "
                                                 f"the layer needs {pixels}, one per pixel")
    return regions


def preview_fields(header: dict) -> tuple[float, int]:
    """(seconds between previews, 0 for none; their longest side) of a submit."""
    seconds = field(dict({"preview_seconds": 0}, **header), "preview_seconds", float, 0, 60)
    if 0 < seconds < protocol.MIN_PREVIEW_SECONDS:
        raise ProtocolError(protocol.BAD_FIELD, f"field 'preview_seconds' must be 0 or at least "
                                                f"{protocol.MIN_PREVIEW_SECONDS}, got {seconds}")
    side = field(dict({"preview_side": protocol.DEFAULT_PREVIEW_SIDE}, **header), "preview_side",
                 int, 16, protocol.MAX_PREVIEW_SIDE)
    return float(seconds), side


def check_cost(engine: Engine, size: tuple[int, int], settings: dict, max_cost: int) -> None:
    """Refuse a job whose plan (pixels x iterations over all its scales) exceeds the ceiling."""
    cost = engine.estimate(settings, size)
    if cost.work > max_cost:
        finest = "x".join(map(str, cost.finest))
        raise ProtocolError(protocol.TOO_COSTLY, f"this job would take {cost.work:.3g} "
                            f"pixel-iterations ({cost.scales} scales up to {finest} px), over "
                            f"the server's limit of {max_cost:.3g}: use a smaller "
                            "working size, fewer iterations or resolution auto")
