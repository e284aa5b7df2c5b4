"""Stages the writer thread runs over events before any sink sees them.

A processor is a plain callable ``Event -> Event | None``; returning None drops
the event (it is counted as filtered, not lost). Processors run in order on the
writer thread, after stream deltas are consolidated, so a redaction hook sees a
streamed secret whole instead of split across chunks. A processor that raises
drops its event (fail closed) and is logged once per failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .events import Event

__all__ = ["DELTA_TYPES", "Processor", "consolidate_deltas", "redact_deltas"]

Processor = Callable[[Event], "Event | None"]

#: Event types whose consecutive occurrences in one span are merged by default.
DELTA_TYPES = frozenset({"llm.delta", "llm.reasoning"})


def _same_shape(head: dict[str, Any], chunk: dict[str, Any]) -> bool:
    """Chunks merge only when everything but their text agrees (e.g. choice index)."""
    a = {k: v for k, v in head.items() if k not in _MERGED_KEYS}
    b = {k: v for k, v in chunk.items() if k not in _MERGED_KEYS}
    return a == b


_MERGED_KEYS = frozenset({"text", "chunks", "first_ts", "last_ts", "last_seq"})


def consolidate_deltas(
    events: list[Event], extra: list[Any]
) -> tuple[list[Event], list[Any]]:
    """Merge consecutive deltas of the same kind within a span into one event.

    "Consecutive" means no other event of the same span comes between them;
    events of other spans (parallel streams) may interleave. The merged event
    keeps the first chunk's id, time and seq, and carries ``text`` (all chunks
    joined), ``chunks``, ``first_ts``, ``last_ts`` and ``last_seq``. Nothing is
    lost; a stream that straddles two batches yields two merged events.
    """
    out_e: list[Event] = []
    out_x: list[Any] = []
    open_by_span: dict[str | None, tuple[int, list[str]]] = {}
    for ev, sinks in zip(events, extra, strict=True):
        span = ev.span_id
        if ev.type in DELTA_TYPES and isinstance(ev.payload.get("text"), str):
            current = open_by_span.get(span)
            if current is not None:
                idx, parts = current
                head = out_e[idx]
                if head.type == ev.type and out_x[idx] is sinks and _same_shape(head.payload, ev.payload):
                    parts.append(ev.payload["text"])
                    head.payload["chunks"] += ev.payload.get("chunks", 1)
                    head.payload["last_ts"] = ev.payload.get("last_ts", ev.ts)
                    head.payload["last_seq"] = ev.seq
                    continue
                _close(out_e[idx], parts)
            payload = dict(ev.payload)
            payload.setdefault("chunks", 1)
            payload.setdefault("first_ts", ev.ts)
            payload.setdefault("last_ts", ev.ts)
            payload.setdefault("last_seq", ev.seq)
            ev.payload = payload
            open_by_span[span] = (len(out_e), [payload["text"]])
        else:
            current = open_by_span.pop(span, None)
            if current is not None:
                _close(out_e[current[0]], current[1])
        out_e.append(ev)
        out_x.append(sinks)
    for idx, parts in open_by_span.values():
        _close(out_e[idx], parts)
    return out_e, out_x


def _close(head: Event, parts: list[str]) -> None:
    if len(parts) > 1:
        head.payload["text"] = "".join(parts)


# -- inline media ----------------------------------------------------------------------------
_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_\n\r")
_MEDIA_KEYS = frozenset({"data", "b64_json", "image_base64", "audio"})
MEDIA_MIN_CHARS = 512


def _looks_base64(text: str) -> bool:
    head = text[:256].encode("ascii", "ignore")
    return len(head) == min(len(text), 256) and all(c in _B64 for c in head)


def _media_marker(text: str, mime: str | None) -> dict[str, Any]:
    import hashlib

    data = text.encode("ascii", "ignore")
    return {"$truncated": True, "kind": "inline_media", "mime": mime, "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def _strip(value: Any, key: str | None, depth: int) -> Any:
    """``value`` with base64 media replaced by markers; the same object when nothing changed."""
    if isinstance(value, str):
        if len(value) < MEDIA_MIN_CHARS:
            return value
        if value.startswith("data:") and ";base64," in value[:200]:
            mime = value[5:value.index(";")]
            return _media_marker(value[value.index(";base64,") + 8:], mime)
        if key in _MEDIA_KEYS and _looks_base64(value):
            return _media_marker(value, None)
        return value
    if depth > 32:
        return value
    if isinstance(value, dict):
        out: dict[str, Any] | None = None
        for k, v in value.items():
            new = _strip(v, k, depth + 1)
            if new is not v:
                if out is None:  # copy on write: the caller's objects are never modified
                    out = dict(value)
                out[k] = new
        return value if out is None else out
    if isinstance(value, (list, tuple)):
        items: list[Any] | None = None
        for i, v in enumerate(value):
            new = _strip(v, key, depth + 1)
            if new is not v:
                if items is None:
                    items = list(value)
                items[i] = new
        return value if items is None else items
    return value


def strip_media_value(value: Any) -> Any:
    """``value`` with base64 media replaced by markers (the same object if there was none)."""
    return _strip(value, None, 0)


def strip_inline_media(event: Event) -> Event:
    """Replace base64 images, audio and documents in LLM requests by a marker.

    The marker keeps the media type, the size and a SHA-256 of the data, so the
    same image can be recognised across calls without storing it on every turn.
    The writer does this by default for ``llm.started`` / ``llm.finished`` events
    (``configure(keep_media=True)`` keeps media as sent); this processor form is
    for other events or sinks.
    """
    if event.type in ("llm.started", "llm.finished"):
        stripped = _strip(event.payload, None, 0)
        if stripped is not event.payload:
            event.payload = stripped
    return event


# -- secrets in streams ----------------------------------------------------------------------
def _rewrite(texts: list[str], secrets: list[tuple[int, int, str]]) -> list[str]:
    """Chunk texts with each secret of their joined text replaced: the marker goes where
    the secret starts, and the rest of it is cut from the chunks it runs into."""
    from ._secrets import marker

    joined = "".join(texts)
    out = []
    a = 0
    for text in texts:
        b = a + len(text)
        pieces = []
        pos = a
        for s, e, kind in secrets:
            if e <= pos or s >= b:
                continue
            if s > pos:
                pieces.append(joined[pos:s])
            if s >= a:
                pieces.append(marker(kind))
            pos = min(e, b)
        if pos < b:
            pieces.append(joined[pos:b])
        out.append("".join(pieces))
        a = b
    return out


def redact_deltas(
    events: list[Event], extra: list[Any], hold: bool
) -> tuple[list[Event], list[Any], list[tuple[Event, Any]]]:
    """Redact secrets across the chunks of each stream, and hold back a stream's last chunks
    while its text ends in what may be the first part of a secret.

    A run is the consecutive deltas of one kind in one span (as in
    :func:`consolidate_deltas`); its chunks' texts are searched joined, so a key split
    between two chunks is found (with ``keep_deltas=True`` each chunk stays an event).
    The run a batch ends with, in a span with no later event, may be continued by the
    next batch: with ``hold``, its chunks from the possible start of a secret on are
    returned apart (the writer puts them before the next batch) instead of written.
    """
    from ._secrets import find_secrets, stream_hold_from

    runs: list[list[int]] = []
    open_by_span: dict[str | None, list[int]] = {}
    for i, ev in enumerate(events):
        current = open_by_span.get(ev.span_id)
        if ev.type in DELTA_TYPES and isinstance(ev.payload.get("text"), str):
            if current is not None and events[current[0]].type == ev.type:
                current.append(i)
                continue
            if current is not None:
                runs.append(current)
            open_by_span[ev.span_id] = [i]
        elif current is not None:
            runs.append(open_by_span.pop(ev.span_id))
    held_idx: set[int] = set()
    for run in [*runs, *open_by_span.values()]:
        texts = [events[i].payload["text"] for i in run]
        if hold and run is open_by_span.get(events[run[0]].span_id):
            at = stream_hold_from("".join(texts))
            if at is not None:
                end = 0
                for n, text in enumerate(texts):
                    end += len(text)
                    if end > at:
                        held_idx.update(run[n:])
                        run, texts = run[:n], texts[:n]
                        break
        secrets = find_secrets("".join(texts)) if texts else []
        if secrets:
            for i, text in zip(run, _rewrite(texts, secrets), strict=True):
                events[i].payload = {**events[i].payload, "text": text}
    if not held_idx:
        return events, extra, []
    held = [(events[i], extra[i]) for i in sorted(held_idx)]
    keep = [i for i in range(len(events)) if i not in held_idx]
    return [events[i] for i in keep], [extra[i] for i in keep], held
