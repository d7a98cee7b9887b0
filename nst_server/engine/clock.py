"""Progress as work done, and time left as measured."""
import time
from collections import deque

from .plans import Level


class WorkClock:
    """Progress as work done and time left: a detail scale's iteration costs many coarse ones,
    so iterations alone would mislead (plans.Level.work). Time left is measured, never guessed:
    none until two iterations are done (the first also pays for the model's warm-up and the
    painting's targets, which made a first estimate of 1100 s for a 184-s run), then at the
    speed of the last RECENT s, so that a machine that gets busier, or a scale that costs more
    than its share, corrects it within that time."""

    RECENT = 30.0  # s of iterations the speed is measured over

    def __init__(self, levels: list[Level]):
        self.total = sum(level.work for level in levels)
        self.iterations = sum(level.iterations for level in levels)
        self.iteration = 0  # done so far
        self.done = 0.0
        self.start = time.perf_counter()
        self._marks: deque[tuple[float, float]] = deque()  # (time, work done) after iterations

    def advance(self, level: Level) -> None:
        self.iteration += 1
        self.done += level.work / level.iterations
        now = time.perf_counter()
        self._marks.append((now, self.done))
        while len(self._marks) > 2 and now - self._marks[1][0] >= self.RECENT:
            self._marks.popleft()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total)

    @property
    def remaining(self) -> float | None:
        """Seconds left at the recent speed; None before there is a speed to go by."""
        if self.fraction >= 1.0:
            return 0.0
        if len(self._marks) < 2:
            return None
        (then, done_then), (now, done_now) = self._marks[0], self._marks[-1]
        return (now - then) / (done_now - done_then) * (self.total - self.done)
