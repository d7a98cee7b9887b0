"""Client for nst-server (docs/protocol.md): standard library only (its ZeroMQ is nst_zmtp.py), so
GIMP's own Python 3.10+ runs it on every platform; scripts and `nst-stylize --server` use it too.

    client = Client()                                   # endpoint from NST_ENDPOINT or the default
    client.ping()                                       # round-trip seconds
    pixels = client.stylize(rgba, w, h, 4, style_file_bytes, {"preset": "fast"},
                            on_event=lambda event: ..., should_cancel=lambda: False,
                            should_finish=lambda: False, preview_seconds=1.0)

Every call is bounded by `timeout` (protocol.REPLY_TIMEOUT unless given): a dead or absent
server raises ServerUnavailable, never hangs.
Each call uses its own connection, closed when the call ends, so a call that failed leaves
nothing behind that could break the next one.
"""
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from . import protocol, zmtp


class NSTError(Exception):
    """Base of the errors this client raises."""


class ServerUnavailable(NSTError):
    """No answer from the server within the timeout (not running, wrong endpoint, or died)."""


class ServerError(NSTError):
    """The server refused or failed a request; `code` is a protocol error code."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{message} [{code}]")
        self.code, self.message = code, message


class NotAServer(NSTError):
    """What answered at the endpoint does not speak the nst-server protocol correctly."""


class JobCancelled(NSTError):
    """The job was cancelled (by should_cancel, or by another client)."""


class Control(Enum):
    """What the caller of `stylize` wants done with its running job, polled several times a
    second."""
    CANCEL = "cancel"   # drop it: JobCancelled is raised
    FINISH = "finish"   # end it now: its current image is the result


class JobEventKind(Enum):
    """The messages of a job's stream, in the order they can come (docs/protocol.md)."""
    ACCEPTED = "accepted"   # position, token
    QUEUED = "queued"       # position: jobs ahead, while waiting
    PROGRESS = "progress"   # iteration, total, elapsed, fraction (of the work), remaining, losses
    PREVIEW = "preview"     # iteration, fraction, width, height, pixels (RGB, 8 bits)
    RESULT = "result"       # elapsed (the server's own time), early (ended by FINISH); pixels


@dataclass(frozen=True)
class JobEvent:
    """One message of a job's stream, as `on_event` gets it: the fields its kind carries are set."""
    kind: JobEventKind
    job: str
    position: int | None = None
    iteration: int | None = None
    total: int | None = None
    elapsed: float | None = None
    fraction: float | None = None   # PROGRESS: of the job's work done, 0..1
    remaining: float | None = None  # PROGRESS: estimated seconds left
    losses: dict[str, float] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    pixels: bytes = b""
    token: str = ""         # ACCEPTED: lets another connection cancel the job (Client.cancel)
    early: bool = False     # RESULT: the job was finished early, on request

    @classmethod
    def from_message(cls, header: dict[str, Any], frames: list) -> "JobEvent":
        kind = JobEventKind(header["type"])
        pixels = bytes(frames[0]) if kind is JobEventKind.PREVIEW and frames else b""
        return cls(kind, str(header.get("job", "")), header.get("position"),
                   header.get("iteration"), header.get("total"), header.get("elapsed"),
                   header.get("fraction"), header.get("remaining"), header.get("losses") or {},
                   header.get("width"), header.get("height"), pixels,
                   str(header.get("token", "")), header.get("early") is True)


def default_endpoint() -> str:
    return os.environ.get(protocol.ENDPOINT_ENV) or protocol.DEFAULT_ENDPOINT


JOB_STREAM = {kind.value for kind in JobEventKind}


