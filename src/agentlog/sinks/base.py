"""The sink contract, after OpenTelemetry's exporters (minus their flaws).

A sink is called only from the recorder's writer thread, one batch at a time:

* ``write(events)`` writes the batch or raises; the recorder keeps a failed
  batch and retries it with backoff (in order, before newer batches), so a sink
  should raise on transient trouble (a locked or full disk) rather than drop.
  A sink that can isolate bad events itself reports them in ``rejected``.
* ``flush(timeout)`` pushes out anything the sink buffers; returns True when done
  within ``timeout`` seconds.
* ``close()`` releases resources; calling it twice is harmless.

Optional:

* ``note_stats(stats)``: receive the recorder's counters, to be stored with the
  next write (the SQLite store keeps them in a table, so readers see data loss).
* ``after_fork()``: called in a forked child; drop (never close) inherited handles.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ..events import Event

__all__ = ["Sink"]


@runtime_checkable
class Sink(Protocol):
    name: str

    def write(self, events: Sequence[Event]) -> None: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def close(self) -> None: ...
