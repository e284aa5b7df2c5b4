"""Correlation scopes: ``run``, ``turn``, ``span`` and the ``trace`` decorator.

Each scope is a context manager (``with`` and ``async with``) and a decorator
(of plain and async functions). Entering publishes the opening event and makes
the scope current for code inside it, through a ContextVar, so correlation
flows into asyncio tasks created inside. Threads do not inherit context: wrap
the callable with :func:`bind_context` (``pool.submit(bind_context(fn), ...)``).

Exiting publishes the closing event with a status: ``ok``; ``error`` with the
exception's type and message; or ``interrupted`` for KeyboardInterrupt,
``asyncio.CancelledError`` and ``GeneratorExit``. The exception is never
swallowed.
"""

from __future__ import annotations

import contextvars
import functools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from . import _ids
from ._frame import Frame, RunState, frame_var
from ._guard import guard
from .recorder import get_recorder
from .sinks.base import Sink

__all__ = [
    "RunScope",
    "SpanScope",
    "TurnScope",
    "bind_context",
    "current_ids",
    "run",
    "sinks",
    "span",
    "trace",
    "turn",
]

F = TypeVar("F", bound=Callable[..., Any])


def _is_async(fn: Callable[..., Any]) -> bool:
    import inspect  # ~8 ms to import: only when decorating

    return inspect.iscoroutinefunction(fn)


def _is_interrupt(exc: BaseException) -> bool:
    if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
        return True
    # asyncio is not imported for this check: if it was never imported, no
    # CancelledError can exist (and `import agentlog` stays light).
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


def outcome(exc: BaseException | None) -> tuple[str, dict[str, str] | None]:
    """The status and error payload a scope closes with.

    ``sys.exit()`` and ``sys.exit(0)`` are a normal end (``ok``); another exit code is an error.
    """
    if exc is None or (isinstance(exc, SystemExit) and exc.code in (None, 0)):
        return "ok", None
    err = {"type": type(exc).__name__, "message": str(exc)}
    if _is_interrupt(exc):
        return "interrupted", err
    return "error", err


