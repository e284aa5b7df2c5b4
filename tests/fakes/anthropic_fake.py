"""Replies of a fake Anthropic Messages API, in the exact wire format of the real one.

The instrumentation is tested with the official ``anthropic`` client talking to
:class:`~fakes._server.FakeServer` over real HTTP, so what these builders emit
must be what ``api.anthropic.com`` emits: the same JSON bodies, the same SSE
event names and payloads, the same headers the SDK reads (``request-id``,
``retry-after``, ``x-should-retry``). The shapes were checked against the
installed SDK's types (``anthropic.types.Message``, ``RawMessageStreamEvent``,
``shared.ErrorResponse``), its stream accumulator
(``anthropic.lib.streaming._messages.accumulate_event``) and its error mapping
(``anthropic._error_classes.make_status_error``); ``tests/test_fake_anthropic.py``
proves each builder with the uninstrumented client in strict validation mode.

The module does not import ``anthropic``: the fake must not lean on the code it
stands in front of, and it stays importable where the SDK is not installed.

Wire facts worth knowing (all mirrored here):

* The SDK posts to ``{base_url}/v1/messages``: give it the server root, not ``…/v1``.
* ``usage.input_tokens`` excludes cached tokens; total input is
  ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``.
* In a stream, ``message_start`` carries the input/cache usage with a small
  ``output_tokens``; ``message_delta`` carries the *cumulative* counts, which
  replace (never add to) the earlier ones. The first-party API repeats the
  input and cache counts on ``message_delta``; some gateways send only
  ``output_tokens`` there (``input_usage_on_delta=False``).
* A ``ping`` may arrive anywhere; the SDK drops it before user code sees it.
* An ``error`` event can arrive mid-stream on an HTTP 200 response; the stream
  then just ends (no ``message_delta``/``message_stop``).
"""

from __future__ import annotations

import json
import math
import string
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from fakes._server import Received, Reply

__all__ = [
    "DEFAULT_MODEL",
    "ERROR_TYPES",
    "SSEEvent",
    "ToolUse",
    "default",
    "error",
    "error_body",
    "message",
    "message_body",
    "message_stream",
    "message_stream_events",
    "new_id",
    "usage_body",
]

DEFAULT_MODEL = "claude-sonnet-4-5"

#: One SSE event as :class:`Reply` takes it: (event name, JSON payload).
SSEEvent = tuple[str | None, Any]

#: A tool call: (id ``toolu_…``, tool name, input). For :func:`message` the input is
#: a dict; for :func:`message_stream` it is the list of ``partial_json`` fragments
#: (or a dict, which is serialised and cut into fragments).
ToolUse = tuple[str, str, Any]

