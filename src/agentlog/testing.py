"""Helpers for tests, agentlog's own and its users': capture events, fake clock, sequential ids."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .context import sinks
from .sinks.memory import MemorySink

__all__ = ["FakeClock", "capture_events", "sequential_ids"]


class FakeClock:
    """A clock that returns unix nanoseconds, advancing by ``step_ns`` per reading."""

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000, step_ns: int = 1_000) -> None:
        self._now = start_ns
        self._step = step_ns
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            now = self._now
            self._now += self._step
            return now

    def advance(self, ns: int) -> None:
        with self._lock:
            self._now += ns


def sequential_ids(prefix: str = "id-") -> Callable[[int | None], str]:
    """An id factory for :class:`~agentlog.Recorder`: ``id-000001``, ``id-000002``, ..."""
    counter = itertools.count(1)

    def make(_time_ns: int | None = None) -> str:
        return f"{prefix}{next(counter):06d}"

    return make


@contextmanager
def capture_events() -> Iterator[MemorySink]:
    """Collect every event published inside the block (also written to the store as usual).

    Events reach the sink on the writer thread; call ``agentlog.flush()`` before
    reading ``sink.events`` inside the block (leaving the block flushes for you).
    """
    from .recorder import get_recorder

    sink = MemorySink("capture")
    with sinks(sink):
        try:
            yield sink
        finally:
            get_recorder().flush(5.0)
