"""The conversation an LLM event carries, as chain-hashed messages.

Every request resends the conversation so far; the SQLite sink stores each
message once per run. A message's hash covers its parent's hash, its role,
content and tool-call ids, so the same words at another place in the
conversation are another message, and a run's messages form a chain.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

__all__ = ["msg_hash", "reply_message", "request_chain"]


#: Digests remembered, and the longest content remembered (at most ~4 MB of text held).
_MEMO_SIZE = 1024
_MEMO_TEXT = 4096
_memo: dict[tuple[Any, ...], str] = {}


def msg_hash(parent: str, msg: dict[str, Any]) -> str:
    calls = msg.get("tool_calls")
    call_ids = ",".join(
        str(c.get("id")) for c in calls if isinstance(c, dict)
    ) if isinstance(calls, list) else ""
    content = msg.get("content")
    role, call_id = msg.get("role"), msg.get("tool_call_id")
    if type(content) is not str or len(content) > _MEMO_TEXT:
        return _digest(parent, role, content, call_id, call_ids)
    # Every request resends the conversation so far: the same messages are hashed again at
    # every call of a run. The key holds the exact values, so a hit is the same digest.
    key = (parent, role, content, call_id, call_ids)
    try:
        return _memo[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable role or tool_call_id
        return _digest(parent, role, content, call_id, call_ids)
    if len(_memo) >= _MEMO_SIZE:
        _memo.clear()
    digest = _memo[key] = _digest(parent, role, content, call_id, call_ids)
    return digest


def _digest(parent: str, role: Any, content: Any, call_id: Any, call_ids: str) -> str:
    key = orjson.dumps(
        [parent, role, "" if content is None else content, call_id, call_ids],
        option=orjson.OPT_NON_STR_KEYS,
    )
    return hashlib.blake2b(key, digest_size=16).hexdigest()


def _request_messages(request: Any) -> list[dict[str, Any]]:
    if not isinstance(request, dict):
        return []
    msgs: list[dict[str, Any]] = []
    system = request.get("system")
    if system:
        msgs.append({"role": "system", "content": system})
    for m in request.get("messages") or ():
        if isinstance(m, dict):
            msgs.append(m)
        elif isinstance(m, str):
            msgs.append({"role": "user", "content": m})
    return msgs


def request_chain(started: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """The (direction, chain hash, message) of an llm.started payload's conversation."""
    canonical = started.get("messages")
    messages = (
        [m for m in canonical if isinstance(m, dict)] if isinstance(canonical, list)
        else _request_messages(started.get("request"))
    )
    out = []
    parent = ""
    for m in messages:
        parent = msg_hash(parent, m)
        out.append(("input", parent, m))
    return out


def reply_message(p: dict[str, Any]) -> dict[str, Any] | None:
    msg = p.get("message")
    if isinstance(msg, dict):
        return msg
    text = p.get("response_text")
    calls = p.get("tool_calls")
    if text is None and not calls:
        return None
    msg = {"role": "assistant", "content": text}
    if calls:
        msg["tool_calls"] = calls
    return msg
