"""OpenAI (``openai`` 3.x): Chat Completions and the Responses API, sync and async.

Choke point: ``SyncAPIClient.request`` / ``AsyncAPIClient.request`` in
``openai._base_client``, which every endpoint (and the ``.stream()`` helpers,
``with_raw_response`` and ``with_streaming_response``) goes through. Requests
to ``/chat/completions`` and ``/responses`` are recorded; anything else passes.

Usage mapping (already normalised by OpenAI): ``input_tokens`` = prompt /
input tokens (cached included), ``cached_tokens`` = ``*_tokens_details.cached_tokens``,
``cache_write_tokens`` = Responses' ``input_tokens_details.cache_write_tokens``
(Chat: ``prompt_tokens_details.cache_write_tokens``, when sent),
``output_tokens`` = completion / output tokens (reasoning included),
``reasoning_tokens`` = ``*_tokens_details.reasoning_tokens``.
A stream reports usage only if the caller asked for it
(``stream_options={"include_usage": True}``); agentlog never adds that option.

Errors OpenAI sends with an HTTP 200 are recorded as errors although the SDK
raises nothing for them: a Response whose ``status`` is ``failed`` (plain or
streamed as ``response.failed``). Their ``code`` (or, for an ``error`` chunk in
a Chat stream, which the SDK does raise as ``APIError``, the ``code``/``type``)
gives the failure kind; the error object itself is kept as the error body.

``with_raw_response`` has already read the body: the call is recorded from it
at once. ``with_streaming_response`` leaves the body to the caller: the call is
recorded from the first ``parse()``, else from the body when the response is
closed (without its text if the caller read raw bytes or lines).
"""

from __future__ import annotations

import json
from typing import Any

from ..pricing import cost_usd
from ..producers import Inference
from ._calls import (
    Adapter,
    Begin,
    ErrorInfo,
    StreamState,
    attach_stream,
    follow_parse,
    patch_stainless,
    patch_stainless_client,
)
from ._common import (
    error_kind,
    extras,
    fields,
    get,
    header,
    parse_arguments,
    sent_fields,
    text_of_parts,
)

__all__ = ["instrument", "instrument_client", "responses_usage"]

PROVIDER = "openai"
_ENDPOINTS = {"/chat/completions": "chat", "/responses": "responses"}
#: Error codes (and Chat error types) OpenAI sends inside an HTTP 200 -> failure kind.
#: Other codes of a failed Response (invalid_prompt, invalid_image, *_policy, ...) are
#: about the request: ``bad_request``.
_SENT_KINDS = {"rate_limit_exceeded": "rate_limit", "insufficient_quota": "rate_limit",
               "server_error": "server_error", "vector_store_timeout": "timeout",
               "invalid_request_error": "bad_request"}


# -- requests ---------------------------------------------------------------------------------
def _chat_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for m in body.get("messages") or ():
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        msg: dict[str, Any] = {"role": m.get("role"),
                               "content": content if type(content) is str else text_of_parts(content)}
        if len(m) > 2:  # more than role and content: a tool result, a name, tool calls
            if m.get("tool_call_id"):
                msg["tool_call_id"] = m["tool_call_id"]
            if m.get("name"):
                msg["name"] = m["name"]
            if m.get("tool_calls"):
                msg["tool_calls"] = [
                    {"id": get(tc, "id"), "name": get(tc, "function", "name"),
                     "arguments": parse_arguments(get(tc, "function", "arguments"))}
                    for tc in m["tool_calls"]
                ]
        out.append(msg)
    return out


def _responses_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        out.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        return [*out, {"role": "user", "content": items}]
    for item in items or ():
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message" or (kind is None and "role" in item):
            out.append({"role": item.get("role"), "content": text_of_parts(item.get("content"))})
        elif kind == "function_call":
            call = {"id": item.get("call_id"), "name": item.get("name"),
                    "arguments": parse_arguments(item.get("arguments"))}
            # One model turn is several items (message, function calls): as one assistant message,
            # it is the very message recorded as that turn's reply, so the view keeps it once.
            if out and out[-1].get("role") == "assistant":
                out[-1].setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            out.append({"role": "tool", "tool_call_id": item.get("call_id"), "content": item.get("output")})
    return out


