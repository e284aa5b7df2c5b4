"""Anthropic (``anthropic`` 2.x): the Messages API, sync and async, streams and helpers.

Choke point: ``SyncAPIClient.request`` / ``AsyncAPIClient.request`` in
``anthropic._base_client``. ``messages.stream()`` opens the same request once
(its helpers ``text_stream``, ``get_final_message()`` and ``until_done()`` read
the raw stream that agentlog follows), so a call is recorded exactly once.

Usage mapping: Anthropic's ``input_tokens`` excludes the cache, so
``input_tokens`` = input + ``cache_read_input_tokens`` + ``cache_creation_input_tokens``;
``cached_tokens`` = cache reads; ``cache_write_tokens`` = cache creation;
``output_tokens`` = ``output_tokens`` (in a stream, the cumulative value of the
last ``message_delta``); reasoning tokens are not reported separately (None).
"""

from __future__ import annotations

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
from ._common import error_kind, fields, get, header, parse_arguments, sent_fields

__all__ = ["instrument", "instrument_client"]

PROVIDER = "anthropic"


def _blocks_text(blocks: Any) -> Any:
    if isinstance(blocks, str) or blocks is None:
        return blocks
    texts = [get(b, "text") for b in blocks if get(b, "type") == "text"]
    if len(texts) == len(list(blocks)):
        return "\n".join(t for t in texts if isinstance(t, str))
    return blocks


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if body.get("system"):
        out.append({"role": "system", "content": _blocks_text(body["system"])})
    for m in body.get("messages") or ():
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, str) or not isinstance(content, list):
            out.append({"role": m.get("role"), "content": content})
            continue
        results = [b for b in content if get(b, "type") == "tool_result"]
        for r in results:
            out.append({"role": "tool", "tool_call_id": get(r, "tool_use_id"),
                        "content": _blocks_text(get(r, "content"))})
        uses = [b for b in content if get(b, "type") == "tool_use"]
        rest = [b for b in content if get(b, "type") not in ("tool_result", "tool_use", "thinking",
                                                              "redacted_thinking")]
        if rest or uses or not results:
            msg: dict[str, Any] = {"role": m.get("role"), "content": _blocks_text(rest) if rest else None}
            if uses:
                msg["tool_calls"] = [{"id": get(u, "id"), "name": get(u, "name"), "arguments": get(u, "input")}
                                     for u in uses]
            out.append(msg)
    return out


def _usage(usage: Any) -> dict[str, int | None] | None:
    if usage is None:
        return None
    u = fields(usage)
    base = u.get("input_tokens")
    read = u.get("cache_read_input_tokens")
    created = u.get("cache_creation_input_tokens")
    total_input = None if base is None else base + (read or 0) + (created or 0)
    return {"input_tokens": total_input, "output_tokens": u.get("output_tokens"),
            "cached_tokens": read, "cache_write_tokens": created, "reasoning_tokens": None}


_ERROR_KINDS = {
    "invalid_request_error": "bad_request",
    "authentication_error": "auth",
    "permission_error": "auth",
    "not_found_error": "not_found",
    "request_too_large": "bad_request",
    "rate_limit_error": "rate_limit",
    "api_error": "server_error",
    "overloaded_error": "overloaded",
    "timeout_error": "timeout",
}


