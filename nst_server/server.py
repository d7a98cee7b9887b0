"""The ZeroMQ server (docs/protocol.md): a socket loop that always answers, and one worker thread
that owns the device and runs jobs one at a time from a FIFO queue.

Clients reach the ROUTER through the gate (gate.py), which bounds whole messages and connections;
the ROUTER itself listens only on a private internal endpoint. The worker never touches the socket
(ZeroMQ sockets are not thread-safe): it posts its messages to a queue and wakes the loop through
an inproc pair.
"""
import logging
import os
import queue
import shutil
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass

import numpy as np
import zmq

from neural_style import nst_protocol as protocol
from neural_style import nst_settings
from neural_style.nst_protocol import ProtocolError, field

from . import __version__
from .errors import InputError, Stopped
from .gate import Gate
from .images import MIN_SIDE, decode_image
from .regions import Regions
from .jobs import Job, JobQueue
from .plans import plan
from .presets import resolve
from .throttle import RequestBudget, ThrottledLog

log = logging.getLogger("nst-server")
POLL_MS = 200  # the loop's longest sleep: abandoned jobs are noticed within this much of the deadline
BATCH = 32     # requests read before the outbox is flushed again: a flood never starves results


@dataclass(frozen=True)
class Outgoing:
    """A message the worker has for one client."""
    client: bytes
    parts: list


@dataclass(frozen=True)
class QueueMoved:
    """The worker took the next job: every waiting job's position changed."""


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


