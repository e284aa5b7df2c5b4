"""Typed producers for the event kinds: inferences, logs, snapshots, usage (tools: tools.py).

These are what SDK instrumentations, framework adapters and hand-written agents
call. Each returns quickly and never raises into the host: payloads are built
as plain dicts and encoded later on the writer thread.

An :class:`Inference` is a span of kind ``llm``. Use it as a context manager
(or call ``start()`` and one of ``finish()`` / ``fail()`` / ``interrupt()``
yourself, e.g. around a stream that outlives the block that opened it)::

    with agentlog.inference("openai", "gpt-4o", request={"messages": msgs}) as call:
        for chunk in stream:
            call.delta(chunk.text)
        call.finish(stop_reason="stop", usage={"input_tokens": 12, "output_tokens": 30})

Leaving the block without ``finish()`` closes the inference for you: ``error``
if an exception is passing, ``interrupted`` (with the partial text) for an
interrupt, else ``ok`` with the text streamed so far.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from . import _ids
from ._frame import Frame, frame_var
from .context import SpanScope, outcome
from .recorder import get_recorder
from .tools import (  # the tool producers moved to tools.py
    ToolCall,
    mask_secrets,
    note_request,
    tool_call,
)

__all__ = ["Inference", "ToolCall", "inference", "log", "snapshot", "tool_call", "usage"]

_DELTA = "llm.delta"
_REASONING = "llm.reasoning"


class Inference(SpanScope):
    """One LLM call: request, streamed text and reasoning, tool calls, outcome."""

    opening_type = "llm.started"

    def __init__(
        self,
        provider: str,
        model: str | None,
        request: dict[str, Any] | None = None,
        *,
        messages: list[dict[str, Any]] | None = None,
        name: str | None = None,
        span_id: str | None = None,
    ) -> None:
        # SpanScope.__init__'s other fields keep their class defaults (no goal, label...).
        self.name = name or model
        self.kind = "llm"
        self.span_id = span_id
        self._span_id_given = span_id is not None
        self.provider = provider
        self.model = model
        self.request = request
        self.messages = messages
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tool_calls: list[dict[str, Any]] = []

    # Defaults on the class: an instance sets them only once it streams (one call's cost).
    _first_token_ns: int | None = None
    # Stream chunks waiting to be published as one event (see _chunk()): the run of
    # pending chunks is _text[_mark:] (or _reasoning[_mark:]) while _kind names it.
    # Re-entrant: a stream garbage-collected on the writer thread while that thread flushes
    # the same call runs its finalizer (interrupt -> emit) under this lock; a plain Lock would
    # deadlock the writer there.
    _lock: threading.RLock | None = None  # made by the first chunk, before the writer can see the call
    _fast: str | None = None  # the kind whose next chunk may take the fast path
    _kind: str | None = None
    _fields: dict[str, Any] = {}  # noqa: RUF012 - replaced, never mutated
    _mark = 0
    _first = 0  # recorder clock of the pending run's first chunk, and of its last
    _last = 0
    _clock: Callable[[], int] = staticmethod(time.time_ns)
    _tracker: Any = None  # the recorder whose writer publishes the pending run

    def _fresh(self) -> Inference:
        return Inference(self.provider, self.model, self.request, messages=self.messages, name=self.name)

    def _open(self) -> Frame:
        # SpanScope._open without its helper calls: every instrumented SDK call comes here.
        outer = frame_var.get()
        rec = get_recorder()
        span_id = self.span_id
        if span_id is None:
            span_id = self.span_id = _ids.new_id()
        parent = self.parent_span_id = outer.span_id
        frame = Frame(outer.run or rec._implicit or rec._implicit_run(), outer.turn_id, span_id, parent,
                      outer.sinks)
        rec.emit("llm.started", self._open_payload(), frame, span_id, parent)
        return frame

    def _open_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"provider": self.provider, "model": self.model, "name": self.name,
                                   "request": self.request}
        if self.messages is not None:
            payload["messages"] = self.messages
        return payload

    def start(self) -> Inference:
        """Open without a ``with`` block (close with finish/fail/interrupt)."""
        self._t0 = time.perf_counter_ns()
        self._frame = self._open()
        return self

    # -- while it streams -------------------------------------------------------------
    def delta(self, text: str, **fields: Any) -> bool:
        """A chunk of streamed text (``fields``: e.g. ``index`` for a choice)."""
        if self._fast is not _DELTA or fields:
            return self._chunk(_DELTA, self._text, text, fields)
        # The per-chunk path (see _chunk()): a clock read and an append.
        chunks = self._text
        now = self._clock()
        if len(chunks) == self._mark:  # nothing pending: a new run starts (the writer may track it)
            return self._chunk(_DELTA, chunks, text, fields)
        chunks.append(text)
        self._last = now
        return True

    def reasoning(self, text: str, **fields: Any) -> bool:
        """A chunk of streamed reasoning ("thinking") text."""
        if self._fast is not _REASONING or fields:
            return self._chunk(_REASONING, self._reasoning, text, fields)
        chunks = self._reasoning
        now = self._clock()
        if len(chunks) == self._mark:
            return self._chunk(_REASONING, chunks, text, fields)
        chunks.append(text)
        self._last = now
        return True

    def _chunk(self, type: str, chunks: list[str], text: str, fields: dict[str, Any]) -> bool:
        """Collect consecutive chunks and publish them as one event.

        A stream can send hundreds of chunks a second; publishing each would cost
        the caller (and the writer) per chunk. Chunks of one kind are kept in the
        call's own text (a run of them, from ``_mark`` on) and published when
        another kind of event of this call comes (its end included), and otherwise
        by the writer thread at each drain, so they reach the store as promptly as
        single events would. While a run goes on, a chunk costs an append and a
        clock read (``delta()``); this slower path starts a run, under the lock
        the writer's flush takes too, so a run is never left pending untracked.
        ``keep_deltas=True`` and ``durability="sync"`` publish every chunk.
        """
        if self._first_token_ns is None:
            self._first_token_ns = time.perf_counter_ns()
        rec = get_recorder()
        if rec.settings.keep_deltas or rec._sync:  # sync: each chunk is committed before we return
            self._fast = None
            ok = self.emit(type, {"text": text, **fields} if fields else {"text": text})
            chunks.append(text)
            self._kind = None
            return ok
        now = rec._clock()
        lock = self._lock
        if lock is None:
            lock = self._lock = threading.RLock()
        with lock:
            if self._kind is not None and (type != self._kind or fields != self._fields):
                self._flush_locked()
                self._kind = None
            if self._kind is None:
                self._kind, self._fields, self._mark, self._clock = type, fields, len(chunks), rec._clock
            if len(chunks) == self._mark:
                self._first = now
                if self._tracker is None:
                    self._tracker = rec
                    rec._track_stream(self)
            chunks.append(text)
            self._last = now
            self._fast = None if fields else type
        return True

    def flush_chunks(self) -> None:
        """Publish the chunks gathered so far (the writer calls this at every drain).

        The call stays tracked while it is open and has streamed lately: its next
        chunks take the fast path, which does not tell the writer about them.
        """
        assert self._lock is not None  # tracked calls have streamed
        with self._lock:
            tracker, self._tracker = self._tracker, None
            flushed = self._flush_locked()
            if tracker is None or self._closed:
                return
            # Untracked only when nothing came for a whole flush interval: a chunk that then
            # finds nothing pending tracks it again (under this lock, in _chunk()). Sooner, a
            # chunk on the fast path could be between its check and its append right now.
            if flushed or self._clock() - self._last < tracker._flush_interval_ns:
                self._tracker = tracker
                tracker._track_stream(self)

    def _flush_locked(self) -> bool:
        """Publish the pending run, if any (the lock is held); True if it did."""
        kind = self._kind
        if kind is None:
            return False
        chunks = self._text if kind is _DELTA else self._reasoning
        end = len(chunks)
        mark = self._mark
        if end == mark:
            return False
        self._mark = end
        first = self._first
        payload = {"text": "".join(chunks[mark:end]), "chunks": end - mark, "first_ts": first // 1000,
                   "last_ts": max(first, self._last) // 1000, **self._fields}
        # A chunk appended during this flush starts the next run no earlier than now.
        self._first = self._clock()
        get_recorder().emit(kind, payload, self._frame, self.span_id, self.parent_span_id, ns=first)
        return True

    def emit(self, type: str, payload: dict[str, Any] | None = None) -> bool:
        """Publish an event of this call, after the stream chunks that came before it."""
        if self._kind is None or self._lock is None:
            try:
                frame = self._frame
            except AttributeError:
                return super().emit(type, payload)  # not started: says so
            return get_recorder().emit(type, payload, frame, self.span_id, self.parent_span_id)
        with self._lock:
            self._flush_locked()
            return super().emit(type, payload)

    def tool_call(self, id: str, name: str, arguments: Any = None) -> bool:
        """A tool call the model asked for (``arguments`` parsed, or the raw string)."""
        call = {"id": id, "name": name, "arguments": arguments}
        self._tool_calls.append(call)
        if hasattr(self, "_frame"):  # for tools.py: the execution that answers it can find it
            note_request(self._frame, id, name, arguments)
        return self.emit("llm.tool_call", call)

    @property
    def text(self) -> str:
        return "".join(self._text)

    def _ttft(self) -> float | None:
        if self._first_token_ns is None:
            return None
        return (self._first_token_ns - self._t0) / 1e6

    # -- endings ------------------------------------------------------------------------
    def finish(
        self,
        response_text: str | None = None,
        *,
        reasoning_text: str | None = None,
        stop_reason: str | None = None,
        usage: dict[str, int | None] | None = None,
        cost_usd: float | None = None,
        request_id: str | None = None,
        model: str | None = None,
        message: dict[str, Any] | None = None,
        response: Any = None,
        ttft_ms: float | None = None,
    ) -> bool:
        """Close the inference successfully. Text defaults to what was streamed."""
        if self._closed:
            return False
        self._closed = True
        if response_text is None and self._text:
            response_text = self.text
        if reasoning_text is None and self._reasoning:
            reasoning_text = "".join(self._reasoning)
        return self.emit("llm.finished", {
            "status": "ok",
            "provider": self.provider,
            "model": model or self.model,
            "response_text": response_text,
            "reasoning_text": reasoning_text,
            "stop_reason": stop_reason,
            "tool_calls": self._tool_calls or None,
            "usage": usage,
            "cost_usd": cost_usd,
            "ttft_ms": ttft_ms if ttft_ms is not None else self._ttft(),
            "duration_ms": self.elapsed_ms(),
            "request_id": request_id,
            "message": message,
            "response": response,
        })

    def fail(
        self,
        message: str,
        *,
        kind: str = "error",
        http_status: int | None = None,
        request_id: str | None = None,
        body: Any = None,
        request: Any = None,
        status: str = "error",
        usage: dict[str, int | None] | None = None,
        cost_usd: float | None = None,
    ) -> bool:
        """Close the inference with a provider or transport error.

        ``usage``/``cost_usd``: what a stream had reported before it failed (billed all the same).
        """
        if self._closed:
            return False
        self._closed = True
        return self.emit("llm.error", {
            "status": status,
            "provider": self.provider,
            "model": self.model,
            "error": {"message": message, "kind": kind, "http_status": http_status,
                      "request_id": request_id, "body": body, "request": request},
            "partial_text": self.text or None,
            "reasoning_text": "".join(self._reasoning) or None,
            "usage": usage,
            "cost_usd": cost_usd,
            "duration_ms": self.elapsed_ms(),
        })

    def interrupt(self, reason: str = "interrupted") -> bool:
        """Close an inference cut off mid-stream, keeping the partial text."""
        if self._closed:
            return False
        self._closed = True
        return self.emit("llm.interrupted", {
            "status": "interrupted",
            "provider": self.provider,
            "model": self.model,
            "partial_text": self.text,
            "reasoning_text": "".join(self._reasoning) or None,
            "reason": reason,
            "duration_ms": self.elapsed_ms(),
        })

    def _close(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        status, error = outcome(exc)
        if status == "ok":
            self.finish()
        elif status == "interrupted":
            self.interrupt(f"{type(exc).__name__}")
        else:
            assert error is not None
            self.fail(error["message"], kind=error["type"])


def inference(
    provider: str,
    model: str | None,
    request: dict[str, Any] | None = None,
    *,
    messages: list[dict[str, Any]] | None = None,
    name: str | None = None,
) -> Inference:
    """Record one LLM call (see :class:`Inference`).

    ``request`` is the request as sent. ``messages`` is the conversation in the
    canonical form (``{"role", "content", "tool_call_id"?, "tool_calls"?}``) when
    the request's own format differs; by default ``request["system"]`` and
    ``request["messages"]`` are read as the conversation.
    """
    return Inference(provider, model, request, messages=messages, name=name)


def log(message: str, level: str = "info", **fields: Any) -> bool:
    """A log / info event in the current run, turn and span (e.g. "mode switched").

    Fields named like secrets (``api_key=...``, see ``secret_names``) are masked here, as
    tool arguments are; credentials by shape anywhere are redacted on the writer thread.
    """
    rec = get_recorder()
    if fields:
        fields = mask_secrets(fields, rec.settings.secret_names)
    return rec.publish("log", {"level": level, "message": message, "fields": fields or None})


def snapshot(state: Any, phase: str = "pre", **fields: Any) -> bool:
    """A full JSON snapshot of the turn's state, e.g. before (``pre``) and after (``post``) inference."""
    return get_recorder().publish("snapshot", {"phase": phase, "state": state, **fields})


def usage(
    *,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cached_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
    cost_usd: float | None = None,
    **fields: Any,
) -> bool:
    """A cumulative usage snapshot (tokens and cost so far) for the current run."""
    return get_recorder().publish("usage", {
        "input_tokens": input_tokens, "output_tokens": output_tokens, "cached_tokens": cached_tokens,
        "cache_write_tokens": cache_write_tokens, "reasoning_tokens": reasoning_tokens,
        "cost_usd": cost_usd, **fields,
    })


