"""Test doubles and helpers (fakes, not mocks: real sinks with controllable behaviour)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from agentlog import Event, MemorySink


def query(db: Path, sql: str, *params: object) -> list[sqlite3.Row]:
    """Read the file with a plain sqlite3 connection, as a user would."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


class GateSink(MemorySink):
    """A memory sink whose writes wait until the gate opens (a stalled store)."""

    def __init__(self, name: str = "gate") -> None:
        super().__init__(name)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def write(self, events: Sequence[Event]) -> None:
        self.entered.set()
        self.gate.wait(30)
        super().write(events)


class FlakySink(MemorySink):
    """Fails its first ``failures`` writes with an OSError, then works."""

    def __init__(self, failures: int, name: str = "flaky") -> None:
        super().__init__(name)
        self.failures = failures
        self.attempts = 0

    def write(self, events: Sequence[Event]) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise OSError(f"disk on fire (attempt {self.attempts})")
        super().write(events)


class BrokenSink(MemorySink):
    """Always fails."""

    def write(self, events: Sequence[Event]) -> None:
        raise OSError("no space left on device")
