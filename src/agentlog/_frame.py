"""The correlation frame: which run, turn and span the current code is in.

One ``ContextVar`` holds an immutable :class:`Frame`, so ``publish()`` reads
the whole correlation with a single ``ContextVar.get()`` (~15 ns), and it flows
through asyncio tasks like any contextvar. Scopes (``run``, ``turn``, ``span``)
push a new frame and restore the old one on exit.
"""

from __future__ import annotations

import itertools
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sinks.base import Sink

__all__ = ["Frame", "RunState", "frame_var"]


class RunState:
    """The live part of a run shared by every frame inside it."""

    __slots__ = ("name", "pending", "run_id", "seq", "turns")

    def __init__(self, run_id: str, name: str | None) -> None:
        self.run_id = run_id
        self.name = name
        self.seq = itertools.count(1)  # next() is atomic under the GIL
        self.turns = itertools.count(1)
        # Tool calls the model asked for and no execution has claimed yet, per turn:
        # turn id (None outside turns) -> {tool call id: (name, arguments)}. See tools.py.
        self.pending: dict[str | None, dict[str, tuple[str | None, Any]]] = {}


class Frame:
    __slots__ = ("parent_span_id", "run", "sinks", "span_id", "turn_id")

    def __init__(
        self,
        run: RunState | None,
        turn_id: str | None = None,
        span_id: str | None = None,
        parent_span_id: str | None = None,
        sinks: tuple[Sink, ...] = (),
    ) -> None:
        self.run = run
        self.turn_id = turn_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.sinks = sinks

    def replace(self, **changes: Any) -> Frame:
        values = {name: getattr(self, name) for name in Frame.__slots__}
        values.update(changes)
        return Frame(**values)

    def child(self, span_id: str, run: RunState | None = None) -> Frame:
        """This frame with ``span_id`` opened under its current span (on every span and LLM call)."""
        return Frame(run or self.run, self.turn_id, span_id, self.span_id, self.sinks)


EMPTY = Frame(None)
frame_var: ContextVar[Frame] = ContextVar("agentlog_frame", default=EMPTY)

