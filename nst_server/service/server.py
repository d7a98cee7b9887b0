"""The ZeroMQ server (docs/protocol.md): a socket loop that always answers, around one worker
thread (worker.py) that owns the device and runs jobs one at a time from a FIFO queue.

Clients reach the ROUTER through the gate (gate.py), which bounds whole messages and connections;
the ROUTER itself listens only on a private internal endpoint. A submit is checked and priced by
admission.py before it is queued.
"""
import logging
import os
import queue
import shutil
import sys
import tempfile
import threading
import traceback

import zmq

from nst_contract import protocol
from nst_contract import settings as nst_settings
from nst_contract.protocol import ProtocolError

from .. import __version__
from .admission import Limits
from .engine_protocol import Engine
from .gate import Gate
from .jobs import JobQueue
from .requests import Requests
from .throttle import RequestBudget, ThrottledLog
from .worker import QueueMoved, Worker

log = logging.getLogger("nst-server")
POLL_MS = 200  # the loop's longest sleep: abandoned jobs are noticed within this much of the deadline
BATCH = 32     # requests read before the outbox is flushed again: a flood never starves results


class Server:
    def __init__(self, stylizer: Engine, endpoint: str, limits: Limits, unload_after: float):
        """Listen on `endpoint` (tcp://HOST:PORT; the caller decides whether HOST may be other
        than loopback). OSError if that address cannot be had (e.g. in use). The worker loads
        the model in the background (pings are answered meanwhile) and frees it after
        `unload_after` s without a job."""
        self.stylizer, self.endpoint, self.limits = stylizer, endpoint, limits
        self.jobs = JobQueue(limits.max_queue)
        self._stopping = threading.Event()
        self._budget = RequestBudget(protocol.REQUESTS_PER_SECOND)
        self._bad_input = ThrottledLog(log)
        self._context = zmq.Context()
        self._router = self._context.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.setsockopt(zmq.MAXMSGSIZE, limits.max_message_bytes)
        self._private, inner = self._bind_inner()
        self._wake = self._context.socket(zmq.PAIR)
        wake_endpoint = f"inproc://wake-{id(self)}"
        self._wake.bind(wake_endpoint)
        try:
            self._gate = Gate(protocol.parse_endpoint(endpoint), inner, limits.max_message_bytes,
                              protocol.MAX_FRAMES, limits.max_clients)
        except (OSError, ValueError):
            self._close_sockets()
            raise
        self._worker = Worker(stylizer, self.jobs, limits.max_pixels, unload_after, self._context,
                              wake_endpoint, self._stopping)
        self._requests = Requests(stylizer, self.jobs, limits, self._send, self._info)

    @property
    def failure(self) -> str | None:
        """Why the server stopped on its own (unusable weights), if it did."""
        return self._worker.failure

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
                self._requests.drop_abandoned()
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
                self._requests.handle(client, message)
            except ProtocolError as exc:
                self._bad_input.warning(f"refused a request: {exc.code}: {exc.message}")
                self._send(client, "error", code=exc.code, message=exc.message)
            except Exception as exc:  # a bug must cost one reply, never the server
                self._bad_input.warning(f"request failed:\n{traceback.format_exc()}")
                self._send(client, "error", code=protocol.INTERNAL, message=repr(exc)[:300])

    def _flush_outbox(self):
        while True:
            try:
                item = self._worker.outbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, QueueMoved):
                self._requests.send_positions()
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