class AnthropicAdapter(Adapter):
    provider = PROVIDER

    def begin(self, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Begin | None:
        options = args[1] if len(args) > 1 else kwargs.get("options")
        if options is None or str(getattr(options, "method", "")).lower() != "post":
            return None
        if str(getattr(options, "url", "")).rstrip("/") != "/v1/messages":
            return None
        body = getattr(options, "json_data", None)
        if not isinstance(body, dict):
            return None
        model = body.get("model") if isinstance(body.get("model"), str) else None
        return Begin(model=model, request=sent_fields(body), messages=_messages(body), stream=bool(body.get("stream")))

    def handle(self, call: Inference, result: Any) -> Any:
        _handle(self, call, result)
        return result

    def error_info(self, exc: BaseException) -> ErrorInfo:
        status = getattr(exc, "status_code", None)
        body = getattr(exc, "body", None)
        # A stream's error event arrives with HTTP 200: the error's own type says what it was.
        kind = _ERROR_KINDS.get(str(get(body, "error", "type"))) if isinstance(body, dict) else None
        return ErrorInfo(
            message=str(get(body, "error", "message") or getattr(exc, "message", None) or exc),
            kind=kind or error_kind(status if status != 200 else None, type(exc).__name__),
            http_status=status,
            request_id=getattr(exc, "request_id", None),
            body=body,
        )


_sdk_classes: tuple[Any, Any, Any, Any] | None = None


def _classes() -> tuple[Any, Any, Any, Any]:
    """The SDK's streams, raw responses, content-block delta event and text delta (imported once)."""
    global _sdk_classes
    if _sdk_classes is None:
        import anthropic
        from anthropic._response import APIResponse, AsyncAPIResponse
        from anthropic.types import RawContentBlockDeltaEvent, TextDelta

        _sdk_classes = ((anthropic.Stream, anthropic.AsyncStream), (APIResponse, AsyncAPIResponse),
                        RawContentBlockDeltaEvent, TextDelta)
    return _sdk_classes


def _handle(adapter: AnthropicAdapter, call: Inference, result: Any) -> None:
    streams, responses = _classes()[:2]
    if isinstance(result, streams):
        state = _MessageStream(call)
        state.request_id = header(getattr(result.response, "headers", None), "request-id")
        attach_stream(result, state, adapter, is_async=isinstance(result, streams[1]))
        return
    if isinstance(result, responses):  # with_raw/streaming_response
        follow_parse(call, result, lambda parsed: _handle(adapter, call, parsed))
        return
    f = fields(result)
    if f.get("type") != "message":
        call.finish()
        return
    text, thinking = [], []
    for block in f.get("content") or ():
        b = fields(block)
        kind = b.get("type")
        if kind == "text":
            text.append(b.get("text") or "")
        elif kind == "thinking":
            thinking.append(b.get("thinking") or "")
        elif kind == "tool_use":
            call.tool_call(b.get("id"), b.get("name"), b.get("input"))
    usage = _usage(f.get("usage"))
    model = f.get("model")
    call.finish(
        "".join(text) if text else None,
        reasoning_text="".join(thinking) if thinking else None,
        stop_reason=f.get("stop_reason"),
        usage=usage,
        model=model,
        cost_usd=cost_usd(PROVIDER, model or call.model, usage),
        request_id=getattr(result, "_request_id", None),
    )


class _MessageStream(StreamState):
    """Raw Messages events: text/thinking/tool_use blocks, cumulative usage, stop."""

    def __init__(self, call: Inference) -> None:
        super().__init__(call)
        self.blocks: dict[int, dict[str, Any]] = {}
        self.raw_usage: dict[str, Any] = {}
        self.event_class, self.text_class = _classes()[2:]  # looked up once per stream

    def feed(self, event: Any) -> None:
        if type(event) is self.event_class and type(event.delta) is self.text_class:
            self.call.delta(event.delta.text)  # nearly every event: the SDK's own text delta
            return
        f = fields(event)
        kind = f.get("type")
        if kind == "content_block_delta":
            delta = fields(f.get("delta"))
            dtype = delta.get("type")
            if dtype == "text_delta":
                self.call.delta(delta.get("text") or "")
            elif dtype == "thinking_delta":
                self.call.reasoning(delta.get("thinking") or "")
            elif dtype == "input_json_delta":
                slot = self.blocks.get(f.get("index"))
                if slot is not None:
                    slot["json"].append(delta.get("partial_json") or "")
        elif kind == "message_start":
            message = get(event, "message")
            self.model = get(message, "model") or self.model
            self._merge_usage(get(message, "usage"))
        elif kind == "content_block_start":
            block = get(event, "content_block")
            if get(block, "type") == "tool_use":
                self.blocks[get(event, "index")] = {"id": get(block, "id"), "name": get(block, "name"), "json": []}
        elif kind == "content_block_stop":
            slot = self.blocks.pop(get(event, "index"), None)
            if slot is not None:
                raw = "".join(slot["json"])
                self.call.tool_call(slot["id"], slot["name"], parse_arguments(raw) if raw else {})
        elif kind == "message_delta":
            self.stop_reason = get(event, "delta", "stop_reason") or self.stop_reason
            self._merge_usage(get(event, "usage"))
        elif kind == "message_stop":
            self.complete = True

    def _merge_usage(self, usage: Any) -> None:
        # message_delta repeats counts cumulatively: the latest value of each wins, never a sum.
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            value = get(usage, key)
            if value is not None:
                self.raw_usage[key] = value
        self.usage = _usage(self.raw_usage)


_ADAPTER = AnthropicAdapter()


def instrument() -> None:
    from anthropic import _base_client

    patch_stainless(PROVIDER, _base_client, _ADAPTER)


def instrument_client(client: Any) -> None:
    import anthropic

    patch_stainless_client(PROVIDER, client, _ADAPTER, is_async=isinstance(client, anthropic.AsyncAnthropic))