class Server:
    def __init__(self, stylizer, endpoint, limits, unload_after):
        """Listen on `endpoint` (tcp://HOST:PORT; the caller decides whether HOST may be other
        than loopback). OSError if that address cannot be had (e.g. in use). The worker loads
        the model in the background (pings are answered meanwhile) and frees it after
        `unload_after` s without a job."""
        self.stylizer, self.endpoint, self.limits = stylizer, endpoint, limits
        self.unload_after = unload_after
        self.failure: str | None = None  # why the server stopped on its own (unusable weights)
        self.jobs = JobQueue(limits.max_queue)
        self._outbox: queue.Queue[Outgoing | QueueMoved] = queue.Queue()  # from the worker
        self._stopping = threading.Event()
        self._budget = RequestBudget(protocol.REQUESTS_PER_SECOND)
        self._bad_input = ThrottledLog(log)
        self._context = zmq.Context()
        self._router = self._context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.setsockopt(zmq.MAXMSGSIZE, limits.max_message_bytes)
        self._private, inner = self._bind_inner()
        self._wake = self._context.socket(zmq.PAIR)
        self._wake.bind(f"inproc://wake-{id(self)}")
        try:
            self._gate = Gate(protocol.parse_endpoint(endpoint), inner, limits.max_message_bytes,
                              protocol.MAX_FRAMES, limits.max_clients)
        except (OSError, ValueError):
            self._close_sockets()
            raise
        self._worker = threading.Thread(target=self._work, name="nst-worker", daemon=True)

    def _bind_inner(self):
        """Bind the ROUTER where only the gate (this user) reaches it: a Unix socket in a private
        folder; on Windows, a random loopback port. Returns (folder or None, gate's target)."""
        if sys.platform == "win32":
            port = self._router.bind_to_random_port("tcp://127.0.0.1")
            return None, ("127.0.0.1", port)
        private = tempfile.mkdtemp(prefix="nst-server-")  # mode 0700
        path = os.path.join(private, "router")
        self._router.bind(f"ipc://{path}")
        return private, path

    # -- the socket loop ------------------------------------------------------------------------

    def serve_forever(self):
        """Serve until stop() is called (e.g. from a signal handler)."""
        log.info("serving on %s (device %s)", self.endpoint, self.stylizer.device)
        self._gate.start()
        self._worker.start()
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(self._wake, zmq.POLLIN)
        try:
            while not self._stopping.is_set():
                ready = dict(poller.poll(POLL_MS))
                if self._wake in ready:
                    while self._wake.poll(0):
                        self._wake.recv()
                if self._router in ready:
                    self._drain_requests()
                self._flush_outbox()
                self._drop_abandoned()
        finally:
            self._shutdown()

    def stop(self):
        self._stopping.set()

    def _drain_requests(self):
        """Read at most BATCH requests; the loop flushes the outbox before reading more."""
        for _ in range(BATCH):
            try:
                parts = self._router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            client, message = parts[0], parts[1:]
            try:
                if not self._budget.allow(client):
                    raise ProtocolError(protocol.RATE_LIMITED, "too many requests from this "
                                        f"connection (limit {protocol.REQUESTS_PER_SECOND}/s)")
                self._handle(client, message)
            except ProtocolError as exc:
                self._bad_input.warning(f"refused a request: {exc.code}: {exc.message}")
                self._send(client, "error", code=exc.code, message=exc.message)
            except Exception as exc:  # a bug must cost one reply, never the server
                self._bad_input.warning(f"request failed:\n{traceback.format_exc()}")
                self._send(client, "error", code=protocol.INTERNAL, message=repr(exc)[:300])

    def _handle(self, client, message):
        header, frames = protocol.decode(message)
        kind = header["type"]
        if kind not in protocol.REQUEST_FRAMES:
            raise ProtocolError(protocol.UNKNOWN_TYPE, f"unknown message type {kind[:40]!r}")
        least, most = protocol.REQUEST_FRAMES[kind]
        if not least <= len(frames) <= most:
            takes = f"{least}" if least == most else f"{least} to {most}"
            raise ProtocolError(protocol.BAD_FRAMES, f"'{kind}' takes {takes} binary frame(s), "
                                                     f"got {len(frames)}")
        reply_id = {}
        if "id" in header:
            reply_id = {"id": field(header, "id", str)[:protocol.MAX_ID_CHARS]}
        if kind == "ping":
            self._send(client, "pong", time=time.time(), **reply_id)
        elif kind == "info":
            self._send(client, "info", **self._info(), **reply_id)
        elif kind == "submit":
            self._submit(client, header, frames)
        else:
            job = self.jobs.find(field(header, "job", str))
            if job is None or not job.owned_by(client, header.get("token")):
                raise ProtocolError(protocol.UNKNOWN_JOB, f"no job {header['job'][:80]!r} of yours")
            running = job is self.jobs.running
            if kind == "heartbeat":
                job.last_heard = time.monotonic()
                self._send(client, "alive", job=job.id, state="running" if running else "queued",
                           **reply_id)
            elif kind == "finish" and running:
                job.finish.set()
                self._send(client, "ok", job=job.id, **reply_id)
            else:  # cancel, or finish of a job with nothing to show yet
                self._cancel(job, "cancelled")
                self._send(client, "ok", job=job.id, **reply_id)

    def _submit(self, client, header, frames):
        width, height = field(header, "width", int, 1), field(header, "height", int, 1)
        channels = field(header, "channels", int, 3, 4)
        if max(width, height) > protocol.MAX_SIDE or width * height > self.limits.max_pixels:
            raise ProtocolError(protocol.TOO_LARGE, f"{width}x{height} is over the server's limit of "
                                                    f"{self.limits.max_pixels} pixels")
        if min(width, height) < MIN_SIDE:
            raise ProtocolError(protocol.BAD_FIELD, f"the image is {width}x{height}; neural style "
                                                    f"needs at least {MIN_SIDE}x{MIN_SIDE} pixels")
        pixels, *styles = frames
        regions, labels = None, None
        if "regions" in header:
            *styles, labels = styles
            regions = self._regions_field(header, labels, width * height, len(styles))
        elif len(styles) > protocol.MAX_STYLES:
            raise ProtocolError(protocol.BAD_FRAMES, f"a submit without regions carries 1 to "
                                                     f"{protocol.MAX_STYLES} paintings")
        if len(pixels) != width * height * channels:
            raise ProtocolError(protocol.BAD_PIXELS, f"pixel frame has {len(pixels)} bytes; "
                                f"{width}x{height}x{channels} needs {width * height * channels}")
        try:
            settings = nst_settings.validate(header.get("settings", {}))
        except ValueError as exc:
            raise ProtocolError(protocol.BAD_SETTINGS, str(exc)[:300]) from None
        try:
            style_weights = nst_settings.style_shares(header.get("style_weights"), len(styles),
                                                      protocol.MAX_STYLES)
        except ValueError as exc:
            raise ProtocolError(protocol.BAD_SETTINGS, str(exc)[:300]) from None
        preview_seconds, preview_side = self._preview_fields(header)
        self._check_cost(width, height, settings)
        if self.jobs.count_for(client) >= self.limits.max_jobs_per_client:
            raise ProtocolError(protocol.BUSY, f"this connection already has "
                                f"{self.limits.max_jobs_per_client} jobs waiting or running")
        job = Job(client, width, height, channels, pixels, styles, style_weights, settings,
                  preview_seconds, preview_side, regions, labels)
        position = self.jobs.put(job)
        if position is None:
            raise ProtocolError(protocol.BUSY, f"{self.limits.max_queue} jobs are already waiting; "
                                               "try again later")
        log.info("%s queued at %d: %dx%dx%d, %s", job.id, position, width, height, channels,
                 settings["preset"])
        self._send(client, "accepted", job=job.id, token=job.token, position=position)

    @staticmethod
    def _regions_field(header, labels, pixels, paintings):
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

    @staticmethod
    def _preview_fields(header):
        """(seconds between previews, 0 for none; their longest side) of a submit."""
        seconds = field(dict({"preview_seconds": 0}, **header), "preview_seconds", float, 0, 60)
        if 0 < seconds < protocol.MIN_PREVIEW_SECONDS:
            raise ProtocolError(protocol.BAD_FIELD, f"field 'preview_seconds' must be 0 or at least "
                                                    f"{protocol.MIN_PREVIEW_SECONDS}, got {seconds}")
        side = field(dict({"preview_side": protocol.DEFAULT_PREVIEW_SIDE}, **header), "preview_side",
                     int, 16, protocol.MAX_PREVIEW_SIDE)
        return float(seconds), side

    def _check_cost(self, width, height, settings):
        """Refuse a job whose plan (pixels x iterations over all its scales) exceeds the ceiling."""
        run = resolve(settings, self.stylizer.profile.working_size)
        levels = plan(run, (width, height), self.stylizer.profile)
        cost = sum(level.work for level in levels)
        if cost > self.limits.max_cost:
            finest = "x".join(map(str, levels[-1].size))
            raise ProtocolError(protocol.TOO_COSTLY, f"this job would take {cost:.3g} "
                                f"pixel-iterations ({len(levels)} scales up to {finest} px), over "
                                f"the server's limit of {self.limits.max_cost:.3g}: use a smaller "
                                "working size, fewer iterations or resolution auto")

    def _cancel(self, job, reason):
        """Stop a job: a waiting one leaves the queue now, a running one within one iteration."""
        if self.jobs.remove(job):
            log.info("%s %s while waiting", job.id, reason)
            self._send(job.client, "cancelled", job=job.id)
            self._send_positions()
        else:
            job.request_stop(reason)

    def _drop_abandoned(self):
        now = time.monotonic()
        for job in [self.jobs.running, *self.jobs.waiting()]:
            if job is not None and now - job.last_heard > self.limits.job_timeout:
                if not job.stop.is_set():
                    log.info("%s: no heartbeat for %.0f s, dropping it", job.id, now - job.last_heard)
                self._cancel(job, "abandoned")

    def _send_positions(self):
        for job, position in self.jobs.positions():
            self._send(job.client, "queued", job=job.id, position=position)

    def _flush_outbox(self):
        while True:
            try:
                item = self._outbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, QueueMoved):
                self._send_positions()
            else:
                self._router.send_multipart([item.client, *item.parts], copy=False)

    def _send(self, client, msg_type, frames=(), **fields):
        self._router.send_multipart([client, *protocol.encode(msg_type, frames, **fields)])

    def _info(self):
        return dict(
            version=__version__, protocol=protocol.VERSION, device=str(self.stylizer.device),
            dtype=str(self.stylizer.profile.dtype).replace("torch.", ""),
            weights=self.stylizer.weights, working_size=self.stylizer.profile.working_size,
            presets=list(nst_settings.PRESETS), default_preset=nst_settings.DEFAULT_PRESET,
            pid=os.getpid(), model_loaded=self.stylizer.loaded, queue_length=len(self.jobs.waiting()),
            busy=self.jobs.running is not None, clients=self._gate.connections,
            style_cache=self.stylizer.style_cache_info(), limits=self.limits.as_dict())

    def _shutdown(self):
        self._gate.stop()
        if self.jobs.running is not None:
            self.jobs.running.request_stop("cancelled")
        self._worker.join(timeout=10)
        self._close_sockets()
        log.info("stopped")

    def _close_sockets(self):
        self._router.close()
        self._wake.close()
        self._context.term()
        if self._private:
            shutil.rmtree(self._private, ignore_errors=True)

    # -- the worker -----------------------------------------------------------------------------

    def _work(self):
        wake = self._context.socket(zmq.PAIR)
        wake.connect(f"inproc://wake-{id(self)}")
        try:
            if not self._load_model():
                return
            idle_since = time.monotonic()
            while not self._stopping.is_set():
                job = self.jobs.take(timeout=0.5)
                if job is None:
                    if self.stylizer.loaded and time.monotonic() - idle_since > self.unload_after:
                        self.stylizer.unload()
                        log.info("model freed after %.0f s without a job", self.unload_after)
                    continue
                self._post(wake, QueueMoved())
                final = self._run(job, wake)
                self.jobs.finish()  # before the client hears the end: `info` agrees with it
                self._post(wake, Outgoing(job.client, final))
                idle_since = time.monotonic()
        finally:
            wake.close()

    def _load_model(self):
        """Load the model now, while the loop already answers; stop the server if it cannot."""
        if self.stylizer.loaded:
            return True
        try:
            self.stylizer.load()
        except InputError as exc:
            self.failure = str(exc)
            log.error("cannot load the model: %s", exc)
            self.stop()
            return False
        log.info("model loaded")
        return True

    def _run(self, job, wake):
        """Run one job; return the message that ends its stream."""
        start = time.perf_counter()
        try:
            styles = [decode_image(style, self.limits.max_pixels) for style in job.styles]
            content = np.frombuffer(job.pixels, np.uint8).reshape(job.height, job.width, job.channels)
            regions = None if job.regions is None else Regions(
                np.frombuffer(job.labels, np.uint8).reshape(job.height, job.width),
                tuple(job.regions))
            result = self.stylizer.stylize(content, styles, job.settings, regions=regions,
                                           style_weights=None if regions else job.style_weights,
                                           on_progress=lambda p: self._progress(wake, job, p),
                                           should_stop=job.stop.is_set,
                                           should_finish=job.finish.is_set)
        except Stopped:
            log.info("%s stopped: %s", job.id, job.stop_reason)
            return protocol.encode("cancelled", job=job.id)
        except InputError as exc:
            log.info("%s refused: %s", job.id, exc)
            return protocol.encode("error", job=job.id, code=protocol.BAD_IMAGE, message=str(exc))
        except Exception as exc:  # the server outlives any engine failure, and says what it was
            log.error("%s failed:\n%s", job.id, traceback.format_exc())
            return protocol.encode("error", job=job.id, code=protocol.INTERNAL,
                                   message=f"{type(exc).__name__}: {exc}"[:500])
        finally:
            job.pixels, job.styles, job.labels = None, [], None  # free the inputs as soon as the job ends
        pixels = result.convert("RGBA" if job.channels == 4 else "RGB").tobytes()
        elapsed = time.perf_counter() - start
        early = job.finish.is_set()
        log.info("%s done in %.1f s%s", job.id, elapsed, " (finished early)" if early else "")
        return protocol.encode("result", [pixels], job=job.id, width=job.width, height=job.height,
                               channels=job.channels, elapsed=round(elapsed, 3), early=early)

    def _progress(self, wake, job, p):
        self._post(wake, Outgoing(job.client, protocol.encode(
            "progress", job=job.id, iteration=p.iteration, total=p.total,
            elapsed=round(p.elapsed, 3), fraction=round(p.fraction, 4),
            remaining=None if p.remaining is None else round(p.remaining, 1), losses=p.losses)))
        now = time.monotonic()
        if job.preview_seconds and now - job.last_preview >= job.preview_seconds:
            job.last_preview = now  # by time: an iteration takes 0.01 s to a minute
            image = p.preview()
            image.thumbnail((job.preview_side, job.preview_side))
            self._post(wake, Outgoing(job.client, protocol.encode(
                "preview", [image.tobytes()], job=job.id, iteration=p.iteration,
                fraction=round(p.fraction, 4), width=image.width, height=image.height, channels=3)))

    def _post(self, wake: zmq.Socket, item: Outgoing | QueueMoved) -> None:
        self._outbox.put(item)
        wake.send(b"")