#: The ``error.type`` the API uses for each HTTP status (the SDK picks the exception
#: class from the *status*, and exposes this string as ``err.type``).
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_DEFAULT_ERROR_MESSAGES: dict[str, str] = {
    "invalid_request_error": "messages: field required",
    "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "Not found",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}

_BASE62 = string.digits + string.ascii_letters


def new_id(prefix: str) -> str:
    """A fresh id shaped like Anthropic's: ``msg_01…``, ``toolu_01…``, ``req_011C…``.

    Random (not a counter) so that ids stay unique across tests and servers, as
    real ones are; a test that needs a fixed id passes it explicitly.
    """
    n = uuid.uuid4().int
    chars = []
    for _ in range(22):
        n, r = divmod(n, 62)
        chars.append(_BASE62[r])
    lead = "011C" if prefix == "req" else "01"
    return f"{prefix}_{lead}{''.join(chars)}"


def _signature(thinking: str) -> str:
    """An opaque, base64-looking thinking signature (the real one is a signed blob)."""
    return "Eq" + uuid.uuid5(uuid.NAMESPACE_OID, thinking).hex + "AbCdEf=="


def _estimate_tokens(*parts: str) -> int:
    """About four characters a token, at least one: output_tokens is never 0 in reality."""
    return max(1, math.ceil(sum(len(p) for p in parts) / 4))


def usage_body(usage: Mapping[str, int] | None = None, *, output_tokens: int = 1) -> dict[str, Any]:
    """The ``usage`` object of a Message, with every field the first-party API sends.

    ``usage`` overrides any of ``input_tokens``, ``output_tokens``,
    ``cache_read_input_tokens``, ``cache_creation_input_tokens``; ``output_tokens``
    is the default for the field of the same name (an estimate from the content).
    """
    u = dict(usage or {})
    unknown = set(u) - {
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    }
    if unknown:
        raise ValueError(f"unknown usage fields: {sorted(unknown)}")
    creation = u.get("cache_creation_input_tokens", 0)
    return {
        "input_tokens": u.get("input_tokens", 25),
        "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": u.get("cache_read_input_tokens", 0),
        # The per-TTL breakdown of the cache write; the 5-minute TTL is the default one.
        "cache_creation": {"ephemeral_5m_input_tokens": creation, "ephemeral_1h_input_tokens": 0},
        "output_tokens": u.get("output_tokens", output_tokens),
        "service_tier": "standard",
    }


def _thinking_parts(thinking: str | tuple[str, str] | None) -> tuple[str, str] | None:
    if thinking is None:
        return None
    if isinstance(thinking, tuple):
        return thinking
    return thinking, _signature(thinking)


def message_body(
    text: str | None = None,
    *,
    thinking: str | tuple[str, str] | None = None,
    tool_uses: Sequence[ToolUse] = (),
    model: str = DEFAULT_MODEL,
    stop_reason: str | None = None,
    stop_sequence: str | None = None,
    usage: Mapping[str, int] | None = None,
    id: str | None = None,
) -> dict[str, Any]:
    """The JSON of a complete ``Message`` (what a non-streaming ``messages.create`` returns).

    Blocks come in the order the model produces them: thinking, text, tool uses.
    ``stop_reason`` defaults to ``"tool_use"`` when there are tool uses (``"stop_sequence"``
    when ``stop_sequence`` is given), else ``"end_turn"``.
    """
    content: list[dict[str, Any]] = []
    generated: list[str] = []
    parts = _thinking_parts(thinking)
    if parts is not None:
        content.append({"type": "thinking", "thinking": parts[0], "signature": parts[1]})
        generated.append(parts[0])
    if text is not None:
        content.append({"type": "text", "text": text})
        generated.append(text)
    for tool_id, name, tool_input in tool_uses:
        content.append({"type": "tool_use", "id": tool_id, "name": name, "input": dict(tool_input)})
        generated.append(json.dumps(tool_input))
    return {
        "id": id or new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason or _default_stop_reason(tool_uses, stop_sequence),
        "stop_sequence": stop_sequence,
        "usage": usage_body(usage, output_tokens=_estimate_tokens(*generated)),
    }


def _default_stop_reason(tool_uses: Sequence[ToolUse], stop_sequence: str | None) -> str:
    if tool_uses:
        return "tool_use"
    return "stop_sequence" if stop_sequence is not None else "end_turn"


def _headers(request_id: str | None, headers: Mapping[str, str] | None) -> dict[str, str]:
    return {"request-id": request_id or new_id("req"), **(headers or {})}


def message(
    text: str | None = None,
    *,
    thinking: str | tuple[str, str] | None = None,
    tool_uses: Sequence[ToolUse] = (),
    model: str = DEFAULT_MODEL,
    stop_reason: str | None = None,
    stop_sequence: str | None = None,
    usage: Mapping[str, int] | None = None,
    id: str | None = None,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    delay: float = 0.0,
) -> Reply:
    """A 200 reply with one complete Message and a ``request-id`` header.

    ``thinking`` is the thinking text, or ``(text, signature)``; ``tool_uses`` are
    ``(id, name, input_dict)``. See :func:`message_body` for the defaults.
    """
    body = message_body(
        text,
        thinking=thinking,
        tool_uses=tool_uses,
        model=model,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=usage,
        id=id,
    )
    return Reply(json=body, headers=_headers(request_id, headers), delay=delay)


def _fragments(tool_input: Any) -> list[str]:
    """``input_json_delta`` fragments: given ones as they are, a dict cut into small pieces."""
    if isinstance(tool_input, Mapping):
        text = json.dumps(tool_input)
        return [text[i : i + 8] for i in range(0, len(text), 8)] or [""]
    return [str(f) for f in tool_input]


def message_stream_events(
    text_chunks: Sequence[str] = (),
    *,
    thinking_chunks: Sequence[str] | None = None,
    signature: str | None = None,
    tool_uses: Sequence[ToolUse] = (),
    model: str = DEFAULT_MODEL,
    stop_reason: str | None = None,
    stop_sequence: str | None = None,
    usage: Mapping[str, int] | None = None,
    id: str | None = None,
    ping: bool = True,
    input_usage_on_delta: bool = True,
    error_event: str | Mapping[str, Any] | None = None,
    error_after: int | None = None,
) -> list[SSEEvent]:
    """The SSE events of one streamed Message, in the order the API sends them.

    ``message_start`` (empty content, ``stop_reason`` null, input/cache usage and
    ``output_tokens`` 1) → per block ``content_block_start`` / ``content_block_delta``… /
    ``content_block_stop`` (thinking: ``thinking_delta``s then one ``signature_delta``;
    text: ``text_delta``s; tool use: ``input_json_delta``s on a block that starts with
    ``input: {}``) → ``message_delta`` (stop reason, cumulative usage) → ``message_stop``.
    A ``ping`` follows the first ``content_block_start``, as on the real wire.

    ``error_event`` (an error type such as ``"overloaded_error"``, or a whole error
    payload) replaces the tail of the stream: it is sent after ``error_after``
    events (default: after the last content delta), and nothing follows it.
    """
    thinking_text = "".join(thinking_chunks or ())
    fragments = [(tool_id, name, _fragments(tool_input)) for tool_id, name, tool_input in tool_uses]
    generated = [thinking_text, *text_chunks, *("".join(f) for _, _, f in fragments)]
    full = usage_body(usage, output_tokens=_estimate_tokens(*generated))

    start: dict[str, Any] = {
        "id": id or new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**full, "output_tokens": min(1, full["output_tokens"])},
    }
    events: list[SSEEvent] = [("message_start", {"type": "message_start", "message": start})]
    index = 0

    def block(content_block: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        nonlocal index
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": content_block},
            )
        )
        if ping and index == 0:
            events.append(("ping", {"type": "ping"}))
        for delta in deltas:
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1

    if thinking_chunks is not None:
        sig = signature if signature is not None else _signature(thinking_text)
        block(
            {"type": "thinking", "thinking": "", "signature": ""},
            [{"type": "thinking_delta", "thinking": c} for c in thinking_chunks]
            + [{"type": "signature_delta", "signature": sig}],
        )
    if text_chunks:
        block(
            {"type": "text", "text": ""}, [{"type": "text_delta", "text": c} for c in text_chunks]
        )
    for tool_id, name, frags in fragments:
        block(
            {"type": "tool_use", "id": tool_id, "name": name, "input": {}},
            [{"type": "input_json_delta", "partial_json": f} for f in frags],
        )

    delta_usage: dict[str, Any] = {"output_tokens": full["output_tokens"]}
    if input_usage_on_delta:
        delta_usage = {
            "input_tokens": full["input_tokens"],
            "cache_creation_input_tokens": full["cache_creation_input_tokens"],
            "cache_read_input_tokens": full["cache_read_input_tokens"],
            **delta_usage,
        }
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": stop_reason or _default_stop_reason(tool_uses, stop_sequence),
                    "stop_sequence": stop_sequence,
                },
                "usage": delta_usage,
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))

    if error_event is not None:
        if error_after is None:
            deltas = [i for i, (name, _) in enumerate(events) if name == "content_block_delta"]
            error_after = deltas[-1] + 1 if deltas else 1
        payload = error_body(error_event) if isinstance(error_event, str) else dict(error_event)
        events = [*events[:error_after], ("error", payload)]
    return events


