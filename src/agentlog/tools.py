"""Tool executions: ``@agentlog.tool``, ``agentlog.tool_call(...)``, linking, masking, approvals.

A tool execution is a span of kind ``tool``: it records the arguments, then the
result or the failure (exception type and message) and the duration; an
exception is re-raised unchanged::

    @agentlog.tool
    def get_weather(city: str) -> dict: ...

    with agentlog.tool_call("get_weather", {"city": "Paris"}, tool_call_id="call_1") as call:
        call.result = get_weather_impl("Paris")

**Linking to the model's request.** The SDK instrumentations record each tool
call the model asks for (``Inference.tool_call``); an execution is joined to it
by the request's id, which is found, in this order:

1. the ``tool_call_id`` given to :func:`tool_call`, or set around the call with
   ``with agentlog.tool_call_id(tc.id): get_weather(**args)``;
2. otherwise, among the requests of the current turn that no execution has
   claimed yet, the only one with the tool's name; if several have that name,
   the only one whose arguments all equal the execution's.

An ambiguous execution stays unlinked rather than be linked to the wrong request.
Requests are matched in the process that recorded them.

**Secrets.** Arguments whose names look like secrets (``api_key``, ``token``,
``password``...; the list is the ``secret_names`` setting, see
:data:`agentlog.config.SECRET_NAMES`) are replaced by ``"[REDACTED]"`` on the
caller's thread, before the event is queued, at any depth of dicts and lists.

**Approvals and extra fields.** Inside the tool, :func:`current_tool` gives the
:class:`ToolCall`: ``approve(by=...)``, ``deny(by=..., reason=...)`` (the call then
ends with status ``denied``) and ``annotate(**fields)`` (side effects, anything).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, TypeVar, cast

from ._frame import Frame, RunState, frame_var
from .context import SpanScope, _is_async, _is_interrupt, outcome
from .recorder import get_recorder

__all__ = [
    "REDACTED",
    "ToolCall",
    "current_tool",
    "mask_secrets",
    "note_request",
    "tool",
    "tool_call",
    "tool_call_id",
]

F = TypeVar("F", bound=Callable[..., Any])

REDACTED = "[REDACTED]"
#: Requests kept per turn while they wait for their execution (the oldest go first).
MAX_PENDING = 1024

_current: ContextVar[ToolCall | None] = ContextVar("agentlog_tool", default=None)
# A one-item list, emptied by the first tool that takes it (nested tools must not).
_given_id: ContextVar[list[str] | None] = ContextVar("agentlog_tool_call_id", default=None)
_lock = threading.Lock()


# -- secrets ---------------------------------------------------------------------------------
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def _words(name: str) -> tuple[str, ...]:
    """``"X-API-Key"`` -> ``("x", "api", "key")``; snake, kebab and camel case alike."""
    return tuple(w.lower() for w in _WORD.findall(name))


@functools.lru_cache(maxsize=64)
def _patterns(names: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(w for w in map(_words, names) if w)


def _is_secret(key: str, patterns: tuple[tuple[str, ...], ...]) -> bool:
    words = _words(key)
    return any(
        words[i : i + len(p)] == p for p in patterns for i in range(len(words) - len(p) + 1)
    )


def mask_secrets(value: Any, names: Iterable[str] | None = None) -> Any:
    """``value`` with the values of secret-looking keys replaced by ``"[REDACTED]"``.

    A key is secret when one of ``names`` (default: the ``secret_names`` setting)
    appears in it as whole words: ``token`` matches ``access_token`` and
    ``refreshToken``, not ``max_tokens``. Dicts, lists, tuples and pydantic models
    are walked; the caller's objects are never modified (changed containers are copies).
    """
    if names is None:
        names = get_recorder().settings.secret_names
    return _mask(value, _patterns(tuple(names)), 0, {})


def _mask(value: Any, patterns: tuple[tuple[str, ...], ...], depth: int, memo: dict[int, Any]) -> Any:
    if depth > 32 or isinstance(value, (str, int, float, bool)) or value is None:
        return value
    # This runs on the caller's thread: each container is visited once, so a
    # structure of shared references (x = [x, x], forty times) costs its size in
    # memory, not 2**40 steps; a cycle returns the original (the encoder marks it).
    key = id(value)
    if key in memo:
        return memo[key]
    memo[key] = value
    memo[key] = result = _mask_container(value, patterns, depth, memo)
    return result


def _mask_container(value: Any, patterns: tuple[tuple[str, ...], ...], depth: int, memo: dict[int, Any]) -> Any:
    if isinstance(value, dict):
        out: dict[Any, Any] | None = None
        for k, v in value.items():
            new = REDACTED if isinstance(k, str) and v is not None and _is_secret(k, patterns) \
                else _mask(v, patterns, depth + 1, memo)
            if new is not v:
                if out is None:
                    out = dict(value)
                out[k] = new
        return value if out is None else out
    if isinstance(value, (list, tuple)):
        items = [_mask(v, patterns, depth + 1, memo) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a pydantic model would be dumped later, secrets and all
        try:
            dumped = dump()
        except Exception:
            return value
        masked = _mask(dumped, patterns, depth + 1, memo)
        return value if masked is dumped else masked
    return value


# -- linking to the model's requests -------------------------------------------------------------
def note_request(frame: Frame, call_id: str | None, name: str | None, arguments: Any) -> None:
    """Remember a tool call the model asked for, until an execution claims it."""
    run = frame.run
    if run is None or not call_id:
        return
    with _lock:
        pending = run.pending.setdefault(frame.turn_id, {})
        if len(pending) >= MAX_PENDING:
            del pending[next(iter(pending))]
        pending[call_id] = (name, arguments)


def _arguments_match(requested: Any, given: Any) -> bool:
    if not isinstance(requested, dict) or not isinstance(given, dict):
        return bool(requested == given)
    return all(k in given and given[k] == v for k, v in requested.items())


def _claim(run: RunState | None, turn_id: str | None, name: str | None, call_id: str | None,
           arguments: Any) -> str | None:
    """The request id this execution answers (see the module docstring), now claimed."""
    if run is None:
        return call_id
    with _lock:
        if call_id is not None:
            for pending in run.pending.values():
                if pending.pop(call_id, None) is not None:
                    break
            return call_id
        waiting = run.pending.get(turn_id)
        if not waiting:
            return None
        same = [cid for cid, (n, _) in waiting.items() if n == name]
        if len(same) > 1:
            same = [cid for cid in same if _arguments_match(waiting[cid][1], arguments)]
        if len(same) != 1:
            return None
        del waiting[same[0]]
        return same[0]


@contextmanager
def tool_call_id(call_id: str) -> Iterator[None]:
    """Link the next tool execution started in this block to the model's call ``call_id``.

    For decorated tools, whose signature has no room for the id::

        with agentlog.tool_call_id(tc.id):
            get_weather(**json.loads(tc.function.arguments))

    Only the first tool started in the block takes the id; tools it calls do not.
    """
    token = _given_id.set([call_id])
    try:
        yield
    finally:
        try:
            _given_id.reset(token)
        except ValueError:
            pass  # left in another context (a generator finalised elsewhere)


def _take_given_id() -> str | None:
    holder = _given_id.get()
    return holder.pop() if holder else None


def current_tool() -> ToolCall | None:
    """The tool execution the calling code runs in (None outside any)."""
    return _current.get()


# -- the execution ---------------------------------------------------------------------------
class ToolCall(SpanScope):
    """One tool execution: arguments in, result or failure out, with its duration.

    Use it as a context manager (set ``.result``), or ``start()`` it and end it with
    ``finish(result)`` / ``fail(exc)`` from callbacks. ``tool_call_id`` links it to the
    model's request; when None it is found as the module docstring explains.
    ``mask`` adds names to the ``secret_names`` setting for this call.
    """

    opening_type = "tool.started"

    def __init__(
        self,
        name: str,
        arguments: Any = None,
        *,
        tool_call_id: str | None = None,
        span_id: str | None = None,
        mask: Iterable[str] = (),
    ) -> None:
        super().__init__(name, kind="tool", span_id=span_id)
        self.arguments = arguments
        self.tool_call_id = tool_call_id
        self.mask = tuple(mask)
        #: "approved", "denied" or None: the last decision recorded with approve()/deny().
        self.approval: str | None = None
        self._id_given = tool_call_id is not None
        self._link: str | None = None
        self._tool_token: Token[ToolCall | None] | None = None

    def _fresh(self) -> ToolCall:
        return ToolCall(self.name or "", self.arguments, tool_call_id=self.tool_call_id if self._id_given else None,
                        mask=self.mask)

    def _open(self) -> Frame:
        outer = frame_var.get()
        given = self.tool_call_id or _take_given_id()
        run = outer.run or get_recorder()._implicit
        self.tool_call_id = _claim(run, outer.turn_id, self.name, given, self.arguments)
        self._link = None if self.tool_call_id is None else "given" if given else "matched"
        return super()._open()

    def _open_payload(self) -> dict[str, Any]:
        names = get_recorder().settings.secret_names + self.mask
        return {"name": self.name, "tool_call_id": self.tool_call_id, "link": self._link,
                "arguments": mask_secrets(self.arguments, names)}

    def __enter__(self) -> ToolCall:
        super().__enter__()
        self._tool_token = _current.set(self)
        return self

    def __exit__(self, et: Any, exc: BaseException | None, tb: Any) -> None:
        token, self._tool_token = self._tool_token, None
        if token is not None:
            try:
                _current.reset(token)
            except ValueError:
                pass
        super().__exit__(et, exc, tb)

    def start(self) -> ToolCall:
        """Open without a ``with`` block (end with finish/fail), e.g. from framework callbacks."""
        import time

        self._t0 = time.perf_counter_ns()
        self._frame = self._open()
        return self

    # -- while it runs -------------------------------------------------------------------
    def approve(self, by: str | None = None, *, reason: str | None = None, **fields: Any) -> bool:
        """Record that the call was approved (by a person, a policy...)."""
        self.approval = "approved"
        return self.emit("tool.approval", {"decision": "approved", "by": by, "reason": reason, **fields})

    def deny(self, by: str | None = None, *, reason: str | None = None, **fields: Any) -> bool:
        """Record that the call was denied; it ends with status ``denied``."""
        self.approval = "denied"
        return self.emit("tool.approval", {"decision": "denied", "by": by, "reason": reason, **fields})

    # -- endings ------------------------------------------------------------------------
    def finish(self, result: Any = None) -> bool:
        if self._closed:
            return False
        self._closed = True
        status = "denied" if self.approval == "denied" else "ok"
        return self.emit("tool.finished", {"status": status, "result": result,
                                           "duration_ms": self.elapsed_ms()})

    def fail(self, error: BaseException | str) -> bool:
        if self._closed:
            return False
        self._closed = True
        if isinstance(error, BaseException):
            err = {"type": type(error).__name__, "message": str(error)}
            interrupted = _is_interrupt(error)
        else:
            err = {"type": "error", "message": error}
            interrupted = False
        status = "interrupted" if interrupted else "denied" if self.approval == "denied" else "error"
        return self.emit("tool.failed", {"status": status, "error": err, "duration_ms": self.elapsed_ms()})

    def _close(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        if exc is None or outcome(exc)[0] == "ok":
            self.finish(self.result)
        else:
            self.fail(exc)


def tool_call(
    name: str, arguments: Any = None, *, tool_call_id: str | None = None, mask: Iterable[str] = ()
) -> ToolCall:
    """Record one tool execution (context manager; set ``.result`` or call ``finish``)."""
    return ToolCall(name, arguments, tool_call_id=tool_call_id, mask=mask)


def tool(
    fn: F | None = None, *, name: str | None = None, mask: Iterable[str] = (), exclude: Iterable[str] = ()
) -> Any:
    """Decorator: record each call of a tool function (sync or async) as a tool execution.

    ``@agentlog.tool`` or ``@agentlog.tool(name="search", mask=("pin",), exclude=("ctx",))``.
    The arguments are recorded by parameter name (``exclude`` leaves some out, ``mask``
    adds secret names), the return value as the result. The function keeps its
    signature, so frameworks that read it to build a tool schema still can.
    """
    masked, skipped = tuple(mask), frozenset(exclude)

    def decorate(f: F) -> F:
        import inspect

        tool_name = name or getattr(f, "__name__", None) or repr(f)
        try:
            sig: inspect.Signature | None = inspect.signature(f)
        except (TypeError, ValueError):
            sig = None

        def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ToolCall:
            return ToolCall(tool_name, _bound_arguments(sig, args, kwargs, skipped), mask=masked)

        if _is_async(f):
            @functools.wraps(f)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                with begin(args, kwargs) as call:
                    call.result = await f(*args, **kwargs)
                    return call.result

            return cast(F, awrapper)

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with begin(args, kwargs) as call:
                call.result = f(*args, **kwargs)
                return call.result

        return cast(F, wrapper)

    return decorate(fn) if fn is not None else decorate


def _bound_arguments(sig: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                     exclude: frozenset[str]) -> dict[str, Any]:
    """The call's arguments by parameter name, as passed (defaults are not filled in)."""
    import inspect

    try:
        bound = sig.bind(*args, **kwargs) if sig is not None else None
    except TypeError:
        bound = None  # the call itself will fail with this TypeError, and be recorded failing
    if bound is None:
        out = {"args": list(args)} if args else {}
        out.update(kwargs)
        return {k: v for k, v in out.items() if k not in exclude}
    out = {}
    for i, (pname, value) in enumerate(bound.arguments.items()):
        param = sig.parameters[pname]
        if (i == 0 and pname in ("self", "cls")) or pname in exclude:
            continue
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            out.update({k: v for k, v in value.items() if k not in exclude})
        else:
            out[pname] = list(value) if param.kind is inspect.Parameter.VAR_POSITIONAL else value
    return out
