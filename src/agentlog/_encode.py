"""JSON encoding that never raises and is bounded by output size.

Runs on the writer thread only. The fast path is a single ``orjson.dumps``,
taken only when :func:`_plain_size` (one pass over the containers, no
recursion) finds plain JSON data whose output fits ``max_bytes``: orjson itself
has no output limit, so a structure that shares references (``x = [x, x]``
thirty times, or one long string referenced 100,000 times) would otherwise
serialise for minutes into gigabytes. Everything else, and anything orjson
refuses (unknown types, lone surrogates, integers past 64 bits, deep nesting,
cycles), goes through :func:`sanitize`, which walks the value with a depth
limit, a budget of nodes *and of output bytes*, and cycle detection, and
returns plain JSON-safe data with visible markers where something was replaced.
Long strings are truncated with a marker that keeps their size and hash.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import orjson

__all__ = ["EncodeError", "encode_payload", "sanitize", "truncation_marker"]

_OPTS = orjson.OPT_NON_STR_KEYS
MAX_DEPTH = 64
MAX_NODES = 200_000
_REPR_LIMIT = 200


_CONTAINERS = frozenset({dict, list, tuple})
_PLAIN_SCALARS = frozenset({int, float, bool, type(None)})


def _plain_size(value: Any, limit: int) -> int:
    """A rough size of ``value`` as JSON, or -1 if orjson's fast path is unsafe.

    Unsafe: a type orjson would not take as is, more than ``MAX_NODES`` container
    visits, or more than ``limit`` bytes. A container referenced twice is visited
    (and counted) twice, as orjson would write it twice: shared references are
    normal (an SDK's request and its canonical messages share the message dicts)
    and only their expansion is bounded; a cycle never ends, so it runs into
    the visit bound. Costs ~1 µs for a small payload (one pass, no recursion).
    """
    size = 0
    visits = 0
    stack = [value]
    pop, push = stack.pop, stack.append
    while stack:
        x = pop()
        visits += 1
        size += len(x)
        if type(x) is dict:
            # Keys are written too: a long key in a dict referenced many times expands as much
            # as a long value would.
            try:
                size += sum(map(len, x))
            except TypeError:  # a non-string key (OPT_NON_STR_KEYS writes it as text)
                size += sum(len(k) if type(k) is str else 24 for k in x)
        for y in x.values() if type(x) is dict else x:
            t = type(y)
            if t is str:
                size += len(y)
            elif t in _CONTAINERS:
                push(y)
            elif t not in _PLAIN_SCALARS:
                return -1
        if size > limit or visits > MAX_NODES:
            return -1
    return size


class EncodeError(Exception):
    """The payload could not be encoded within the limits (reason in args[0])."""


def _default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _bytes_value(bytes(obj))
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    to_dict = getattr(obj, "model_dump", None) or getattr(obj, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return _safe_repr(obj)


def _bytes_value(data: bytes) -> Any:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"$bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _safe_repr(obj: Any) -> str:
    try:
        text = repr(obj)
    except Exception as exc:  # a hostile __repr__ must not stop the writer
        return f"<{type(obj).__name__} (repr failed: {type(exc).__name__})>"
    if not isinstance(text, str):
        return f"<{type(obj).__name__}>"
    if len(text) > _REPR_LIMIT:
        text = text[:_REPR_LIMIT] + "…"
    return _clean_str(text)


def _clean_str(s: str) -> str:
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "replace").decode("utf-8")


def truncation_marker(value: str | bytes, keep: int) -> dict[str, Any]:
    """Replace a long value by its head, its full size and a hash of the whole."""
    data = value.encode("utf-8", "replace") if isinstance(value, str) else value
    head = data[:keep].decode("utf-8", "ignore")
    return {
        "$truncated": True,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "head": head,
    }


def sanitize(value: Any, max_string: int | None = None, max_bytes: int | None = None) -> Any:
    """Return a JSON-safe copy of ``value`` (see module docstring).

    ``max_bytes`` bounds the strings kept in total: past it, strings become
    truncation markers with an empty head, so the output cannot explode.
    """
    budget: list[Any] = [MAX_NODES, max_bytes if max_bytes is not None else math.inf, {}]
    return _walk(value, 0, set(), budget, max_string)


def _string(v: str | bytes, budget: list[Any], max_string: int | None) -> Any:
    """A string or bytes value, truncated when over ``max_string`` or the byte budget."""
    n = len(v)
    keep = n if max_string is None else min(n, max_string)
    keep = int(min(keep, max(0, budget[1])))
    if keep < n and (isinstance(v, bytes) or len(v.encode("utf-8", "replace")) > keep):
        markers = budget[2]  # one hash per distinct value, however often it is referenced
        key = (id(v), keep)
        if key not in markers:
            markers[key] = truncation_marker(v, keep)
        budget[1] -= keep + 150
        return markers[key]
    budget[1] -= n
    return _clean_str(v) if isinstance(v, str) else _bytes_value(v)


def _walk(v: Any, depth: int, active: set[int], budget: list[Any], max_string: int | None) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        return {"$truncated": "too many values"}
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v if -(2**63) <= v < 2**64 else str(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, str):
        return _string(v, budget, max_string)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return _string(bytes(v), budget, max_string)
    if depth >= MAX_DEPTH:
        return {"$truncated": "too deep"}
    ident = id(v)
    if ident in active:
        return {"$cycle": True}
    if isinstance(v, dict):
        active.add(ident)
        try:
            out: dict[str, Any] = {}
            for k, x in list(v.items()):
                if budget[1] < 0:  # the byte budget is spent: say so once and stop
                    out["$truncated"] = "over size"
                    break
                key = _key(k)
                budget[1] -= len(key) + 4
                out[key] = _walk(x, depth + 1, active, budget, max_string)
            return out
        finally:
            active.discard(ident)
    if isinstance(v, (list, tuple, set, frozenset)):
        active.add(ident)
        try:
            items: list[Any] = []
            for x in list(v):
                if budget[1] < 0:
                    items.append({"$truncated": "over size"})
                    break
                budget[1] -= 1
                items.append(_walk(x, depth + 1, active, budget, max_string))
            return items
        finally:
            active.discard(ident)
    try:
        converted = _default(v)
    except Exception:
        converted = _safe_repr(v)
    if isinstance(converted, str):
        return converted
    active.add(ident)
    try:
        return _walk(converted, depth + 1, active, budget, max_string)
    finally:
        active.discard(ident)


def _key(k: Any) -> str:
    if isinstance(k, str):
        return _clean_str(k)
    if k is None or isinstance(k, (int, float, bool)):
        return str(k)
    return _safe_repr(k)


def encode_payload(payload: Any, max_bytes: int, max_string: int) -> tuple[bytes, Any]:
    """Encode ``payload`` to JSON bytes; return ``(json, payload_as_stored)``.

    Raises :class:`EncodeError` ("too_large" or "unserialisable") when even the
    sanitized, truncated form does not fit.
    """
    data = None
    if type(payload) in _CONTAINERS and _plain_size(payload, max_bytes) >= 0:
        try:
            data = orjson.dumps(payload, option=_OPTS)
        except Exception:
            data = None  # a lone surrogate, a huge int, deep nesting: sanitize below
        if data is not None and len(data) <= max_bytes:
            return data, payload
    try:
        clean = sanitize(payload, None, max_bytes)
        data = orjson.dumps(clean, option=_OPTS)
        if len(data) > max_bytes:
            # The budget counts characters; JSON escapes make one up to 6 bytes
            # (\u0000), so the second pass leaves room for the worst case.
            clean = sanitize(payload, max_string, max_bytes // 7)
            data = orjson.dumps(clean, option=_OPTS)
    except Exception as exc:
        raise EncodeError("unserialisable") from exc
    if len(data) > max_bytes:
        raise EncodeError("too_large")
    return data, clean
