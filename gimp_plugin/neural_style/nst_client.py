"""Client for nst-server (docs/protocol.md): stdlib + pyzmq only, for GIMP's Python 3.10+ too.

    client = Client()                                   # endpoint from NST_ENDPOINT or the default
    client.ping()                                       # round-trip seconds
    pixels = client.stylize(rgba, w, h, 4, style_file_bytes, {"preset": "fast"},
                            on_progress=lambda event: ..., should_cancel=lambda: False)

Every call is bounded by `timeout`: a dead or absent server raises ServerUnavailable, never hangs.
Each call uses its own socket with LINGER 0, closed when the call ends, so a call that failed
leaves nothing behind that could break the next one.
"""
import itertools
import os
import time

import zmq

try:
    from . import nst_protocol as protocol
except ImportError:  # inside GIMP the plug-in folder itself is on sys.path
    import nst_protocol as protocol


class NSTError(Exception):
    """Base of the errors this client raises."""


class ServerUnavailable(NSTError):
    """No answer from the server within the timeout (not running, wrong endpoint, or died)."""


class ServerError(NSTError):
    """The server refused or failed a request; `code` is a protocol error code."""

    def __init__(self, code, message):
        super().__init__(f"{message} [{code}]")
        self.code, self.message = code, message


class Cancelled(NSTError):
    """The job was cancelled (by should_cancel, or by another client)."""


def default_endpoint():
    return os.environ.get(protocol.ENDPOINT_ENV) or protocol.DEFAULT_ENDPOINT


class Client:
    _ids = itertools.count(1)

    def __init__(self, endpoint=None, timeout=5.0):
        self.endpoint = endpoint or default_endpoint()
        self.timeout = timeout
        self._context = zmq.Context.instance()

    def ping(self):
        """Round-trip time in seconds."""
        start = time.perf_counter()
        self._call("ping")
        return time.perf_counter() - start

    def info(self):
        header, _ = self._call("info")
        return {k: v for k, v in header.items() if k not in ("v", "type", "id")}

    def cancel(self, job):
        self._call("cancel", job=job)

    def stylize(self, pixels, width, height, channels, style_bytes, settings=None,
                on_progress=None, should_cancel=None, preview_every=0):
        """Run one job; return the result's pixels (same width, height and channels).

        on_progress(event) gets every stream message's header in order: `accepted`, `queued`,
        `progress`, `preview` (with event["pixels"]), and last `result` (with the server's
        `elapsed`). should_cancel() is polled several times a
        second; when it returns true the job is cancelled on the server and Cancelled is raised.
        """
        with self._socket() as sock:
            self._send(sock, protocol.encode(
                "submit", [pixels, style_bytes], width=width, height=height, channels=channels,
                settings=settings or {}, preview_every=preview_every))
            header, _ = self._reply(sock)
            if header["type"] != "accepted":
                raise ServerError(protocol.INTERNAL, f"unexpected reply {header['type']!r}")
            if on_progress is not None:
                on_progress(header)
            return self._follow(sock, header["job"], on_progress, should_cancel)

    # -- internals ---------------------------------------------------------------------------------

    def _follow(self, sock, job, on_progress, should_cancel):
        """Stream a job's messages until it ends, sending heartbeats and relaying a cancel."""
        last_beat = last_heard = time.monotonic()
        cancelling = False
        while True:
            if should_cancel is not None and not cancelling and should_cancel():
                self._send(sock, protocol.encode("cancel", job=job))
                cancelling = True
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
            kind = header["type"]
            if kind == "result":
                if on_progress is not None:
                    on_progress(header)
                return bytes(frames[0])
            if kind == "cancelled":
                raise Cancelled(f"job {job} was cancelled")
            if kind == "preview" and frames:
                header["pixels"] = bytes(frames[0])
            if on_progress is not None and kind in ("queued", "progress", "preview"):
                on_progress(header)

    def _call(self, msg_type, **fields):
        """One request, one reply, on a fresh socket."""
        request_id = f"{os.getpid()}-{next(self._ids)}"
        with self._socket() as sock:
            self._send(sock, protocol.encode(msg_type, id=request_id, **fields))
            return self._reply(sock)

    def _reply(self, sock):
        """The next message within the timeout, or ServerUnavailable."""
        message = self._receive(sock, self.timeout)
        if message is None:
            raise self._unavailable("did not answer")
        return message

    def _socket(self):
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)      # closing never waits for unsent messages
        sock.setsockopt(zmq.IMMEDIATE, 1)   # sends wait for a real connection, not a queue
        sock.setsockopt(zmq.SNDTIMEO, int(self.timeout * 1000))
        sock.connect(self.endpoint)
        return sock

    def _send(self, sock, parts):
        try:
            sock.send_multipart(parts, copy=False)
        except zmq.Again:
            raise self._unavailable("could not be reached") from None

    def _receive(self, sock, seconds):
        """The next message as (header, frames), or None if nothing came within `seconds`.
        `error` messages are raised as ServerError."""
        if not sock.poll(max(0, int(seconds * 1000)), zmq.POLLIN):
            return None
        parts = sock.recv_multipart()
        try:
            header, frames = protocol.decode(parts)
        except protocol.ProtocolError as exc:
            raise ServerError(exc.code, f"garbled reply from the server: {exc.message}") from None
        if header["type"] == "error":
            raise ServerError(header.get("code", protocol.INTERNAL), header.get("message", ""))
        return header, frames

    def _unavailable(self, what):
        return ServerUnavailable(
            f"nst-server at {self.endpoint} {what} within {self.timeout:g} s. Start it with "
            f"'nst-server start' (from the virtualenv install.py made), then try again.")
