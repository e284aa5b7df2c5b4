"""Where batches of events go: the SQLite store, memory (for tests), and the contract.

Optional sinks that need a driver import it lazily, so this package stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Sink
from .memory import MemorySink

if TYPE_CHECKING:
    from .sqlite import SQLiteSink

__all__ = ["MemorySink", "SQLiteSink", "Sink"]


def __getattr__(name: str) -> Any:
    # The SQLite sink pulls in sqlite3, hashlib and the store: load it on first use.
    if name == "SQLiteSink":
        from .sqlite import SQLiteSink

        return SQLiteSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
