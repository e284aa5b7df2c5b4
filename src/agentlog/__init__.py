"""agentlog: a local-first flight recorder for LLM agents.

The pipeline, one stage per module::

    producers        producers.py (inference, log, snapshot, usage), tools.py (tool, tool_call),
                     context.py (run, turn, span, trace)
        |
    correlation      _frame.py: one ContextVar holds the current run / turn / span
        |
    recorder         recorder.py: publish() stamps and enqueues; _batch.py: the writer thread
        |            processors.py: delta consolidation, user processors (redaction)
    sinks            sinks/: sqlite (default), memory
        |
    store            store/: .sql migrations, connections, the one query layer
        |
    readers          reader.py (agentlog.open), cli.py (the agentlog command)

``import agentlog`` is cheap: it imports no LLM SDK and starts nothing until
the first event is published (or ``configure()`` is called).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import Settings
from .context import bind_context, current_ids, run, sinks, span, trace, turn
from .errors import (
    AgentlogError,
    ConfigError,
    NotFoundError,
    QueryError,
    SchemaVersionError,
    StoreError,
    UnusableStoreError,
)
from .events import Event, EventType

# Imported eagerly (it loads no SDK): the subpackage agentlog.instrument would
# otherwise shadow the lazily loaded instrument() function once imported.
from .instrument import instrument, uninstrument
from .producers import Inference, inference, log, snapshot, usage
from .recorder import Recorder, configure, get_recorder, publish, shutdown
from .sinks import MemorySink, Sink
from .tools import ToolCall, current_tool, tool, tool_call, tool_call_id

if TYPE_CHECKING:
    from .pricing import set_price
    from .reader import Run, RunDetail, SearchHit, SpanNode, Store
    from .reader import open_store as open
    from .sinks.sqlite import SQLiteSink

# The read side and the SQLite sink load on first use, so that an agent that
# only records pays for neither at import time.
_LAZY = {
    "Run": ("reader", "Run"),
    "RunDetail": ("reader", "RunDetail"),
    "SearchHit": ("reader", "SearchHit"),
    "SpanNode": ("reader", "SpanNode"),
    "Store": ("reader", "Store"),
    "open": ("reader", "open_store"),
    "SQLiteSink": ("sinks.sqlite", "SQLiteSink"),
    "set_price": ("pricing", "set_price"),
}

__version__ = "0.1.0"

__all__ = [
    "AgentlogError",
    "ConfigError",
    "Event",
    "EventType",
    "Inference",
    "MemorySink",
    "NotFoundError",
    "QueryError",
    "Recorder",
    "Run",
    "RunDetail",
    "SQLiteSink",
    "SchemaVersionError",
    "SearchHit",
    "Settings",
    "Sink",
    "SpanNode",
    "Store",
    "StoreError",
    "ToolCall",
    "UnusableStoreError",
    "__version__",
    "bind_context",
    "configure",
    "current_ids",
    "current_tool",
    "flush",
    "get_recorder",
    "inference",
    "instrument",
    "log",
    "open",
    "publish",
    "run",
    "set_price",
    "shutdown",
    "sinks",
    "snapshot",
    "span",
    "tool",
    "tool_call",
    "tool_call_id",
    "trace",
    "turn",
    "uninstrument",
    "usage",
]


def flush(timeout: float | None = 5.0) -> bool:
    """Wait until every event published so far is written (True) or ``timeout`` passes."""
    return get_recorder().flush(timeout)


def __dir__() -> list[str]:
    return list(__all__)


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'agentlog' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"agentlog.{target[0]}"), target[1])
    globals()[name] = value
    return value
