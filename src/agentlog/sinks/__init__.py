"""Where batches of events go: the SQLite store, memory (for tests), and the contract.

Optional sinks that need a driver import it lazily, so this package stays light.
"""

from __future__ import annotations

from .base import Sink
from .memory import MemorySink
from .sqlite import SQLiteSink

__all__ = ["MemorySink", "SQLiteSink", "Sink"]
