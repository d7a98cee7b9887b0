"""What the server does with each request: one handler per message type (a dispatch table),
and the job control the loop shares with them (cancel, drop the abandoned, queue positions)."""
import logging
import time
from collections.abc import Callable

from nst_contract import protocol
from nst_contract.protocol import ProtocolError, field

from .admission import Limits, admit
from .engine_protocol import Engine
from .jobs import Job, JobQueue

log = logging.getLogger("nst-server")
Send = Callable[..., None]  # send(client, message type, frames=(), **fields)


class Requests:
    def __init__(self, engine: Engine, jobs: JobQueue, limits: Limits, send: Send,
                 info: Callable[[], dict]):
        self.engine, self.jobs, self.limits = engine, jobs, limits
        self._send, self._info = send, info
        self._handlers = {"ping": self._ping, "info": self._reply_info, "submit": self._submit,
                          "heartbeat": self._heartbeat, "finish": self._finish_early,
                          "cancel": self._cancel_request}

    def handle(self, client: bytes, message: list) -> None:
        """Answer one request (ProtocolError for one that breaks the protocol)."""
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
        self._handlers[kind](client, header, frames, reply_id)

    def _ping(self, client, header, frames, reply_id):
        self._send(client, "pong", time=time.time(), **reply_id)

    def _reply_info(self, client, header, frames, reply_id):
        self._send(client, "info", **self._info(), **reply_id)

    def _own_job(self, client, header) -> Job:
        job = self.jobs.find(field(header, "job", str))
        if job is None or not job.owned_by(client, header.get("token")):
            raise ProtocolError(protocol.UNKNOWN_JOB, f"no job {header['job'][:80]!r} of yours")
        return job

    def _heartbeat(self, client, header, frames, reply_id):
        job = self._own_job(client, header)
        job.last_heard = time.monotonic()
        self._send(client, "alive", job=job.id,
                   state="running" if job is self.jobs.running else "queued", **reply_id)

    def _finish_early(self, client, header, frames, reply_id):
        """End the running job now with what it has; a job with nothing to show is cancelled."""
        job = self._own_job(client, header)
        if job is self.jobs.running:
            job.finish_early.set()
        else:
            self.cancel(job, "cancelled")
        self._send(client, "ok", job=job.id, **reply_id)

    def _cancel_request(self, client, header, frames, reply_id):
        job = self._own_job(client, header)
        self.cancel(job, "cancelled")
        self._send(client, "ok", job=job.id, **reply_id)

    def _submit(self, client, header, frames, reply_id):
        job = admit(client, header, frames, self.limits, self.engine)
        if self.jobs.count_for(client) >= self.limits.max_jobs_per_client:
            raise ProtocolError(protocol.BUSY, f"this connection already has "
                                f"{self.limits.max_jobs_per_client} jobs waiting or running")
        position = self.jobs.put(job)
        if position is None:
            raise ProtocolError(protocol.BUSY, f"{self.limits.max_queue} jobs are already waiting; "
                                               "try again later")
        log.info("%s queued at %d: %dx%dx%d, %s", job.id, position, job.width, job.height,
                 job.channels, job.settings["preset"])
        self._send(client, "accepted", job=job.id, token=job.token, position=position)

    def cancel(self, job: Job, reason: str) -> None:
        """Stop a job: a waiting one leaves the queue now, a running one within one iteration."""
        if self.jobs.remove(job):
            log.info("%s %s while waiting", job.id, reason)
            self._send(job.client, "cancelled", job=job.id)
            self.send_positions()
        else:
            job.request_stop(reason)

    def drop_abandoned(self) -> None:
        """Cancel the jobs whose client has not been heard from for the job timeout."""
        now = time.monotonic()
        for job in [self.jobs.running, *self.jobs.waiting()]:
            if job is not None and now - job.last_heard > self.limits.job_timeout:
                if not job.stop.is_set():
                    log.info("%s: no heartbeat for %.0f s, dropping it", job.id, now - job.last_heard)
                self.cancel(job, "abandoned")

    def send_positions(self) -> None:
        for job, position in self.jobs.positions():
            self._send(job.client, "queued", job=job.id, position=position)