def message_stream(
    text_chunks: Sequence[str] = (),
    *,
    thinking_chunks: Sequence[str] | None = None,
    signature: str | None = None,
    tool_uses: Sequence[ToolUse] = (),
    model: str = DEFAULT_MODEL,
    stop_reason: str | None = None,
    stop_sequence: str | None = None,
    usage: Mapping[str, int] | None = None,
    id: str | None = None,
    ping: bool = True,
    input_usage_on_delta: bool = True,
    error_event: str | Mapping[str, Any] | None = None,
    error_after: int | None = None,
    cut_after: int | None = None,
    chunk_delay: float = 0.0,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    delay: float = 0.0,
) -> Reply:
    """A 200 ``text/event-stream`` reply: one streamed Message (see :func:`message_stream_events`).

    ``usage["output_tokens"]`` is the final, cumulative count (sent on ``message_delta``).
    ``cut_after=n`` drops the connection after ``n`` SSE events (pings count), which
    the SDK surfaces as an ``httpx2`` transport error; ``chunk_delay`` paces the events.
    """
    events = message_stream_events(
        text_chunks,
        thinking_chunks=thinking_chunks,
        signature=signature,
        tool_uses=tool_uses,
        model=model,
        stop_reason=stop_reason,
        stop_sequence=stop_sequence,
        usage=usage,
        id=id,
        ping=ping,
        input_usage_on_delta=input_usage_on_delta,
        error_event=error_event,
        error_after=error_after,
    )
    return Reply(
        sse=events,
        headers=_headers(request_id, headers),
        cut_after=cut_after,
        chunk_delay=chunk_delay,
        delay=delay,
    )


