"""A clock tests move by hand, so timeout tests never sleep."""

from __future__ import annotations

import time


class FakeClock:
    """Callable clock starting at the real current time; ``advance`` moves it forward.

    Starting at real time keeps backends with their own clock (Redis TTLs) consistent with it.
    """

    def __init__(self, start: float | None = None):
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self.now += seconds
