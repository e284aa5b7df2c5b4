"""JSON encoding that never raises and is bounded by output size.

Runs on the writer thread only. The fast path is a single ``orjson.dumps``;
anything orjson refuses (unknown types, lone surrogates, integers past 64 bits,
nesting past its limit, cycles) goes through :func:`sanitize`, which walks the
value once with a depth limit, a budget of nodes and cycle detection, and
returns plain JSON-safe data with visible markers where something was replaced.
If the result is still over ``max_bytes``, long strings are truncated with a
marker that keeps their size and hash.
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


def sanitize(value: Any, max_string: int | None = None) -> Any:
    """Return a JSON-safe copy of ``value`` (see module docstring)."""
    budget = [MAX_NODES]
    return _walk(value, 0, set(), budget, max_string)


def _walk(v: Any, depth: int, active: set[int], budget: list[int], max_string: int | None) -> Any:
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
        if max_string is not None and len(v) > max_string // 4 and len(v.encode("utf-8", "replace")) > max_string:
            return truncation_marker(v, max_string)
        return _clean_str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        data = bytes(v)
        if max_string is not None and len(data) > max_string:
            return truncation_marker(data, max_string)
        return _bytes_value(data)
    if depth >= MAX_DEPTH:
        return {"$truncated": "too deep"}
    ident = id(v)
    if ident in active:
        return {"$cycle": True}
    if isinstance(v, dict):
        active.add(ident)
        try:
            return {_key(k): _walk(x, depth + 1, active, budget, max_string) for k, x in list(v.items())}
        finally:
            active.discard(ident)
    if isinstance(v, (list, tuple, set, frozenset)):
        active.add(ident)
        try:
            return [_walk(x, depth + 1, active, budget, max_string) for x in list(v)]
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
    try:
        data = orjson.dumps(payload, default=_default, option=_OPTS)
    except Exception:
        data = None
    if data is not None and len(data) <= max_bytes:
        return data, payload
    try:
        clean = sanitize(payload, max_string if data is not None else None)
        data = orjson.dumps(clean, option=_OPTS)
        if len(data) > max_bytes:
            clean = sanitize(payload, max_string)
            data = orjson.dumps(clean, option=_OPTS)
    except Exception as exc:
        raise EncodeError("unserialisable") from exc
    if len(data) > max_bytes:
        raise EncodeError("too_large")
    return data, clean
