"""A sink that keeps events in a list: for tests, notebooks and ``capture_events()``."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from ..events import Event

__all__ = ["MemorySink"]


class MemorySink:
    """Collects every event it is given, in order. Thread-safe to read."""

    def __init__(self, name: str = "memory") -> None:
        self.name = name
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self.closed = False

    def write(self, events: Sequence[Event]) -> None:
        with self._lock:
            self._events.extend(events)

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    @property
    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
