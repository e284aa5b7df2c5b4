"""What the framework adapters share: a map from the framework's span ids to agentlog scopes.

Frameworks report their own tree through callbacks (``on_span_start(span)`` with
a ``parent_id``; LangChain's ``run_id`` / ``parent_run_id``), often from other
threads or tasks than the code they describe. So the tree is rebuilt from those
ids, not from the caller's context: :class:`Bridge` opens each agentlog scope as
a child of the scope mapped to the framework parent, with the framework's start
time, and closes it with the framework's outcome.

While a framework span is open in the context that runs it, its frame is also
made *current* (``agentlog``'s context variable), so what happens inside it (an
SDK call recorded by ``agentlog.instrument()``, an ``agentlog.log()``) lands
under it as well.

Model calls are where a framework and the SDK instrumentation see the same
thing. :class:`ModelCall` opens a watch when the framework's model call begins;
if an SDK instrumentation started a call inside it, that call is recorded
already (with its full request, stream timing and request id) and the adapter
does not record it again.
"""

from __future__ import annotations

import re
import threading
import time
from contextvars import Token
from dataclasses import dataclass, field
from typing import Any

from .. import _ids
from .._frame import Frame, frame_var
from ..context import RunScope, SpanScope
from ..recorder import get_recorder
from ..tools import REDACTED, mask_secrets

__all__ = ["Bridge", "ModelCall", "Node", "close_span", "open_under", "scrub"]


# -- secrets ------------------------------------------------------------------------------
_HEADERS = re.compile(r"^(extra_|default_)?headers$", re.I)


def scrub(value: Any) -> Any:
    """``value`` with secrets masked before it is queued: :func:`agentlog.tools.mask_secrets`
    (keys named like the ``secret_names`` setting, at any depth), and every value of a
    top-level header map (frameworks pass ``extra_headers`` / ``default_headers`` in their
    invocation parameters, and a header's name does not always say it is a credential)."""
    if isinstance(value, dict) and any(isinstance(k, str) and _HEADERS.match(k) for k in value):
        value = {k: {h: REDACTED for h in v} if isinstance(k, str) and _HEADERS.match(k) and isinstance(v, dict)
                 else v for k, v in value.items()}
    return mask_secrets(value)


# -- opening and closing scopes outside a ``with`` block ---------------------------------------
def open_under(scope: SpanScope, parent: Frame, *, ns: int | None = None, t0: int | None = None) -> SpanScope:
    """Open ``scope`` (a span, inference or tool call) as a child of ``parent``'s span.

    The scope opens through its own ``_open`` (a tool call claims the model's request
    and masks secret arguments there), with ``parent`` as the current frame. ``ns``
    (recorder clock) and ``t0`` (``perf_counter_ns``) backdate a span recorded only
    once the framework's call ended to when it began. The scope is not made current;
    close it with its own ``finish``/``fail`` or :func:`close_span`.
    """
    scope._t0 = time.perf_counter_ns() if t0 is None else t0
    if ns is None:
        token = frame_var.set(parent)
        try:
            scope._frame = scope._open()
        finally:
            frame_var.reset(token)
        return scope
    # SpanScope._open, stamped with the framework's start time.
    rec = get_recorder()
    if scope.span_id is None:
        scope.span_id = _ids.new_id()
    scope.parent_span_id = parent.span_id
    scope._frame = parent.child(scope.span_id, None if parent.run else rec._implicit or rec._implicit_run())
    rec.emit(scope.opening_type, scope._open_payload(), scope._frame, scope.span_id, scope.parent_span_id, ns=ns)
    return scope


def close_span(scope: SpanScope, status: str = "ok", error: dict[str, Any] | None = None,
               result: Any = None) -> None:
    """Close a plain span with the framework's outcome (there is no exception to read it from)."""
    if scope._closed:
        return
    scope._closed = True
    scope.emit(scope.closing_type, {"status": status, "error": error, "result": result,
                                    "duration_ms": scope.elapsed_ms()})


def open_run(run: RunScope) -> RunScope:
    """Open a run outside a ``with`` block (close it with :func:`close_run`)."""
    run._t0 = time.perf_counter_ns()
    run._frame = run._open()
    return run


def close_run(run: RunScope, status: str = "ok", error: dict[str, Any] | None = None) -> None:
    get_recorder().emit(run.closing_type, {"status": status, "error": error, "duration_ms": run.elapsed_ms()},
                        run._frame, None, None)


# -- the map ------------------------------------------------------------------------------
@dataclass(eq=False)
class Node:
    """One framework span and what agentlog made of it."""

    key: Any
    frame: Frame  # the frame inside it: its children open under this
    scope: SpanScope | RunScope | None = None
    parent: Node | None = None
    token: Token[Frame] | None = None  # set when the frame was made current
    prev: Frame | None = None  # the frame that was current before
    kind: str = ""
    data: dict[str, Any] = field(default_factory=dict)  # adapter-specific state


class Bridge:
    """Thread-safe map: framework id -> :class:`Node`."""

    def __init__(self) -> None:
        self._nodes: dict[Any, Node] = {}
        self._lock = threading.Lock()

    def get(self, key: Any) -> Node | None:
        with self._lock:
            return self._nodes.get(key)

    def parent_frame(self, *keys: Any) -> tuple[Node | None, Frame]:
        """The first known node among ``keys`` and its frame, else the caller's current frame."""
        with self._lock:
            for key in keys:
                node = self._nodes.get(key) if key is not None else None
                if node is not None:
                    return node, node.frame
        return None, frame_var.get()

    def add(self, node: Node, *, current: bool = False) -> Node:
        with self._lock:
            self._nodes[node.key] = node
        if current:
            node.prev = frame_var.get()
            node.token = frame_var.set(node.frame)
        return node

    def pop(self, key: Any) -> Node | None:
        with self._lock:
            node = self._nodes.pop(key, None)
        if node is not None and node.token is not None:
            token, node.token = node.token, None
            try:
                frame_var.reset(token)
            except ValueError:
                # Ended in another context than it started in: leave that one as it is,
                # unless it still points inside the ended span.
                if frame_var.get() is node.frame and node.prev is not None:
                    frame_var.set(node.prev)
        return node

    def __len__(self) -> int:
        with self._lock:
            return len(self._nodes)


@dataclass(eq=False)
class ModelCall:
    """A framework's model call in progress: when it began, and whether an SDK instrumentation
    recorded it (see :class:`agentlog.instrument._calls.CallWatch`)."""

    ns: int
    t0: int
    watch: Any
    token: Token[Any] | None = None

    @classmethod
    def begin(cls) -> ModelCall:
        from ..instrument._calls import CallWatch, sdk_calls  # imports no SDK

        watch = CallWatch()
        return cls(get_recorder()._clock(), time.perf_counter_ns(), watch, sdk_calls.set(watch))

    def recorded_by_sdk(self) -> bool:
        """True if an SDK instrumentation started a call inside this one."""
        return bool(self.watch.calls)

    def end(self) -> None:
        """Stop watching (idempotent, from any thread or context)."""
        from ..instrument._calls import sdk_calls

        self.watch.open = False
        token, self.token = self.token, None
        if token is not None:
            try:
                sdk_calls.reset(token)
            except ValueError:
                pass  # another context: the closed watch it may still hold collects nothing
