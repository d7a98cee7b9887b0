"""The device thread: takes jobs from the queue one at a time, runs them on the engine and posts
what each client is to hear to the socket loop (ZeroMQ sockets are not thread-safe: the worker
never touches the ROUTER, it queues messages and wakes the loop through an inproc pair)."""
import logging
import queue
import threading
import time
import traceback
from dataclasses import dataclass

import numpy as np
import zmq

from nst_contract import protocol

from ..engine import InputError, Progress, Regions, Stopped, decode_image
from .engine_protocol import Engine
from .jobs import Job, JobQueue

log = logging.getLogger("nst-server")


@dataclass(frozen=True)
class Outgoing:
    """A message the worker has for one client."""
    client: bytes
    parts: list


@dataclass(frozen=True)
class QueueMoved:
    """The worker took the next job: every waiting job's position changed."""


class Worker:
    def __init__(self, engine: Engine, jobs: JobQueue, max_pixels: int, unload_after: float,
                 context: zmq.Context, wake_endpoint: str, stopping: threading.Event):
        """Loads the model in the background, then runs jobs until `stopping` is set (it sets it
        itself, with `failure` saying why, if the model cannot be loaded); frees the model after
        `unload_after` s without a job."""
        self.engine, self.jobs, self.max_pixels = engine, jobs, max_pixels
        self.unload_after = unload_after
        self.failure: str | None = None
        self.outbox: queue.Queue[Outgoing | QueueMoved] = queue.Queue()
        self._context, self._wake_endpoint, self._stopping = context, wake_endpoint, stopping
        self._thread = threading.Thread(target=self._work, name="nst-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout=timeout)

    def _work(self) -> None:
        wake = self._context.socket(zmq.PAIR)
        wake.connect(self._wake_endpoint)
        try:
            if not self._load_model():
                return
            idle_since = time.monotonic()
            while not self._stopping.is_set():
                job = self.jobs.take(timeout=0.5)
                if job is None:
                    if self.engine.loaded and time.monotonic() - idle_since > self.unload_after:
                        self.engine.unload()
                        log.info("model freed after %.0f s without a job", self.unload_after)
                    continue
                self._post(wake, QueueMoved())
                final = self._run(job, wake)
                self.jobs.end_running()  # before the client hears the end: `info` agrees with it
                self._post(wake, Outgoing(job.client, final))
                idle_since = time.monotonic()
        finally:
            wake.close()

    def _load_model(self) -> bool:
        """Load the model now, while the loop already answers; stop the server if it cannot."""
        if self.engine.loaded:
            return True
        try:
            self.engine.load()
        except InputError as exc:
            self.failure = str(exc)
            log.error("cannot load the model: %s", exc)
            self._stopping.set()
            return False
        log.info("model loaded")
        return True

    def _run(self, job: Job, wake: zmq.Socket) -> list:
        """Run one job; return the message that ends its stream."""
        start = time.perf_counter()
        try:
            styles = [decode_image(style, self.max_pixels) for style in job.styles]
            assert job.pixels is not None  # freed only once the job ends
            content = np.frombuffer(job.pixels, np.uint8).reshape(job.height, job.width, job.channels)
            regions = None
            if job.regions is not None and job.labels is not None:  # admission sends both or none
                labels = np.frombuffer(job.labels, np.uint8).reshape(job.height, job.width)
                regions = Regions(labels, tuple(job.regions))
            result = self.engine.stylize(content, styles, job.settings, regions=regions,
                                         style_weights=None if regions else job.style_weights,
                                         on_progress=lambda p: self._progress(wake, job, p),
                                         should_stop=job.stop.is_set,
                                         should_finish=job.finish_early.is_set)
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
        early = job.finish_early.is_set()
        log.info("%s done in %.1f s%s", job.id, elapsed, " (finished early)" if early else "")
        return protocol.encode("result", [pixels], job=job.id, width=job.width, height=job.height,
                               channels=job.channels, elapsed=round(elapsed, 3), early=early)

    def _progress(self, wake: zmq.Socket, job: Job, p: Progress) -> None:
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
        self.outbox.put(item)
        wake.send(b"")
