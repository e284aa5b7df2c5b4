"""Small helpers the provider modules share: JSON arguments, headers, error kinds."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["error_kind", "extras", "fields", "get", "header", "parse_arguments", "sent_fields", "text_of_parts"]


_MISSING = object()
_ON_CLASS: dict[tuple[type, str], bool] = {}


# The Stainless SDKs' placeholders for "not given": such a field is left out of the request.
_NOT_SENT = frozenset({"Omit", "NotGiven"})


_PLAIN_TYPES = frozenset({str, int, float, bool, type(None), list, dict, tuple})


def sent_fields(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of a request body without the fields the SDK leaves out when it sends it."""
    for v in body.values():
        if type(v) not in _PLAIN_TYPES:
            return {k: v for k, v in body.items() if type(v).__name__ not in _NOT_SENT}
    return body.copy()  # the usual body: nothing to leave out, copied in C


def get(obj: Any, *path: str) -> Any:
    """``obj.a.b`` or ``obj["a"]["b"]``, None where anything is missing.

    Cheap on SDK (pydantic) objects: a field is read from the instance dict, and
    an absent field is looked up among the extras instead of letting pydantic
    raise and catch an AttributeError (~3 µs each, on every streamed chunk).
    """
    for key in path:
        if obj is None:
            return None
        if isinstance(obj, dict):
            obj = obj.get(key)
            continue
        fields = getattr(obj, "__dict__", None)
        if fields is not None and key in fields:
            obj = fields[key]
            continue
        cls = type(obj)
        on_class = _ON_CLASS.get((cls, key))
        if on_class is None:
            # Asking a pydantic model class for a name it lacks raises inside its
            # metaclass (~1 µs): ask once per class and name.
            on_class = getattr(cls, key, _MISSING) is not _MISSING
            if len(_ON_CLASS) < 4096:
                _ON_CLASS[(cls, key)] = on_class
        if on_class:  # a property or class attribute
            obj = getattr(obj, key, None)
            continue
        extra = getattr(obj, "__pydantic_extra__", _MISSING)
        if extra is _MISSING:
            obj = getattr(obj, key, None)
        else:
            obj = extra.get(key) if isinstance(extra, dict) else None
    return obj


_NO_FIELDS: dict[str, Any] = {}
_MODELS: set[type] = set()  # pydantic model classes met so far: their fields are their __dict__


class _Getter:
    """``get()`` behind a mapping's ``.get``, for objects that are neither dicts nor models."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def get(self, key: str, default: Any = None) -> Any:
        value = get(self.obj, key)
        return default if value is None else value

    def __contains__(self, key: str) -> bool:
        return get(self.obj, key) is not None


def fields(obj: Any) -> Any:
    """The fields of a dict or an SDK (pydantic) object, to read with ``.get(name)``.

    For the per-chunk path: one call per object instead of one ``get()`` per field.
    A pydantic model's declared fields are its instance dict (fields it does not
    declare are in :func:`extras`); None gives an empty mapping, anything else
    reads through :func:`get`.
    """
    cls = type(obj)
    if cls is dict:
        return obj
    if cls in _MODELS:
        return obj.__dict__
    if obj is None:
        return _NO_FIELDS
    values = getattr(obj, "__dict__", None)
    if type(values) is not dict or getattr(obj, "__pydantic_extra__", _MISSING) is _MISSING:
        return _Getter(obj)  # not a pydantic model: properties count too
    if len(_MODELS) < 4096:
        _MODELS.add(cls)
    return values


def extras(obj: Any) -> Any:
    """The fields an SDK object got without declaring them (a dict: all of it), by ``.get(name)``."""
    if type(obj) is dict:
        return obj
    extra = getattr(obj, "__pydantic_extra__", _MISSING)
    if extra is _MISSING:
        return _NO_FIELDS if obj is None else _Getter(obj)
    return extra if type(extra) is dict else _NO_FIELDS


def parse_arguments(raw: Any) -> Any:
    """Tool-call arguments as a value when they are JSON text, else as they came."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def header(headers: Any, name: str) -> str | None:
    if headers is None:
        return None
    try:
        value = headers.get(name)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def error_kind(status: int | None, name: str = "") -> str:
    """A provider-neutral failure kind from an HTTP status or an exception name."""
    lowered = name.lower()
    if "timeout" in lowered:
        return "timeout"
    if "connection" in lowered or lowered.endswith(("protocolerror", "readerror", "networkerror",
                                                      "connecterror", "writeerror")):
        return "connection"
    if status is None:
        return "error"
    if status == 429:
        return "rate_limit"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status in (408, 504):
        return "timeout"
    if status == 529:
        return "overloaded"
    if status >= 500:
        return "server_error"
    return "bad_request"


def text_of_parts(content: Any) -> Any:
    """Message content as text when it is only text parts; otherwise as it came."""
    if isinstance(content, list) and content and all(
        isinstance(p, dict) and isinstance(p.get("text"), str) and p.get("type", "text") in
        ("text", "input_text", "output_text") for p in content
    ):
        return "\n".join(p["text"] for p in content)
    return content