class _Scope:
    """Shared machinery: enter/exit (sync and async) and use as a decorator."""

    _frame: Frame
    _token: contextvars.Token[Frame] | None = None
    _t0: int = 0

    def _open(self) -> Frame:  # pragma: no cover - abstract
        raise NotImplementedError

    closing_type = ""

    def _close(self, exc: BaseException | None) -> None:
        """Publish the closing event (runs and turns; spans add their result)."""
        status, error = outcome(exc)
        get_recorder().emit(
            self.closing_type,
            {"status": status, "error": error, "duration_ms": self.elapsed_ms()},
            self._frame, None, None,
        )

    def _fresh(self) -> _Scope:
        """A new scope with the same arguments (each decorated call gets its own)."""
        raise NotImplementedError  # pragma: no cover

    def __enter__(self) -> Any:
        if self._token is not None:
            raise RuntimeError(f"{type(self).__name__} is already active; create a new one per use")
        self._t0 = time.perf_counter_ns()
        frame = frame_var.get()
        with guard(f"{type(self).__name__}.enter"):
            frame = self._open()
        self._frame = frame
        self._token = frame_var.set(frame)
        return self

    def __exit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            with guard(f"{type(self).__name__}.exit"):
                self._close(exc)
        finally:
            token, self._token = self._token, None
            if token is not None:
                try:
                    frame_var.reset(token)
                except ValueError:
                    # Exited in another context (an async generator finalised
                    # elsewhere): that context is not ours to change.
                    pass

    async def __aenter__(self) -> Any:
        return self.__enter__()

    async def __aexit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        self.__exit__(et, exc, tb)

    def elapsed_ms(self) -> float:
        return (time.perf_counter_ns() - self._t0) / 1e6

    def __call__(self, fn: F) -> F:
        if _is_async(fn):
            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await fn(*args, **kwargs)

            return cast(F, awrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return fn(*args, **kwargs)

        return cast(F, wrapper)


class RunScope(_Scope):
    """One execution of an agent: ``with agentlog.run("support-bot") as run: ...``."""

    closing_type = "run.finished"

    def __init__(
        self,
        name: str | None = None,
        *,
        run_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
    ) -> None:
        self.name = name
        self.run_id = run_id
        self.metadata = metadata
        self.tags = tags
        self._run_id_given = run_id is not None

    def _fresh(self) -> RunScope:
        return RunScope(self.name, run_id=self.run_id if self._run_id_given else None,
                        metadata=self.metadata, tags=self.tags)

    def _open(self) -> Frame:
        outer = frame_var.get()
        if self.run_id is None:
            self.run_id = _ids.new_id()
        state = RunState(self.run_id, self.name)
        frame = Frame(state, sinks=outer.sinks)
        payload: dict[str, Any] = {"name": self.name, "metadata": self.metadata, "tags": self.tags}
        if outer.run is not None:
            payload["parent_run_id"] = outer.run.run_id
        get_recorder().emit("run.started", payload, frame, None, None)
        return frame

    def log(self, message: str, level: str = "info", **fields: Any) -> bool:
        from .producers import log

        return log(message, level=level, **fields)


class TurnScope(_Scope):
    """One exchange within a run (typically: user input, model calls, tools, reply)."""

    closing_type = "turn.finished"

    def __init__(self, *, turn_id: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        self.turn_id = turn_id
        self.metadata = metadata
        self.index: int | None = None
        self._turn_id_given = turn_id is not None

    def _fresh(self) -> TurnScope:
        return TurnScope(turn_id=self.turn_id if self._turn_id_given else None, metadata=self.metadata)

    def _open(self) -> Frame:
        outer = frame_var.get()
        rec = get_recorder()
        run = outer.run
        if run is None:
            run = rec._implicit or rec._implicit_run()
        if self.turn_id is None:
            self.turn_id = _ids.new_id()
        self.index = next(run.turns)
        frame = Frame(run, self.turn_id, sinks=outer.sinks)
        rec.emit("turn.started", {"index": self.index, "metadata": self.metadata}, frame, None, None)
        return frame

    def _close(self, exc: BaseException | None) -> None:
        super()._close(exc)
        run = self._frame.run
        if run is not None:  # requests left unexecuted stay "requested"; no later turn can claim them
            run.pending.pop(self.turn_id, None)


class SpanScope(_Scope):
    """A node of the task graph: an agent, a sub-task, a chain step, a retrieval...

    Spans nest through the context: a span opened inside another is its child.
    The status can change while the span runs (``set_status``), extra edges
    to other spans can be recorded (``link``) and fields attached (``annotate``).
    Set ``result`` before the end.
    """

    opening_type = "span.started"
    closing_type = "span.finished"
    # Defaults for subclasses that set only what differs (an LLM call, on every SDK call).
    goal: str | None = None
    label: str | None = None
    attributes: dict[str, Any] | None = None
    parent_span_id: str | None = None
    result: Any = None
    _closed = False

    def __init__(
        self,
        name: str | None = None,
        *,
        kind: str = "span",
        goal: str | None = None,
        label: str | None = None,
        attributes: dict[str, Any] | None = None,
        span_id: str | None = None,
    ) -> None:
        self.name = name
        self.kind = kind
        self.goal = goal
        self.label = label
        self.attributes = attributes
        self.span_id = span_id
        self.parent_span_id: str | None = None
        self.result: Any = None
        self._span_id_given = span_id is not None
        self._closed = False

    def _fresh(self) -> SpanScope:
        return type(self)(self.name, kind=self.kind, goal=self.goal, label=self.label,
                          attributes=self.attributes,
                          span_id=self.span_id if self._span_id_given else None)

    def _open_payload(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "goal": self.goal, "label": self.label,
                "attributes": self.attributes}

    def _open(self) -> Frame:
        outer = frame_var.get()
        rec = get_recorder()
        if self.span_id is None:
            self.span_id = _ids.new_id()
        self.parent_span_id = outer.span_id
        frame = outer.child(self.span_id, None if outer.run else rec._implicit or rec._implicit_run())
        rec.emit(self.opening_type, self._open_payload(), frame, self.span_id, self.parent_span_id)
        return frame

    def emit(self, type: str, payload: dict[str, Any] | None = None) -> bool:
        """Publish an event attributed to this span, from any thread or task."""
        if self._token is None and not hasattr(self, "_frame"):
            raise RuntimeError("the span has not been entered yet")
        return get_recorder().emit(type, payload, self._frame, self.span_id, self.parent_span_id)

    def set_status(self, status: str, note: str | None = None, **fields: Any) -> bool:
        """Record a status transition (kept as history; the last one is current)."""
        return self.emit("span.status", {"status": status, "note": note, **fields})

    def link(self, target_span_id: str, relation: str = "depends_on") -> bool:
        """Record an edge from this span to another that is not its parent."""
        return self.emit("span.link", {"target_span_id": target_span_id, "relation": relation})

    def annotate(self, **fields: Any) -> bool:
        """Attach fields to the span (side effects, decisions, counts...).

        Later calls merge into earlier ones; a field set to None is removed.
        They are in the ``annotations`` column of the ``spans`` and ``tool_calls`` views.
        """
        return self.emit("span.annotate", {"fields": fields})

    def _close(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        status, error = outcome(exc)
        self.emit(self.closing_type, {"status": status, "error": error, "result": self.result,
                                      "duration_ms": self.elapsed_ms()})


def run(
    name: str | None = None,
    *,
    run_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    tags: list[str] | None = None,
) -> RunScope:
    """Start a run (context manager or decorator). ``run_id`` may be your own stable id."""
    return RunScope(name, run_id=run_id, metadata=metadata, tags=tags)


def turn(*, turn_id: str | None = None, metadata: dict[str, Any] | None = None) -> TurnScope:
    """Start a turn in the current run (context manager or decorator)."""
    return TurnScope(turn_id=turn_id, metadata=metadata)


def span(
    name: str | None = None,
    *,
    kind: str = "span",
    goal: str | None = None,
    label: str | None = None,
    attributes: dict[str, Any] | None = None,
    span_id: str | None = None,
) -> SpanScope:
    """Open a span: a node of the run's task graph (context manager or decorator)."""
    return SpanScope(name, kind=kind, goal=goal, label=label, attributes=attributes, span_id=span_id)


def trace(
    fn: F | None = None, *, name: str | None = None, kind: str = "function", capture: bool = False
) -> Any:
    """Decorator: record each call of a function (sync or async) as a span.

    ``@agentlog.trace`` or ``@agentlog.trace(name=..., kind=..., capture=True)``;
    with ``capture`` the arguments (secret-named ones masked, as for tools) and the
    return value are recorded too.
    """

    def decorate(f: F) -> F:
        import inspect

        span_name = name or f.__qualname__
        sig = inspect.signature(f) if capture else None

        def scope(args: tuple[Any, ...], kwargs: dict[str, Any]) -> SpanScope:
            attrs = None
            if sig is not None:
                from .tools import mask_secrets  # imports this module: only when capturing

                try:
                    bound = sig.bind_partial(*args, **kwargs)
                    attrs = {"arguments": mask_secrets(dict(bound.arguments))}
                except TypeError:
                    attrs = None
            return SpanScope(span_name, kind=kind, attributes=attrs)

        if _is_async(f):
            @functools.wraps(f)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                with scope(args, kwargs) as s:
                    result = await f(*args, **kwargs)
                    if capture:
                        s.result = result
                    return result

            return cast(F, awrapper)

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with scope(args, kwargs) as s:
                result = f(*args, **kwargs)
                if capture:
                    s.result = result
                return result

        return cast(F, wrapper)

    return decorate(fn) if fn is not None else decorate


@contextmanager
def sinks(*extra: Sink) -> Iterator[None]:
    """Also send events published inside this block (and its tasks) to ``extra`` sinks."""
    outer = frame_var.get()
    token = frame_var.set(outer.replace(sinks=outer.sinks + extra))
    try:
        yield
    finally:
        try:
            frame_var.reset(token)
        except ValueError:
            pass


def bind_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Return ``fn`` bound to a copy of the current context, for threads and executors."""
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def bound(*args: Any, **kwargs: Any) -> Any:
        return ctx.copy().run(fn, *args, **kwargs)

    return bound


def current_ids() -> dict[str, str | None]:
    """The current run, turn, span and parent span ids (None where absent)."""
    f = frame_var.get()
    return {
        "run_id": f.run.run_id if f.run else None,
        "turn_id": f.turn_id,
        "span_id": f.span_id,
        "parent_span_id": f.parent_span_id,
    }
