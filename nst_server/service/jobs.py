"""Jobs and the FIFO queue between the socket loop and the one worker that owns the device."""
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass(eq=False)  # jobs are compared by identity, never by their (large) pixels
class Job:
    client: bytes              # ZeroMQ routing identity of the submitting socket
    width: int
    height: int
    channels: int
    pixels: bytes | None       # freed once the job ends
    styles: list[bytes]        # image files of the paintings
    style_weights: list[float]  # each painting's share of the blend
    settings: dict
    preview_seconds: float     # 0: no previews
    preview_side: int
    regions: list[int | None] | None = None  # per label, its painting (index) or None: kept
    labels: bytes | None = None  # the label map, a byte per pixel, with `regions`
    # Unguessable: `id` names the job in the stream and the log; `token`, given only to the
    # submitter, lets another connection of theirs cancel it.
    id: str = field(default_factory=lambda: f"job-{secrets.token_hex(8)}")
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    last_heard: float = field(default_factory=time.monotonic)
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = ""      # "cancelled" or "abandoned", once stop is set
    finish_early: threading.Event = field(default_factory=threading.Event)  # end now, with what it has
    last_preview: float = float("-inf")

    def owned_by(self, client: bytes, token: object) -> bool:
        """The submitting connection, or anyone who shows the job's token."""
        return client == self.client or (isinstance(token, str) and
                                         secrets.compare_digest(token.encode(), self.token.encode()))

    def request_stop(self, reason: str) -> None:
        if not self.stop.is_set():
            self.stop_reason = reason
            self.stop.set()


class JobQueue:
    """Waiting jobs in order; the worker blocks in take(); the loop may remove waiting jobs."""

    def __init__(self, limit: int):
        self.limit = limit
        self._waiting: deque[Job] = deque()
        self._ready = threading.Condition()
        self.running: Job | None = None

    def put(self, job: Job) -> int | None:
        """Queue `job`; return how many jobs are ahead of it, or None when the queue is full."""
        with self._ready:
            if len(self._waiting) >= self.limit:
                return None
            self._waiting.append(job)
            self._ready.notify()
            return self._ahead(len(self._waiting) - 1)

    def take(self, timeout: float) -> Job | None:
        """The next job (now the running one), or None after `timeout` s."""
        with self._ready:
            if not self._waiting:
                self._ready.wait(timeout)
            self.running = self._waiting.popleft() if self._waiting else None
            return self.running

    def end_running(self) -> None:
        with self._ready:
            self.running = None

    def remove(self, job: Job) -> bool:
        with self._ready:
            if job in self._waiting:
                self._waiting.remove(job)
                return True
            return False

    def waiting(self) -> list[Job]:
        with self._ready:
            return list(self._waiting)

    def positions(self) -> list[tuple[Job, int]]:
        """Each waiting job with how many jobs are ahead of it, the running one included."""
        with self._ready:
            return [(job, self._ahead(index)) for index, job in enumerate(self._waiting)]

    def _ahead(self, index: int) -> int:
        return index + (self.running is not None)

    def count_for(self, client: bytes) -> int:
        """Jobs of this connection, waiting or running."""
        with self._ready:
            return sum(j.client == client for j in [self.running, *self._waiting] if j is not None)

    def find(self, job_id: str) -> Job | None:
        with self._ready:
            running = [self.running] if self.running else []
            return next((j for j in running + list(self._waiting) if j.id == job_id), None)
