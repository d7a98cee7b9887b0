"""Rate limits: requests per connection (a token bucket each), and log lines about bad input (a
flood of malformed messages must not become a flood of log)."""
import logging
import time


class RequestBudget:
    """Per-connection token buckets: `rate` requests a second, bursts up to twice that. Buckets of
    connections idle for a minute are forgotten, so the table stays bounded."""

    IDLE = 60.0

    def __init__(self, rate: float):
        self.rate, self.burst = rate, 2 * rate
        self._buckets: dict[bytes, tuple[float, float]] = {}  # client -> (tokens, last seen)
        self._last_sweep = time.monotonic()

    def allow(self, client: bytes) -> bool:
        now = time.monotonic()
        tokens, seen = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - seen) * self.rate)
        allowed = tokens >= 1
        self._buckets[client] = (tokens - 1 if allowed else tokens, now)
        if now - self._last_sweep > self.IDLE:
            self._buckets = {c: b for c, b in self._buckets.items() if now - b[1] < self.IDLE}
            self._last_sweep = now
        return allowed


class ThrottledLog:
    """At most one line per `interval` s; the lines held back are counted into the next one."""

    def __init__(self, logger: logging.Logger, interval: float = 1.0):
        self.logger, self.interval = logger, interval
        self._last, self._held = -interval, 0

    def warning(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self._held += 1
            return
        held = f" (and {self._held} more like it)" if self._held else ""
        self.logger.warning("%s%s", message[:300], held)
        self._last, self._held = now, 0