def error_body(
    type: str, message: str | None = None, *, request_id: str | None = None
) -> dict[str, Any]:
    """Anthropic's error envelope: ``{"type": "error", "error": {"type", "message"}, "request_id"}``.

    The same shape is the body of an error status and the data of a mid-stream
    ``error`` event. ``request_id`` is left out when not given.
    """
    body: dict[str, Any] = {
        "type": "error",
        "error": {"type": type, "message": message or _DEFAULT_ERROR_MESSAGES.get(type, type)},
    }
    if request_id is not None:
        body["request_id"] = request_id
    return body


def error(
    status: int,
    message: str | None = None,
    *,
    type: str | None = None,
    request_id: str | None = None,
    retry_after: float | None = None,
    should_retry: bool | None = None,
    headers: Mapping[str, str] | None = None,
    delay: float = 0.0,
) -> Reply:
    """An HTTP error reply with Anthropic's error body and ``request-id`` header.

    ``type`` defaults to the API's type for ``status`` (see :data:`ERROR_TYPES`).
    ``retry_after`` (seconds) sets ``retry-after``, which the SDK's retry loop obeys;
    ``should_retry`` sets ``x-should-retry``, which overrides its status-based choice.
    The request id is both in the header (``err.request_id`` reads it) and the body.
    """
    request_id = request_id or new_id("req")
    err_type = type or ERROR_TYPES.get(
        status, "api_error" if status >= 500 else "invalid_request_error"
    )
    extra: dict[str, str] = {}
    if retry_after is not None:
        extra["retry-after"] = (
            str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
        )
    if should_retry is not None:
        extra["x-should-retry"] = "true" if should_retry else "false"
    return Reply(
        status=status,
        json=error_body(err_type, message, request_id=request_id),
        headers=_headers(request_id, {**extra, **(headers or {})}),
        delay=delay,
    )


def default(req: Received) -> Reply:
    """A ``FakeServer(default=...)`` factory: a short answer to any Messages request.

    ``POST /v1/messages`` gets a one-sentence Message (streamed when the request
    asked for ``stream: true``) from the model the request named;
    ``/v1/messages/count_tokens`` gets an input-token count; anything else a 404.
    """
    body = req.body if isinstance(req.body, dict) else {}
    model = str(body.get("model") or DEFAULT_MODEL)
    if req.method == "POST" and req.path == "/v1/messages":
        if body.get("stream"):
            return message_stream(["Hello", " from the", " fake."], model=model)
        return message("Hello from the fake.", model=model)
    if req.method == "POST" and req.path == "/v1/messages/count_tokens":
        return Reply(
            json={"input_tokens": _estimate_tokens(json.dumps(body.get("messages", [])))},
            headers=_headers(None, None),
        )
    return error(404, f"Not found: {req.method} {req.path}", type="not_found_error")
