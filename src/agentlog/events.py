"""The canonical event record and the vocabulary of event types.

An :class:`Event` is a value: it knows what happened, when, and where in the
run / turn / span tree; it has no storage identity (no rowid) and no behaviour.
The recorder builds events on its writer thread from the compact tuples that
``publish()`` enqueues, so constructing one never costs the caller anything.

Hot attributes (provider, model, token counts, cost, duration, status) are
*derived* from the payload by well-known keys, so the payload stays the single
source of truth and ``to_dict``/``from_dict`` round-trip without loss.

Event types (``EventType`` members are plain strings):

=====================  ==========================================================
run.started            name, metadata, tags
run.finished           status (ok | error | interrupted), error
turn.started           index, metadata
turn.finished          status, error
span.started           kind, name, goal, label, attributes        (opens a span)
span.status            status, note                               (a transition)
span.finished          status, result, error                      (closes a span)
span.link              target_span_id, relation                   (an extra edge)
span.annotate          fields                                     (merged into the span's annotations)
llm.started            provider, model, request{messages, tools, system,
                       temperature, top_p, max_tokens, ...}       (opens a span)
llm.delta              text                                       (streamed text)
llm.reasoning          text                                       (streamed reasoning)
llm.tool_call          id, name, arguments                        (requested tool)
llm.finished           response_text, reasoning_text, stop_reason, usage{...},
                       cost_usd, ttft_ms, duration_ms, request_id, response
llm.error              error{message, kind, http_status, request_id, body,
                       request}, duration_ms                      (closes the span)
llm.interrupted        partial_text, reason, duration_ms          (closes the span)
llm.http               request{method, url, headers, body}, response{status, headers,
                       body, size}       (raw exchange, with instrument(capture_http=True))
tool.started           tool_call_id, link (given | matched), name,
                       arguments (secrets masked)                 (opens a span)
tool.approval          decision (approved | denied), by, reason
tool.finished          status (ok | denied), result, duration_ms  (closes the span)
tool.failed            status (error | interrupted | denied), error{type, message},
                       duration_ms                                (closes the span)
log                    level, message, fields
snapshot               phase (pre | post | ...), state
usage                  input_tokens, output_tokens, ..., cost_usd (cumulative)
=====================  ==========================================================

Consolidated deltas (the default) keep the type ``llm.delta`` / ``llm.reasoning``
and carry ``text``, ``chunks``, ``first_ts`` and ``last_ts`` (unix µs).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SPAN_CLOSING", "SPAN_OPENING", "USAGE_KEYS", "Event", "EventType"]


class EventType(str, enum.Enum):
    """Every event type agentlog writes. Members compare equal to their string."""

    RUN_STARTED = "run.started"
    RUN_FINISHED = "run.finished"
    TURN_STARTED = "turn.started"
    TURN_FINISHED = "turn.finished"
    SPAN_STARTED = "span.started"
    SPAN_STATUS = "span.status"
    SPAN_FINISHED = "span.finished"
    SPAN_LINK = "span.link"
    SPAN_ANNOTATE = "span.annotate"
    LLM_STARTED = "llm.started"
    LLM_DELTA = "llm.delta"
    LLM_REASONING = "llm.reasoning"
    LLM_TOOL_CALL = "llm.tool_call"
    LLM_FINISHED = "llm.finished"
    LLM_ERROR = "llm.error"
    LLM_INTERRUPTED = "llm.interrupted"
    LLM_HTTP = "llm.http"
    TOOL_STARTED = "tool.started"
    TOOL_FINISHED = "tool.finished"
    TOOL_FAILED = "tool.failed"
    TOOL_APPROVAL = "tool.approval"
    LOG = "log"
    SNAPSHOT = "snapshot"
    USAGE = "usage"

    def __str__(self) -> str:
        return self.value


#: Types that open a span (their ``span_id`` is the new span).
SPAN_OPENING = frozenset({"span.started", "llm.started", "tool.started"})
#: Types that close a span.
SPAN_CLOSING = frozenset(
    {"span.finished", "llm.finished", "llm.error", "llm.interrupted", "tool.finished", "tool.failed"}
)
#: Normalised token-usage keys, in ``payload["usage"]`` or at the top of a usage event.
USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


def _num(value: Any) -> Any:
    """Accept an int/float for a typed column, anything else becomes None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value


@dataclass(slots=True)
class Event:
    """One thing that happened, correlated to its run, turn and span.

    ``ts`` is unix time in microseconds (UTC). ``seq`` increases by one per
    event within a run, in publish order. ``event_id`` is time-ordered and
    globally unique, so events from many machines merge and sort.
    """

    type: str
    event_id: str
    ts: int
    seq: int
    run_id: str | None = None
    turn_id: str | None = None
    span_id: str | None = None
    parent_span_id: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    # The payload as JSON, set once by the writer thread so sinks share one encoding.
    _json: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def payload_json(self) -> bytes:
        """The payload as UTF-8 JSON (encoded once, then cached)."""
        if self._json is None:
            from ._encode import encode_payload

            self._json, self.payload = encode_payload(self.payload, 1 << 62, 1 << 62)
        return self._json

    # -- hot attributes, derived from the payload ------------------------------
    @property
    def provider(self) -> str | None:
        v = self.payload.get("provider")
        return v if isinstance(v, str) else None

    @property
    def model(self) -> str | None:
        v = self.payload.get("model")
        return v if isinstance(v, str) else None

    @property
    def status(self) -> str | None:
        v = self.payload.get("status")
        return v if isinstance(v, str) else None

    @property
    def cost_usd(self) -> float | None:
        return _num(self.payload.get("cost_usd"))  # type: ignore[no-any-return]

    @property
    def duration_ms(self) -> float | None:
        return _num(self.payload.get("duration_ms"))  # type: ignore[no-any-return]

    def usage(self) -> dict[str, int | None]:
        """Normalised token counts; None where the payload does not say."""
        src = self.payload.get("usage") if self.type != "usage" else self.payload
        if not isinstance(src, dict):
            src = {}
        return {k: _num(src.get(k)) for k in USAGE_KEYS}

    # -- (de)serialisation -------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "ts": self.ts,
            "seq": self.seq,
            "run_id": self.run_id,
            "turn_id": self.turn_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "payload": self.payload,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        missing = [k for k in ("event_id", "type", "ts", "seq") if k not in data]
        if missing:
            raise ValueError(f"Event dict is missing {', '.join(missing)}: {sorted(data)}")
        payload = data.get("payload") or {}
        if not isinstance(payload, dict):
            raise TypeError(f"Event payload must be a dict, got {type(payload).__name__}")
        return cls(
            type=str(data["type"]),
            event_id=str(data["event_id"]),
            ts=int(data["ts"]),
            seq=int(data["seq"]),
            run_id=data.get("run_id"),
            turn_id=data.get("turn_id"),
            span_id=data.get("span_id"),
            parent_span_id=data.get("parent_span_id"),
            payload=payload,
        )