class OpenAIAdapter(Adapter):
    provider = PROVIDER

    def begin(self, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Begin | None:
        options = args[1] if len(args) > 1 else kwargs.get("options")
        if options is None or str(getattr(options, "method", "")).lower() != "post":
            return None
        endpoint = _ENDPOINTS.get(str(getattr(options, "url", "")).rstrip("/"))
        body = getattr(options, "json_data", None)
        if endpoint is None or not isinstance(body, dict):
            return None
        messages = _chat_messages(body) if endpoint == "chat" else _responses_messages(body)
        model = body.get("model") if isinstance(body.get("model"), str) else None
        return Begin(model=model, request=sent_fields(body), messages=messages, stream=bool(body.get("stream")))

    def handle(self, call: Inference, result: Any) -> Any:
        _handle(self, call, result)
        return result

    def error_info(self, exc: BaseException) -> ErrorInfo:
        status = getattr(exc, "status_code", None)
        body = getattr(exc, "body", None)  # the inner error object: {"message", "type", "param", "code"}
        # A 200 can fail too (APIResponseValidationError): only an error status says what went wrong.
        kind = error_kind(status if isinstance(status, int) and status >= 400 else None, type(exc).__name__)
        if kind == "error" and isinstance(body, dict):  # an error chunk inside a stream: no HTTP status
            kind = _sent_kind(body)
        return ErrorInfo(
            # The provider's own words; the SDK's message prefixes them with "Error code: 429 - ".
            message=str(get(body, "message") or getattr(exc, "message", None) or exc),
            kind=kind,
            http_status=status,
            request_id=getattr(exc, "request_id", None),
            body=body,
        )


def _sent_kind(error: Any) -> str:
    """The failure kind of an error object OpenAI sent in a 200 (failed Response, stream error)."""
    code, type_ = get(error, "code"), get(error, "type")
    for value in (code, type_):
        if isinstance(value, str) and value in _SENT_KINDS:
            return _SENT_KINDS[value]
    return "bad_request" if isinstance(code, str) and code else "error"


_sdk_types: tuple[Any, Any, Any] | None = None


def _types() -> tuple[Any, Any, Any]:
    """The SDK's stream, raw and streaming response classes (imported once, not per call)."""
    global _sdk_types
    if _sdk_types is None:
        import openai
        from openai._legacy_response import LegacyAPIResponse
        from openai._response import APIResponse, AsyncAPIResponse

        _sdk_types = ((openai.Stream, openai.AsyncStream), LegacyAPIResponse, (APIResponse, AsyncAPIResponse))
    return _sdk_types


_chunk_cls: Any = None


def _chunk_class() -> Any:
    global _chunk_cls
    if _chunk_cls is None:
        from openai.types.chat import ChatCompletionChunk

        _chunk_cls = ChatCompletionChunk
    return _chunk_cls


def _handle(adapter: OpenAIAdapter, call: Inference, result: Any) -> None:
    streams, LegacyAPIResponse, responses = _types()
    if isinstance(result, streams):
        _follow_stream(adapter, call, result)
    elif isinstance(result, LegacyAPIResponse):  # with_raw_response
        if (call.request or {}).get("stream"):
            # parse() caches what it builds: the caller's own parse() returns this very stream.
            _follow_stream(adapter, call, result.parse())
        elif not _finish_from_body(call, result.http_response):
            call.finish()
    elif isinstance(result, responses):  # with_streaming_response
        _follow_streaming_response(adapter, call, result)
    else:
        _finish(call, result, getattr(result, "_request_id", None))


def _follow_stream(adapter: OpenAIAdapter, call: Inference, stream: Any) -> None:
    import openai

    state = _ResponsesStream(call) if _is_responses(call) else _ChatStream(call)
    state.request_id = header(getattr(stream.response, "headers", None), "x-request-id")
    attach_stream(stream, state, adapter, is_async=isinstance(stream, openai.AsyncStream))


def _follow_streaming_response(adapter: OpenAIAdapter, call: Inference, response: Any) -> None:
    """The body is the caller's to read: record the first ``parse()``, else the body at close."""

    def unparsed(resp: Any) -> None:
        if not _finish_from_body(call, resp.http_response):
            call.finish()  # the caller read raw bytes or lines: closed, without its text

    follow_parse(call, response, lambda parsed: _handle(adapter, call, parsed), unparsed)


def _finish_from_body(call: Inference, http: Any) -> bool:
    """Finish ``call`` from an HTTP response's JSON body if it was read; False if it was not."""
    import httpx2

    try:
        data = json.loads(http.content)
    except (httpx2.ResponseNotRead, ValueError):  # streamed by the caller, or not JSON
        return False
    _finish(call, data, header(http.headers, "x-request-id"))
    return True


def _finish(call: Inference, result: Any, request_id: str | None) -> None:
    """Finish ``call`` from a parsed result: an SDK object or its JSON as a dict."""
    if _is_responses(call):
        _finish_response(call, result, request_id)
    else:
        _finish_chat(call, result, request_id)


def _is_responses(call: Inference) -> bool:
    # Chat Completions requires ``messages``; the Responses API never takes it (and its
    # ``input`` is optional: a stored prompt or a previous response may stand in for it).
    return "messages" not in (call.request or {})


# -- responses ----------------------------------------------------------------------------------
def _chat_usage(usage: Any) -> dict[str, int | None] | None:
    if usage is None:
        return None
    u = fields(usage)
    prompt = fields(u.get("prompt_tokens_details"))
    return {
        "input_tokens": u.get("prompt_tokens"),
        "output_tokens": u.get("completion_tokens"),
        "cached_tokens": prompt.get("cached_tokens"),
        "cache_write_tokens": prompt.get("cache_write_tokens"),
        "reasoning_tokens": fields(u.get("completion_tokens_details")).get("reasoning_tokens"),
    }


def responses_usage(usage: Any) -> dict[str, int | None] | None:
    """Normalised usage of a Responses API ``usage`` (the OpenAI Agents SDK reports the same)."""
    if usage is None:
        return None
    return {
        "input_tokens": get(usage, "input_tokens"),
        "output_tokens": get(usage, "output_tokens"),
        "cached_tokens": get(usage, "input_tokens_details", "cached_tokens"),
        "cache_write_tokens": get(usage, "input_tokens_details", "cache_write_tokens"),
        "reasoning_tokens": get(usage, "output_tokens_details", "reasoning_tokens"),
    }


def _reasoning(message: Any) -> Any:
    """The reasoning some OpenAI-compatible servers send in a message or delta (not in the SDK's types)."""
    extra = extras(message)
    return extra.get("reasoning_content") or extra.get("reasoning") if extra else None


def _finish_chat(call: Inference, result: Any, request_id: str | None) -> None:
    f = fields(result)
    choices = f.get("choices") or []
    choice = fields(choices[0] if choices else None)
    msg_obj = choice.get("message")
    msg = fields(msg_obj)
    for tc in msg.get("tool_calls") or ():
        call.tool_call(get(tc, "id"), get(tc, "function", "name"),
                       parse_arguments(get(tc, "function", "arguments")))
    usage = _chat_usage(f.get("usage"))
    model = f.get("model")
    text = msg.get("content")
    call.finish(
        text if isinstance(text, str) else None,
        reasoning_text=_reasoning(msg_obj),
        stop_reason=choice.get("finish_reason"),
        usage=usage,
        model=model,
        cost_usd=cost_usd(PROVIDER, model or call.model, usage),
        request_id=request_id,
    )


def _finish_response(call: Inference, result: Any, request_id: str | None) -> None:
    texts: list[str] = []
    reasoning: list[str] = []
    for item in get(result, "output") or ():
        kind = get(item, "type")
        if kind == "message":
            texts += [get(c, "text") for c in get(item, "content") or () if get(c, "type") == "output_text"]
        elif kind == "reasoning":
            reasoning += [get(s, "text") for s in get(item, "summary") or ()]
            reasoning += [get(s, "text") for s in get(item, "content") or ()]
        elif kind == "function_call":
            call.tool_call(get(item, "call_id"), get(item, "name"), parse_arguments(get(item, "arguments")))
    status = get(result, "status")
    if status == "failed":  # the SDK raises nothing: the failure is in the body
        _fail_sent(call, get(result, "error"), request_id)
        return
    usage = responses_usage(get(result, "usage"))
    model = get(result, "model")
    call.finish(
        "".join(t for t in texts if isinstance(t, str)) or None,
        reasoning_text="".join(r for r in reasoning if isinstance(r, str)) or None,
        stop_reason=get(result, "incomplete_details", "reason") or status,
        usage=usage,
        model=model,
        cost_usd=cost_usd(PROVIDER, model or call.model, usage),
        request_id=request_id,
    )


def _fail_sent(call: Inference, error: Any, request_id: str | None) -> None:
    """Fail ``call`` with an error object OpenAI sent in place of a result."""
    call.fail(str(get(error, "message") or "response failed"), kind=_sent_kind(error),
              request_id=request_id, body=_dump(error))


def _dump(obj: Any) -> Any:
    # exclude_unset: the error as OpenAI sent it, not padded with the SDK's optional fields.
    dump = getattr(obj, "model_dump", None)
    return dump(exclude_unset=True) if callable(dump) else obj


# -- streams ------------------------------------------------------------------------------------
class _ChatStream(StreamState):
    """``chat.completion.chunk``s: text, tool-call fragments by index, finish, usage."""

    def __init__(self, call: Inference) -> None:
        super().__init__(call)
        self.tools: dict[int, dict[str, Any]] = {}
        self.chunk_class = _chunk_class()  # looked up once per stream, compared per chunk

    def feed(self, chunk: Any) -> None:
        if type(chunk) is not self.chunk_class:
            self._feed_fields(chunk)
            return
        # The SDK's own chunk (nearly always): its declared fields, read as attributes.
        if chunk.model:
            self.model = chunk.model
        if chunk.usage is not None:
            self.usage = _chat_usage(chunk.usage)
        for choice in chunk.choices:
            if choice.index != 0:
                continue  # n > 1: the first choice is the one recorded
            delta = choice.delta
            if delta.content:
                self.call.delta(delta.content)
            if delta.__pydantic_extra__:
                self._reasoning(delta)
            if delta.tool_calls:
                self._fragments(delta.tool_calls)
            if choice.finish_reason:
                self._finished(choice.finish_reason)

    def _feed_fields(self, chunk: Any) -> None:
        """Any other chunk (a dict, another class): the same, read by name."""
        f = fields(chunk)
        model = f.get("model")
        if model:
            self.model = model
        usage = f.get("usage")
        if usage is not None:
            self.usage = _chat_usage(usage)
        for choice in f.get("choices") or ():
            c = fields(choice)
            if c.get("index") not in (0, None):
                continue
            delta_obj = c.get("delta")
            delta = fields(delta_obj)
            text = delta.get("content")
            if text:
                self.call.delta(text)
            self._reasoning(delta_obj)
            fragments = delta.get("tool_calls")
            if fragments:
                self._fragments(fragments)
            reason = c.get("finish_reason")
            if reason:
                self._finished(reason)

    def _reasoning(self, delta: Any) -> None:
        thinking = _reasoning(delta)
        if isinstance(thinking, str) and thinking:
            self.call.reasoning(thinking)

    def _finished(self, reason: str) -> None:
        self.stop_reason = reason
        self.complete = True
        self._emit_tool_calls()

    def _fragments(self, fragments: Any) -> None:
        for frag in fragments:
            slot = self.tools.setdefault(get(frag, "index") or 0, {"id": None, "name": None, "args": []})
            slot["id"] = get(frag, "id") or slot["id"]
            slot["name"] = get(frag, "function", "name") or slot["name"]
            if get(frag, "function", "arguments"):
                slot["args"].append(get(frag, "function", "arguments"))

    def _emit_tool_calls(self) -> None:
        for _, slot in sorted(self.tools.items()):
            self.call.tool_call(slot["id"], slot["name"], parse_arguments("".join(slot["args"])))
        self.tools.clear()

    def finish(self) -> None:
        self._emit_tool_calls()
        super().finish()


class _ResponsesStream(StreamState):
    """Typed Responses events: text and reasoning deltas, function calls, completion."""

    failed: Any = None

    def feed(self, event: Any) -> None:
        kind = get(event, "type")
        if kind == "response.output_text.delta":
            self.call.delta(get(event, "delta") or "")
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            self.call.reasoning(get(event, "delta") or "")
        elif kind == "response.output_item.done" and get(event, "item", "type") == "function_call":
            item = get(event, "item")
            self.call.tool_call(get(item, "call_id"), get(item, "name"), parse_arguments(get(item, "arguments")))
        elif kind in ("response.created", "response.in_progress"):
            self.model = get(event, "response", "model") or self.model
        elif kind in ("response.completed", "response.incomplete"):
            response = get(event, "response")
            self.model = get(response, "model") or self.model
            self.usage = responses_usage(get(response, "usage"))
            self.stop_reason = get(response, "incomplete_details", "reason") or get(response, "status")
            self.complete = True
        elif kind in ("response.failed", "error"):
            self.failed = get(event, "response", "error") if kind == "response.failed" else event
            self.complete = True

    def finish(self) -> None:
        if self.failed is not None:
            _fail_sent(self.call, self.failed, self.request_id)
            return
        super().finish()


# -- patching ------------------------------------------------------------------------------------
_ADAPTER = OpenAIAdapter()


def instrument() -> None:
    from openai import _base_client

    patch_stainless(PROVIDER, _base_client, _ADAPTER)


def instrument_client(client: Any) -> None:
    import openai

    patch_stainless_client(PROVIDER, client, _ADAPTER, is_async=isinstance(client, openai.AsyncOpenAI))
