"""Wire protocol constants and framing (docs/protocol.md): the one place for these facts.

Pure Python (stdlib only): imported by the server, the client and GIMP's own Python.
"""
import json

VERSION = 1
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
ENDPOINT_ENV = "NST_ENDPOINT"

REPLY_TIMEOUT = 5.0        # s a client waits for any reply (or, during a job, any message)
HEARTBEAT_INTERVAL = 1.0   # s between a client's heartbeats for its job
JOB_TIMEOUT = 5.0          # s without a word from its client before the server drops a job
MAX_HEADER_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32        # nesting of objects/arrays a header may have
MAX_ID_CHARS = 64
MAX_SIDE = 65535
MAX_STYLES = 4             # style images (paintings) blended in one job
MAX_REGIONS = 8            # regions of one label map (a submit's `regions`)
# Frames in one message: a submit's header, pixels, paintings and label map, with room for one
# too many (refused with a reason; past the limit the gate closes the connection)
MAX_FRAMES = 4 + MAX_STYLES
DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024  # a whole message, all frames together
DEFAULT_MAX_QUEUE = 8
DEFAULT_MAX_JOBS_PER_CLIENT = 2     # waiting or running, per connection
DEFAULT_MAX_COST = 10_000_000_000   # working-size pixels x iterations of one job
DEFAULT_MAX_CLIENTS = 64            # connections at once
REQUESTS_PER_SECOND = 50            # per connection, sustained (bursts of twice that pass)
MAX_PREVIEW_SIDE = 1024     # longest side of a preview a client may ask for
DEFAULT_PREVIEW_SIDE = 512
MIN_PREVIEW_SECONDS = 0.25  # the fastest preview rate a client may ask for
# What a style frame may be: the only decoders the server lets client bytes reach (Pillow's others
# include EPS, which runs Ghostscript), each with the signatures its files start with.
STYLE_FORMATS = {"PNG": (b"\x89PNG\r\n\x1a\n",), "JPEG": (b"\xff\xd8\xff",), "WEBP": (b"RIFF",),
                 "TIFF": (b"II*\x00", b"MM\x00*"), "BMP": (b"BM",), "GIF": (b"GIF87a", b"GIF89a")}

# Requests (client -> server) and the least and most binary frames each carries.
REQUEST_FRAMES = {"ping": (0, 0), "info": (0, 0), "submit": (2, 2 + MAX_STYLES),
                  "heartbeat": (0, 0), "cancel": (0, 0), "finish": (0, 0)}

# Error codes (docs/protocol.md, "Error codes").
BAD_MESSAGE = "bad_message"
BAD_VERSION = "bad_version"
UNKNOWN_TYPE = "unknown_type"
BAD_FIELD = "bad_field"
BAD_FRAMES = "bad_frames"
BAD_PIXELS = "bad_pixels"
TOO_LARGE = "too_large"
BAD_IMAGE = "bad_image"
BAD_SETTINGS = "bad_settings"
UNKNOWN_JOB = "unknown_job"
BUSY = "busy"
TOO_COSTLY = "too_costly"
RATE_LIMITED = "rate_limited"
INTERNAL = "internal"


class ProtocolError(Exception):
    """A message that breaks the protocol; `code` is one of the error codes above."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def parse_endpoint(endpoint):
    """`tcp://HOST:PORT` -> (host, port); HOST may be a name, an IPv4 address, `[IPv6]` or `*`
    (every interface, for a server). ValueError with the reason otherwise."""
    scheme, _, rest = endpoint.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme != "tcp" or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"endpoint {endpoint!r} is not tcp://HOST:PORT")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return ("0.0.0.0" if host == "*" else host), int(port)


def style_format(head):
    """The STYLE_FORMATS name of a file starting with the bytes `head` (its first 12), or None."""
    for name, signatures in STYLE_FORMATS.items():
        if head.startswith(signatures) and (name != "WEBP" or head[8:12] == b"WEBP"):
            return name
    return None


def formats_in_words():
    """"PNG, JPEG, WEBP, TIFF, BMP or GIF"."""
    names = list(STYLE_FORMATS)
    return f"{', '.join(names[:-1])} or {names[-1]}"


def encode(msg_type, frames=(), **fields):
    """A header of `msg_type` with `fields`, plus binary frames, as a list for send_multipart."""
    header = dict(fields, v=VERSION, type=msg_type)
    return [json.dumps(header, separators=(",", ":")).encode("utf-8"), *frames]


def decode(parts):
    """Split a received multipart message into (header dict, binary frames); checks the framing
    and the version only (each side checks the fields it uses)."""
    if not parts:
        raise ProtocolError(BAD_MESSAGE, "empty message")
    if len(parts[0]) > MAX_HEADER_BYTES:
        raise ProtocolError(BAD_MESSAGE, f"header over {MAX_HEADER_BYTES} bytes")
    try:
        header = json.loads(bytes(parts[0]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ProtocolError(BAD_MESSAGE, "header is not UTF-8 JSON") from None
    except RecursionError:  # nested beyond the parser's own limit
        raise ProtocolError(BAD_MESSAGE, DEPTH_MESSAGE) from None
    if _depth(header) > MAX_JSON_DEPTH:
        raise ProtocolError(BAD_MESSAGE, DEPTH_MESSAGE)
    if not isinstance(header, dict):
        raise ProtocolError(BAD_MESSAGE, "header is not a JSON object")
    version = header.get("v")
    if type(version) is not int or version != VERSION:  # true == 1 in Python; not here
        raise ProtocolError(BAD_VERSION, f"protocol version {header.get('v')!r} is not supported; "
                                         f"this side speaks version {VERSION}")
    if not isinstance(header.get("type"), str):
        raise ProtocolError(BAD_FIELD, "header has no 'type' string")
    return header, parts[1:]


DEPTH_MESSAGE = f"header nests deeper than {MAX_JSON_DEPTH} levels"


def _depth(value):
    """How deep lists and objects nest in a parsed JSON value (iterative: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def field(header, name, kind, low=None, high=None):
    """header[name] checked for type (bool is not a number here; an int is a float) and range."""
    value = header.get(name)
    kinds = (int, float) if kind is float else kind
    if not isinstance(value, kinds) or (kind in (int, float) and isinstance(value, bool)):
        raise ProtocolError(BAD_FIELD, f"field '{name}' must be {kind.__name__}, got {value!r}"[:200])
    if (low is not None and value < low) or (high is not None and value > high):
        raise ProtocolError(BAD_FIELD, f"field '{name}' must be between {low} and {high}, got {value}")
    return value