class Client:
    _ids = itertools.count(1)

    def __init__(self, endpoint: str | None = None, timeout: float = protocol.REPLY_TIMEOUT):
        self.endpoint = endpoint or default_endpoint()
        self.timeout = timeout

    def ping(self) -> float:
        """Round-trip time in seconds."""
        start = time.perf_counter()
        self._call("ping")
        return time.perf_counter() - start

    def info(self) -> dict[str, Any]:
        header, _ = self._call("info")
        return {k: v for k, v in header.items() if k not in ("v", "type", "id")}

    def cancel(self, job: str, token: str) -> None:
        """Cancel a job from another connection than the one that submitted it: `token` is the
        one its ACCEPTED event carried."""
        self._call("cancel", job=job, token=token)

    def stylize(self, pixels: bytes, width: int, height: int, channels: int,
                style_bytes: bytes | list[bytes], settings: dict[str, Any] | None = None, *,
                style_weights: list[float] | None = None,
                on_event: Callable[[JobEvent], None] | None = None,
                should_cancel: Callable[[], bool] | None = None,
                should_finish: Callable[[], bool] | None = None, preview_seconds: float = 0,
                preview_side: int = protocol.DEFAULT_PREVIEW_SIDE,
                regions: list[int | None] | None = None, labels: bytes | None = None) -> bytes:
        """Run one job; return the result's pixels (same width, height and channels).
        `style_bytes`: one painting's image file, or several blended by `style_weights`
        (default: equal shares); or, with `regions`, each part of the picture in its own:
        `labels` gives each pixel's region (a byte per pixel), `regions[r]` region r's painting
        (an index into `style_bytes`) or None to keep the photo there.

        on_event gets the job's stream in order: ACCEPTED, QUEUED, PROGRESS, PREVIEW (every
        `preview_seconds`, longest side `preview_side`; none for 0), and last RESULT.
        should_cancel() and should_finish() are polled several times a second: once the first is
        true the job is cancelled on the server and JobCancelled is raised; once the second is,
        the server ends the job and its current image comes back as the result (a job still
        waiting has none: it is cancelled).
        """
        styles = style_bytes if isinstance(style_bytes, list) else [style_bytes]
        extra: dict[str, Any] = {} if style_weights is None else {"style_weights": style_weights}
        frames = [pixels, *styles]
        if regions is not None:
            extra["regions"] = regions
            frames.append(labels or b"")
        with self._connect() as sock:
            self._send(sock, protocol.encode(
                "submit", frames, width=width, height=height, channels=channels,
                settings=settings or {}, preview_seconds=preview_seconds,
                preview_side=preview_side, **extra))
            header, frames = self._reply(sock)
            if header["type"] != "accepted":
                raise ServerError(protocol.INTERNAL, f"unexpected reply {header['type']!r}")
            if on_event is not None:
                on_event(JobEvent.from_message(header, frames))
            control = {Control.CANCEL: should_cancel, Control.FINISH: should_finish}
            return self._follow(sock, header["job"], on_event, control)

    # -- internals ---------------------------------------------------------------------------------

    def _follow(self, sock: zmtp.DealerConnection, job: str, on_event: Callable[[JobEvent], None] | None,
                control: dict[Control, Callable[[], bool] | None]) -> bytes:
        """Stream a job's messages until it ends, sending heartbeats and relaying a cancel or a
        finish (once each)."""
        last_beat = last_heard = time.monotonic()
        sent: set[Control] = set()
        while True:
            for request, asked in control.items():
                if asked is not None and request not in sent and asked():
                    self._send(sock, protocol.encode(request.value, job=job))
                    sent.add(request)
            if time.monotonic() - last_beat >= protocol.HEARTBEAT_INTERVAL:
                self._send(sock, protocol.encode("heartbeat", job=job))
                last_beat = time.monotonic()
            try:
                message = self._receive(sock, 0.2)
            except ServerError as exc:
                if exc.code != protocol.UNKNOWN_JOB:
                    raise
                continue  # a heartbeat crossed the job's end: its final message is on its way
            if message is None:
                if time.monotonic() - last_heard > self.timeout:
                    raise self._unavailable("stopped answering")
                continue
            last_heard = time.monotonic()
            header, frames = message
            if header["type"] == "cancelled":
                raise JobCancelled(f"job {job} was cancelled")
            if header["type"] not in JOB_STREAM:
                continue  # e.g. `alive`, the answer to a heartbeat
            if on_event is not None:
                on_event(JobEvent.from_message(header, frames))
            if header["type"] == JobEventKind.RESULT.value:
                return bytes(frames[0])

    def _call(self, msg_type: str, **fields: Any) -> tuple[dict[str, Any], list]:
        """One request, one reply, on a fresh connection."""
        request_id = f"{os.getpid()}-{next(self._ids)}"
        with self._connect() as sock:
            self._send(sock, protocol.encode(msg_type, id=request_id, **fields))
            return self._reply(sock)

    def _reply(self, sock: zmtp.DealerConnection) -> tuple[dict[str, Any], list]:
        """The next message within the timeout, or ServerUnavailable."""
        message = self._receive(sock, self.timeout)
        if message is None:
            raise self._unavailable("did not answer")
        return message

    def _connect(self) -> zmtp.DealerConnection:
        try:
            host, port = protocol.parse_endpoint(self.endpoint)
        except ValueError as exc:
            raise NSTError(str(exc)) from None
        try:
            return zmtp.DealerConnection(host, port, self.timeout, protocol.DEFAULT_MAX_MESSAGE_BYTES,
                                         protocol.MAX_FRAMES)
        except zmtp.ZMTPError as exc:
            raise NotAServer(f"{self.endpoint} did not answer as an nst-server: {exc}") from None
        except (OSError, zmtp.Timeout):
            raise self._unavailable("could not be reached") from None

    def _send(self, sock: zmtp.DealerConnection, parts: list) -> None:
        try:
            sock.send(parts)
        except OSError:
            raise self._unavailable("stopped answering") from None

    def _receive(self, sock: zmtp.DealerConnection,
                 seconds: float) -> tuple[dict[str, Any], list] | None:
        """The next message as (header, frames), or None if nothing came within `seconds`.
        `error` messages are raised as ServerError."""
        try:
            parts = sock.receive(seconds)
        except zmtp.Timeout:
            return None
        except zmtp.ZMTPError as exc:
            raise NotAServer(f"{self.endpoint} broke the protocol: {exc}") from None
        except OSError:
            raise self._unavailable("stopped answering") from None
        try:
            header, frames = protocol.decode(parts)
        except protocol.ProtocolError as exc:
            raise ServerError(exc.code, f"garbled reply from the server: {exc.message}") from None
        if header["type"] == "error":
            raise ServerError(header.get("code", protocol.INTERNAL), header.get("message", ""))
        return header, frames

    def _unavailable(self, what: str) -> ServerUnavailable:
        return ServerUnavailable(
            f"nst-server at {self.endpoint} {what} within {self.timeout:g} s. Start it with "
            f"'nst-server start' (from the virtualenv install.py made), then try again.")
