"""Replies of a fake OpenAI API, byte-for-byte in OpenAI's wire format.

Every builder returns a :class:`~fakes._server.Reply` for :class:`~fakes._server.FakeServer`.
The official ``openai`` client must parse each one exactly as it parses the real
service's answers, because the instrumentation under test reads what the SDK
parses (and, for streams, what goes over the wire). So the bodies carry the
fields the real API sends, including the ones the SDK merely tolerates
(``obfuscation``, ``service_tier``, ``system_fingerprint``, ``logprobs: []``);
``tests/test_fake_openai.py`` validates them strictly against the SDK's own
pydantic types and drives them through the SDK's stream helpers.

Point the client at the server with ``base_url=server.url + "/v1"`` (see
:func:`base_url`): the SDK appends ``/chat/completions`` or ``/responses`` to it.

Wire facts worth knowing (checked against openai 3.54's sources):

* Chat Completions streams are bare ``data:`` lines (no ``event:`` names) ending
  with ``data: [DONE]``. Tool-call arguments arrive as fragments keyed by
  ``index``; only the first fragment of a call carries ``id``, ``type`` and
  ``function.name``. Usage comes only when the caller asked for
  ``stream_options={"include_usage": True}``: then every chunk has
  ``"usage": null`` and one extra chunk with ``"choices": []`` carries it.
* A Chat stream chunk whose JSON has a truthy top-level ``"error"`` makes the
  SDK raise ``openai.APIError`` in the middle of iteration (``_streaming.py``).
* Responses streams are typed events: ``event: <type>`` plus a JSON body with
  the same ``type`` and a ``sequence_number`` counting from 0. The SDK's
  ``responses.stream()`` helper insists on ``response.created`` first, on the
  same response id in every lifecycle event, and on each ``output_item.done``
  keeping the identity (type, id, call_id) of its ``output_item.added``.
  ``response.failed`` raises nothing; ``get_final_response()`` then raises
  ``RuntimeError("Didn't receive a `response.completed` event.")``.
* Error bodies are ``{"error": {"message", "type", "param", "code"}}``; the SDK
  maps the status to an exception class, keeps ``body["error"]`` as ``.body``
  and reads ``.request_id`` from the ``x-request-id`` header.
"""

from __future__ import annotations

import re
import secrets
import string
import time
from collections.abc import Sequence
from typing import Any, Literal, TypedDict

from ._server import FakeServer, Received, Reply

__all__ = [
    "ChatUsage",
    "ResponsesUsage",
    "base_url",
    "chat_completion",
    "chat_stream",
    "default",
    "error",
    "models",
    "new_request_id",
    "response",
    "response_failed_stream",
    "response_stream",
]

#: Arguments of a tool call: the whole JSON string (split into fragments for
#: streams) or the exact fragments to stream.
Arguments = str | Sequence[str]
#: A Chat Completions tool call: (id "call_…", function name, arguments).
ToolCall = tuple[str, str, Arguments]
#: A Responses function call: (call_id "call_…", function name, arguments).
FunctionCall = tuple[str, str, Arguments]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "function_call"]

SYSTEM_FINGERPRINT = "fp_f4ke0000"


class ChatUsage(TypedDict, total=False):
    """Chat Completions token counts. Totals *include* their details:
    ``prompt_tokens`` counts ``cached_tokens`` and ``completion_tokens`` counts
    ``reasoning_tokens``, as OpenAI reports them."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    #: Only sent when given (newer SDKs know ``prompt_tokens_details.cache_write_tokens``).
    cache_write_tokens: int


class ResponsesUsage(TypedDict, total=False):
    """Responses API token counts. ``input_tokens`` counts ``cached_tokens``;
    ``output_tokens`` counts ``reasoning_tokens``."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int


# -- identifiers and headers -------------------------------------------------------------
_ALNUM = string.ascii_letters + string.digits


def _alnum(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def new_request_id() -> str:
    """A fresh ``x-request-id`` value shaped like OpenAI's (``req_`` + 32 hex)."""
    return "req_" + secrets.token_hex(16)


def _resp_suffix() -> str:
    # Responses ids share one long hex tail per response in the real API; any
    # unique hex is fine for the SDK, which only compares ids for identity.
    return secrets.token_hex(25)


def _headers(request_id: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The headers every OpenAI answer carries; ``x-request-id`` is the one the SDK reads
    (``_request_id`` on results, ``.request_id`` on errors)."""
    headers = {
        "x-request-id": request_id or new_request_id(),
        "openai-version": "2020-10-01",
        "openai-organization": "fake-org",
        "openai-processing-ms": "42",
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": "9999",
        "x-ratelimit-reset-requests": "6ms",
        "x-ratelimit-limit-tokens": "30000000",
        "x-ratelimit-remaining-tokens": "29999000",
        "x-ratelimit-reset-tokens": "2ms",
    }
    headers.update(extra or {})
    return headers


def base_url(server: FakeServer) -> str:
    """The ``base_url`` to give ``openai.OpenAI``: the SDK appends paths such as
    ``/chat/completions`` to it, and the real service lives under ``/v1``."""
    return server.url + "/v1"


# -- splitting text the way a model streams it --------------------------------------------
def _words(text: str) -> list[str]:
    """Token-like deltas: each word with its leading whitespace (" world")."""
    parts = re.findall(r"\s*\S+", text)
    tail = text[len("".join(parts)) :]
    if tail:
        parts.append(tail)
    return parts or [text]


def _fragments(arguments: Arguments, pieces: int = 3) -> list[str]:
    """Argument fragments: given ones verbatim, else the JSON cut into ``pieces``
    parts at arbitrary characters (mid-key, mid-string), as the real API does."""
    if not isinstance(arguments, str):
        return list(arguments)
    if len(arguments) < pieces:
        return [arguments]
    step = -(-len(arguments) // pieces)
    return [arguments[i : i + step] for i in range(0, len(arguments), step)]


def _joined(arguments: Arguments) -> str:
    return arguments if isinstance(arguments, str) else "".join(arguments)


# -- usage -----------------------------------------------------------------------------
def _chat_usage(usage: ChatUsage | None) -> dict[str, Any]:
    u: ChatUsage = usage or {}
    prompt = u.get("prompt_tokens", 12)
    completion = u.get("completion_tokens", 9)
    cached = u.get("cached_tokens", 0)
    reasoning = u.get("reasoning_tokens", 0)
    # The details are parts of the totals; a test that breaks this would be
    # testing a provider that does not exist.
    assert cached <= prompt and reasoning <= completion, "details are included in totals"
    prompt_details: dict[str, int] = {"cached_tokens": cached, "audio_tokens": 0}
    if "cache_write_tokens" in u:
        prompt_details["cache_write_tokens"] = u["cache_write_tokens"]
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _responses_usage(usage: ResponsesUsage | None) -> dict[str, Any]:
    u: ResponsesUsage = usage or {}
    inp = u.get("input_tokens", 14)
    out = u.get("output_tokens", 11)
    cached = u.get("cached_tokens", 0)
    reasoning = u.get("reasoning_tokens", 0)
    assert cached <= inp and reasoning <= out, "details are included in totals"
    return {
        "input_tokens": inp,
        # openai 3.54 types both fields as required ints.
        "input_tokens_details": {
            "cached_tokens": cached,
            "cache_write_tokens": u.get("cache_write_tokens", 0),
        },
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": inp + out,
    }


# -- Chat Completions ----------------------------------------------------------------------
def chat_completion(
    text: str | None = None,
    *,
    tool_calls: Sequence[ToolCall] = (),
    refusal: str | None = None,
    model: str = "gpt-4o",
    finish_reason: FinishReason | None = None,
    usage: ChatUsage | None = None,
    id: str | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Reply:
    """A non-streaming ``chat.completion``.

    ``tool_calls`` are ``(id, name, arguments_json)``; several make a parallel
    call. ``finish_reason`` defaults to ``"tool_calls"`` when there are tool
    calls, else ``"stop"``. The message has ``"tool_calls"`` only when there are
    some, as the real API omits the key otherwise.
    """
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text,
        "refusal": refusal,
        "annotations": [],
    }
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": _joined(args)},
            }
            for call_id, name, args in tool_calls
        ]
    body = {
        "id": id or "chatcmpl-" + _alnum(29),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason or ("tool_calls" if tool_calls else "stop"),
            }
        ],
        "usage": _chat_usage(usage),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    return Reply(json=body, headers=_headers(request_id, headers), delay=delay)


def chat_stream(
    text_chunks: Sequence[str] = (),
    *,
    tool_calls: Sequence[ToolCall] = (),
    interleave: bool = False,
    include_usage: bool = False,
    usage: ChatUsage | None = None,
    finish_reason: FinishReason | None = None,
    model: str = "gpt-4o",
    id: str | None = None,
    request_id: str | None = None,
    error: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    cut_after: int | None = None,
    chunk_delay: float = 0.0,
    delay: float = 0.0,
) -> Reply:
    """A streamed chat completion: ``chat.completion.chunk`` events, then ``[DONE]``.

    * ``text_chunks`` are the content deltas, in order.
    * ``tool_calls`` follow the text. Each is announced by a fragment carrying
      ``index``, ``id``, ``type`` and ``function.name`` with ``arguments: ""``
      (merged into the role chunk when the answer opens with a call, content
      null); its arguments then arrive in several fragments keyed by ``index``
      only (a str is cut in three; a sequence is sent fragment by fragment).
      Calls stream one after another, as OpenAI sends them. ``interleave=True``
      announces all calls, then round-robins their fragments, as some
      OpenAI-compatible servers do: the SDK still reassembles the final message
      by ``index``, but its helper's ``tool_calls.function.arguments.done``
      events fire early (on each index change) with partial arguments.
    * ``include_usage`` mirrors the request's ``stream_options.include_usage``:
      only then does a final chunk with ``"choices": []`` carry ``usage`` (and
      every earlier chunk ``"usage": null``). Never set it for a request that
      did not ask: the real API would not send usage.
    * ``error`` (the inner error object) replaces the finish chunk with a
      ``{"error": {...}}`` event and ends the stream without ``[DONE]``: the SDK
      raises ``openai.APIError`` (not an ``APIStatusError``) mid-iteration.
    * ``cut_after`` drops the connection after that many SSE events (see
      :class:`Reply`); the client sees ``openai.APIConnectionError``. Event 0 is
      the role chunk and events 1..len(text_chunks) the text deltas, so
      ``cut_after=k`` with k <= len(text_chunks) delivers the first k-1 deltas.
    """
    cid = id or "chatcmpl-" + _alnum(29)
    created = int(time.time())
    events: list[tuple[str | None, Any]] = []

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            body["usage"] = None
        body["obfuscation"] = _alnum(4)
        return body

    def announce(index: int) -> dict[str, Any]:
        call_id, name, _ = tool_calls[index]
        return {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }

    def fragment(index: int, piece: str) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}

    # The first chunk names the role; when the answer opens with a tool call the
    # real API puts that call's announcement in the same chunk (content null).
    first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
    announced: set[int] = set()
    if not text_chunks and tool_calls and not interleave:
        first = {"role": "assistant", "content": None, "tool_calls": [announce(0)], "refusal": None}
        announced.add(0)
    events.append((None, chunk(first)))
    events.extend((None, chunk({"content": piece})) for piece in text_chunks)

    pieces = [_fragments(args) for _, _, args in tool_calls]
    if interleave:
        events.extend((None, chunk({"tool_calls": [announce(i)]})) for i in range(len(tool_calls)))
        for step in range(max((len(p) for p in pieces), default=0)):
            events.extend(
                (None, chunk(fragment(i, p[step]))) for i, p in enumerate(pieces) if step < len(p)
            )
    else:
        for i, frags in enumerate(pieces):
            if i not in announced:
                events.append((None, chunk({"tool_calls": [announce(i)]})))
            events.extend((None, chunk(fragment(i, piece))) for piece in frags)

    if error is not None:
        events.append((None, {"error": error}))
        return Reply(
            sse=events,
            headers=_headers(request_id, headers),
            cut_after=cut_after,
            chunk_delay=chunk_delay,
            delay=delay,
        )

    reason = finish_reason or ("tool_calls" if tool_calls else "stop")
    events.append((None, chunk({}, reason)))
    if include_usage:
        final = chunk({})
        final["choices"] = []
        final["usage"] = _chat_usage(usage)
        events.append((None, final))
    events.append((None, "[DONE]"))
    return Reply(
        sse=events,
        headers=_headers(request_id, headers),
        cut_after=cut_after,
        chunk_delay=chunk_delay,
        delay=delay,
    )


# -- Responses API ---------------------------------------------------------------------------
def _response_object(
    *,
    rid: str,
    created_at: int,
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    error: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
) -> dict[str, Any]:
    """The ``response`` object, with the request echo fields the SDK types require
    (``parallel_tool_calls``, ``tool_choice``, ``tools``)."""
    return {
        "id": rid,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": None,
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def _reasoning_item(item_id: str, parts: Sequence[str]) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": t} for t in parts],
    }


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message_item(item_id: str, text: str | None, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "content": [] if text is None else [_output_text(text)],
        "role": "assistant",
    }


def _function_call_item(
    item_id: str, call: FunctionCall, status: str, arguments: str
) -> dict[str, Any]:
    call_id, name, _ = call
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def _summary_parts(reasoning_summary: str | Sequence[str] | None) -> list[str]:
    if reasoning_summary is None:
        return []
    return [reasoning_summary] if isinstance(reasoning_summary, str) else list(reasoning_summary)


def response(
    text: str | None = None,
    *,
    function_calls: Sequence[FunctionCall] = (),
    reasoning_summary: str | Sequence[str] | None = None,
    usage: ResponsesUsage | None = None,
    status: Literal["completed", "incomplete", "failed"] = "completed",
    error_code: str = "server_error",
    error_message: str = "The model produced an error while processing your request.",
    incomplete_reason: str = "max_output_tokens",
    model: str = "gpt-4o",
    id: str | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Reply:
    """A non-streaming Responses API ``response``.

    Output items, in the order the real API emits them: a ``reasoning`` item
    (``rs_…``) whose ``summary`` holds one ``summary_text`` per part of
    ``reasoning_summary``; a ``message`` item (``msg_…``) with one ``output_text``
    part; one ``function_call`` item per ``(call_id, name, arguments)`` with item
    id ``fc_…`` — the id a tool result must quote is ``call_id``, not ``fc_…``.

    ``status="incomplete"`` sets ``incomplete_details.reason``; ``"failed"``
    sets ``error`` and ``usage: null``. Neither raises in the SDK.
    """
    suffix = _resp_suffix()
    output: list[dict[str, Any]] = []
    parts = _summary_parts(reasoning_summary)
    if reasoning_summary is not None:
        output.append(_reasoning_item("rs_" + suffix + "01", parts))
    if text is not None:
        output.append(
            _message_item(
                "msg_" + suffix + "02",
                text,
                "incomplete" if status == "incomplete" else "completed",
            )
        )
    for i, call in enumerate(function_calls):
        output.append(_function_call_item(f"fc_{suffix}1{i}", call, "completed", _joined(call[2])))
    body = _response_object(
        rid=id or "resp_" + suffix,
        created_at=int(time.time()),
        model=model,
        status=status,
        output=output,
        usage=None if status == "failed" else _responses_usage(usage),
        error={"code": error_code, "message": error_message} if status == "failed" else None,
        incomplete_reason=incomplete_reason if status == "incomplete" else None,
    )
    return Reply(json=body, headers=_headers(request_id, headers), delay=delay)


class _EventLog:
    """Numbers Responses stream events: ``sequence_number`` counts from 0 over the
    whole stream, and the SSE ``event:`` name repeats the body's ``type``."""

    def __init__(self) -> None:
        self.events: list[tuple[str | None, Any]] = []

    def emit(self, type_: str, **fields: Any) -> None:
        self.events.append((type_, {"type": type_, "sequence_number": len(self.events), **fields}))


def _stream_items(
    log: _EventLog,
    *,
    suffix: str,
    text_chunks: Sequence[str] | None,
    function_calls: Sequence[FunctionCall],
    summary_parts: Sequence[str],
    with_reasoning: bool,
    message_status: str,
    finish_message: bool,
) -> list[dict[str, Any]]:
    """Emit the item events; return the finished output items (for the final response)."""
    output: list[dict[str, Any]] = []
    index = 0
    if with_reasoning:
        item_id = "rs_" + suffix + "01"
        log.emit(
            "response.output_item.added", output_index=index, item=_reasoning_item(item_id, [])
        )
        for s, part in enumerate(summary_parts):
            common = {"item_id": item_id, "output_index": index, "summary_index": s}
            log.emit(
                "response.reasoning_summary_part.added",
                **common,
                part={"type": "summary_text", "text": ""},
            )
            for delta in _words(part):
                log.emit(
                    "response.reasoning_summary_text.delta",
                    **common,
                    delta=delta,
                    obfuscation=_alnum(6),
                )
            log.emit("response.reasoning_summary_text.done", **common, text=part)
            log.emit(
                "response.reasoning_summary_part.done",
                **common,
                part={"type": "summary_text", "text": part},
            )
        done = _reasoning_item(item_id, summary_parts)
        log.emit("response.output_item.done", output_index=index, item=done)
        output.append(done)
        index += 1

    if text_chunks is not None:
        item_id = "msg_" + suffix + "02"
        text = "".join(text_chunks)
        common = {"item_id": item_id, "output_index": index, "content_index": 0}
        log.emit(
            "response.output_item.added",
            output_index=index,
            item=_message_item(item_id, None, "in_progress"),
        )
        log.emit("response.content_part.added", **common, part=_output_text(""))
        for delta in text_chunks:
            log.emit(
                "response.output_text.delta",
                **common,
                delta=delta,
                logprobs=[],
                obfuscation=_alnum(6),
            )
        if not finish_message:
            return output
        log.emit("response.output_text.done", **common, text=text, logprobs=[])
        log.emit("response.content_part.done", **common, part=_output_text(text))
        done = _message_item(item_id, text, message_status)
        log.emit("response.output_item.done", output_index=index, item=done)
        output.append(done)
        index += 1

    for i, call in enumerate(function_calls):
        item_id = f"fc_{suffix}1{i}"
        arguments = _joined(call[2])
        log.emit(
            "response.output_item.added",
            output_index=index,
            item=_function_call_item(item_id, call, "in_progress", ""),
        )
        for delta in _fragments(call[2]):
            log.emit(
                "response.function_call_arguments.delta",
                item_id=item_id,
                output_index=index,
                delta=delta,
                obfuscation=_alnum(6),
            )
        log.emit(
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=index,
            name=call[1],
            arguments=arguments,
        )
        done = _function_call_item(item_id, call, "completed", arguments)
        log.emit("response.output_item.done", output_index=index, item=done)
        output.append(done)
        index += 1
    return output


def response_stream(
    text_chunks: Sequence[str] | None = (),
    *,
    function_calls: Sequence[FunctionCall] = (),
    reasoning_summary: str | Sequence[str] | None = None,
    usage: ResponsesUsage | None = None,
    status: Literal["completed", "incomplete"] = "completed",
    incomplete_reason: str = "max_output_tokens",
    model: str = "gpt-4o",
    id: str | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    cut_after: int | None = None,
    chunk_delay: float = 0.0,
    delay: float = 0.0,
) -> Reply:
    """A streamed Responses API answer: typed events, as the SDK expects them.

    ``response.created`` and ``response.in_progress`` (empty output, no usage);
    then, per output item, ``response.output_item.added`` … ``.done``:

    * reasoning (when ``reasoning_summary`` is given; a str is one part, a
      sequence several): ``reasoning_summary_part.added``,
      ``reasoning_summary_text.delta`` (word by word), ``reasoning_summary_text.done``,
      ``reasoning_summary_part.done``;
    * message (unless ``text_chunks`` is None): ``content_part.added``,
      one ``output_text.delta`` per chunk, ``output_text.done``, ``content_part.done``;
    * function calls: ``function_call_arguments.delta`` (several fragments),
      ``function_call_arguments.done``;

    and finally ``response.completed`` with the full output and ``usage``
    (``status="incomplete"`` ends with ``response.incomplete`` instead).
    There is no ``[DONE]`` in a Responses stream.
    """
    suffix = _resp_suffix()
    rid = id or "resp_" + suffix
    created_at = int(time.time())
    log = _EventLog()
    start = _response_object(
        rid=rid, created_at=created_at, model=model, status="in_progress", output=[], usage=None
    )
    log.emit("response.created", response=start)
    log.emit("response.in_progress", response=start)
    output = _stream_items(
        log,
        suffix=suffix,
        text_chunks=text_chunks,
        function_calls=function_calls,
        summary_parts=_summary_parts(reasoning_summary),
        with_reasoning=reasoning_summary is not None,
        message_status="incomplete" if status == "incomplete" else "completed",
        finish_message=True,
    )
    final = _response_object(
        rid=rid,
        created_at=created_at,
        model=model,
        status=status,
        output=output,
        usage=_responses_usage(usage),
        incomplete_reason=incomplete_reason if status == "incomplete" else None,
    )
    log.emit(
        "response.completed" if status == "completed" else "response.incomplete", response=final
    )
    return Reply(
        sse=log.events,
        headers=_headers(request_id, headers),
        cut_after=cut_after,
        chunk_delay=chunk_delay,
        delay=delay,
    )


def response_failed_stream(
    text_chunks: Sequence[str] = (),
    *,
    code: str = "server_error",
    message: str = "The model produced an error while processing your request.",
    reasoning_summary: str | Sequence[str] | None = None,
    model: str = "gpt-4o",
    id: str | None = None,
    request_id: str | None = None,
    headers: dict[str, str] | None = None,
    chunk_delay: float = 0.0,
) -> Reply:
    """A Responses stream that fails server-side: HTTP 200, the start events, a
    partial message (its ``added`` and ``delta`` events, never its ``done``),
    then ``response.failed`` with ``status: "failed"``, ``error: {code, message}``
    and ``usage: null``.

    The SDK raises nothing while iterating; instrumentation must read the failure
    from the event itself. ``responses.stream(...).get_final_response()`` raises
    ``RuntimeError`` because no ``response.completed`` came.
    """
    suffix = _resp_suffix()
    rid = id or "resp_" + suffix
    created_at = int(time.time())
    log = _EventLog()
    start = _response_object(
        rid=rid, created_at=created_at, model=model, status="in_progress", output=[], usage=None
    )
    log.emit("response.created", response=start)
    log.emit("response.in_progress", response=start)
    output = _stream_items(
        log,
        suffix=suffix,
        text_chunks=text_chunks if text_chunks else None,
        function_calls=(),
        summary_parts=_summary_parts(reasoning_summary),
        with_reasoning=reasoning_summary is not None,
        message_status="incomplete",
        finish_message=False,
    )
    failed = _response_object(
        rid=rid,
        created_at=created_at,
        model=model,
        status="failed",
        output=output,
        usage=None,
        error={"code": code, "message": message},
    )
    log.emit("response.failed", response=failed)
    return Reply(sse=log.events, headers=_headers(request_id, headers), chunk_delay=chunk_delay)


# -- errors ------------------------------------------------------------------------------------
#: status -> (message, type, param, code), after what the real API answers.
_ERRORS: dict[int, tuple[str, str, str | None, str | None]] = {
    400: (
        "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        "invalid_request_error",
        "messages",
        "empty_array",
    ),
    # The real 401 echoes the key *masked*: a secret-scrubbing test should expect
    # a fragment of the key in the error message, never the whole key.
    401: (
        "Incorrect API key provided: sk-****test. You can find your API key at https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        None,
        "invalid_api_key",
    ),
    403: (
        "Project `proj_fake` does not have access to model `gpt-4o`",
        "invalid_request_error",
        None,
        "model_not_found",
    ),
    404: (
        "The model `gpt-4o` does not exist or you do not have access to it.",
        "invalid_request_error",
        None,
        "model_not_found",
    ),
    429: (
        "Rate limit reached for gpt-4o in organization org-fake on tokens per min (TPM): "
        "Limit 30000, Used 29500, Requested 900. Please try again in 800ms. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
        "tokens",
        None,
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
        None,
    ),
    503: (
        "The engine is currently overloaded, please try again later.",
        "server_error",
        None,
        None,
    ),
}

_UNSET: Any = object()


def error(
    status: int,
    message: str | None = None,
    *,
    type: str | None = None,
    code: str | None = _UNSET,
    param: str | None = _UNSET,
    request_id: str | None = None,
    retry_after: float | None = None,
    headers: dict[str, str] | None = None,
    delay: float = 0.0,
) -> Reply:
    """An HTTP error with OpenAI's body ``{"error": {"message", "type", "param", "code"}}``.

    Defaults follow the real API per status (400, 401, 403, 404, 429, 500, 503);
    pass ``code=None`` / ``param=None`` to force nulls. ``retry_after`` (seconds)
    sets the ``retry-after`` header, which the SDK honours when it retries
    (429, 408, 409 and >= 500 are retried unless ``max_retries=0``).
    The SDK raises ``BadRequestError`` (400), ``AuthenticationError`` (401),
    ``PermissionDeniedError`` (403), ``NotFoundError`` (404), ``RateLimitError``
    (429), ``InternalServerError`` (>= 500), with ``.body`` = the inner object.
    """
    d_message, d_type, d_param, d_code = _ERRORS.get(
        status,
        (
            f"Request failed with status {status}.",
            "server_error" if status >= 500 else "invalid_request_error",
            None,
            None,
        ),
    )
    body = {
        "error": {
            "message": d_message if message is None else message,
            "type": d_type if type is None else type,
            "param": d_param if param is _UNSET else param,
            "code": d_code if code is _UNSET else code,
        }
    }
    extra = dict(headers or {})
    if retry_after is not None:
        extra["retry-after"] = f"{retry_after:g}"
    if status == 429:
        extra.setdefault("x-ratelimit-remaining-tokens", "0")
        extra.setdefault("x-ratelimit-reset-tokens", "800ms")
    return Reply(status=status, json=body, headers=_headers(request_id, extra), delay=delay)


# -- misc ----------------------------------------------------------------------------------------
def models(ids: Sequence[str] = ("gpt-4o", "gpt-4o-mini", "o3")) -> Reply:
    """``GET /v1/models``: a page of model objects."""
    data = [{"id": m, "object": "model", "created": 1715367049, "owned_by": "system"} for m in ids]
    return Reply(json={"object": "list", "data": data}, headers=_headers(None))


def default(req: Received) -> Reply:
    """An answer to any request, for ``FakeServer(default=default)``.

    It reads the request as the real API would: chat completions and responses
    echo the requested ``model``, stream when ``stream`` is true, and a chat
    stream carries usage only if ``stream_options.include_usage`` was asked.
    Unknown paths get OpenAI's 404 ``Invalid URL`` error.
    """
    body = req.body if isinstance(req.body, dict) else {}
    model = str(body.get("model") or "gpt-4o")
    stream = bool(body.get("stream"))
    path = req.path.rstrip("/")
    if req.method == "POST" and path.endswith("/chat/completions"):
        if stream:
            options = body.get("stream_options") or {}
            return chat_stream(
                ["Hello", " from", " the", " fake."],
                model=model,
                include_usage=bool(options.get("include_usage")),
            )
        return chat_completion("Hello from the fake.", model=model)
    if req.method == "POST" and path.endswith("/responses"):
        if stream:
            return response_stream(["Hello", " from", " the", " fake."], model=model)
        return response("Hello from the fake.", model=model)
    if req.method == "GET" and path.endswith("/models"):
        return models()
    return error(
        404,
        f"Invalid URL ({req.method} {req.path})",
        type="invalid_request_error",
        code=None,
        param=None,
    )
