"""Google Gen AI (``google-genai`` 3.x): ``models.generate_content`` and ``generate_content_stream``.

Choke point: ``BaseApiClient.request`` / ``request_streamed`` and their async
twins in ``google.genai._api_client``. Requests to ``…:generateContent`` and
``…:streamGenerateContent`` are recorded. Automatic function calling makes
several HTTP calls inside one ``generate_content``: each is its own inference.

Usage mapping: ``input_tokens`` = ``promptTokenCount`` (cached included),
``cached_tokens`` = ``cachedContentTokenCount``, ``output_tokens`` =
``candidatesTokenCount`` + ``thoughtsTokenCount``, ``reasoning_tokens`` =
``thoughtsTokenCount``. Gemini repeats the cumulative ``usageMetadata`` on every
streamed chunk: the last one is kept, never a sum.
"""

from __future__ import annotations

import json
from typing import Any

from ..pricing import cost_usd
from ..producers import Inference
from . import _patch
from ._calls import (
    Adapter,
    Begin,
    ErrorInfo,
    StreamState,
    observe_async_iterator,
    observe_iterator,
    wrap_async,
    wrap_sync,
)
from ._common import error_kind, get

__all__ = ["instrument", "instrument_client"]

PROVIDER = "google"
_ROLES = {"model": "assistant", "user": "user", "function": "tool", "tool": "tool"}


def _model_of(path: str) -> str:
    name = path.split(":", 1)[0]
    return name.rsplit("/", 1)[-1]


def _parts_text(parts: Any, thought: bool = False) -> str | None:
    texts = [get(p, "text") for p in parts or () if isinstance(get(p, "text"), str)
             and bool(get(p, "thought")) == thought]
    return "".join(texts) if texts else None


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = body.get("systemInstruction") or body.get("system_instruction")
    if system:
        out.append({"role": "system", "content": _parts_text(get(system, "parts")) if isinstance(system, dict)
                    else system})
    for content in body.get("contents") or ():
        if not isinstance(content, dict):
            continue
        parts = content.get("parts") or []
        role = _ROLES.get(str(content.get("role") or "user"), str(content.get("role")))
        for part in parts:
            response = get(part, "functionResponse")
            if response is not None:
                out.append({"role": "tool", "tool_call_id": get(response, "id") or get(response, "name"),
                            "name": get(response, "name"), "content": get(response, "response")})
        calls = [get(p, "functionCall") for p in parts if get(p, "functionCall") is not None]
        text = _parts_text(parts)
        if text is not None or calls:
            msg: dict[str, Any] = {"role": role, "content": text}
            if calls:
                msg["tool_calls"] = [{"id": get(c, "id") or get(c, "name"), "name": get(c, "name"),
                                      "arguments": get(c, "args")} for c in calls]
            out.append(msg)
    return out


def _usage(meta: Any) -> dict[str, int | None] | None:
    if not meta:
        return None
    candidates = get(meta, "candidatesTokenCount")
    thoughts = get(meta, "thoughtsTokenCount")
    output = None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    return {"input_tokens": get(meta, "promptTokenCount"), "output_tokens": output,
            "cached_tokens": get(meta, "cachedContentTokenCount"), "cache_write_tokens": None,
            "reasoning_tokens": thoughts}


def _body(response: Any) -> dict[str, Any]:
    raw = getattr(response, "body", None)
    if isinstance(raw, str) and raw:
        try:
            data = json.loads(raw)
            return data if isinstance(data, dict) else {}
        except ValueError:
            return {}
    return {}


def _emit_calls(call: Inference, parts: Any) -> None:
    for part in parts or ():
        fc = get(part, "functionCall")
        if fc is not None:
            call.tool_call(get(fc, "id") or get(fc, "name"), get(fc, "name"), get(fc, "args"))


class GenAIAdapter(Adapter):
    provider = PROVIDER

    def begin(self, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Begin | None:
        method = args[0] if args else kwargs.get("http_method")
        path = args[1] if len(args) > 1 else kwargs.get("path")
        body = args[2] if len(args) > 2 else kwargs.get("request_dict")
        if str(method).lower() != "post" or not isinstance(path, str) or not isinstance(body, dict):
            return None
        if ":generateContent" not in path and ":streamGenerateContent" not in path:
            return None
        request = {k: v for k, v in body.items() if not k.startswith("_")}
        request["model"] = _model_of(path)
        return Begin(model=_model_of(path), request=request, messages=_messages(body),
                     stream=":streamGenerateContent" in path)

    def handle(self, call: Inference, result: Any) -> Any:
        if hasattr(result, "__next__") or hasattr(result, "__anext__"):
            state = _ChunkStream(call)
            if hasattr(result, "__anext__"):
                return observe_async_iterator(result, state, self)
            return observe_iterator(result, state, self)
        data = _body(result)
        candidate = (data.get("candidates") or [{}])[0]
        parts = get(candidate, "content", "parts")
        _emit_calls(call, parts)
        usage = _usage(data.get("usageMetadata"))
        model = data.get("modelVersion") or call.model
        call.finish(_parts_text(parts), reasoning_text=_parts_text(parts, thought=True),
                    stop_reason=get(candidate, "finishReason"), usage=usage, model=model,
                    cost_usd=cost_usd(PROVIDER, model, usage), request_id=data.get("responseId"))
        return result

    def error_info(self, exc: BaseException) -> ErrorInfo:
        code = getattr(exc, "code", None)
        status = code if isinstance(code, int) else None
        return ErrorInfo(
            message=str(getattr(exc, "message", None) or exc),
            kind=error_kind(status, type(exc).__name__) if status or not getattr(exc, "status", None)
            else str(exc.status),  # type: ignore[attr-defined]
            http_status=status,
            body=getattr(exc, "details", None),
        )


class _ChunkStream(StreamState):
    """Each chunk is a whole GenerateContentResponse; usage is cumulative."""

    def feed(self, response: Any) -> None:
        data = _body(response)
        if not data:
            return
        self.model = data.get("modelVersion") or self.model
        self.request_id = data.get("responseId") or self.request_id
        if data.get("usageMetadata"):
            self.usage = _usage(data["usageMetadata"])  # cumulative: replace, never add
        for candidate in (data.get("candidates") or [])[:1]:
            parts = get(candidate, "content", "parts") or ()
            for part in parts:
                text = get(part, "text")
                if isinstance(text, str) and text:
                    (self.call.reasoning if get(part, "thought") else self.call.delta)(text)
            _emit_calls(self.call, parts)
            if get(candidate, "finishReason"):
                self.stop_reason = get(candidate, "finishReason")
                self.complete = True
            break


_ADAPTER = GenAIAdapter()


def instrument() -> None:
    from google.genai import _api_client

    cls = _api_client.BaseApiClient
    _patch.patch(PROVIDER, cls, "request", lambda f: wrap_sync(_ADAPTER, f))
    _patch.patch(PROVIDER, cls, "request_streamed", lambda f: wrap_sync(_ADAPTER, f))
    _patch.patch(PROVIDER, cls, "async_request", lambda f: wrap_async(_ADAPTER, f))
    _patch.patch(PROVIDER, cls, "async_request_streamed", lambda f: wrap_async(_ADAPTER, f))


def instrument_client(client: Any) -> None:
    api = client._api_client
    _patch.patch(PROVIDER, api, "request", lambda f: wrap_sync(_ADAPTER, f))
    _patch.patch(PROVIDER, api, "request_streamed", lambda f: wrap_sync(_ADAPTER, f))
    _patch.patch(PROVIDER, api, "async_request", lambda f: wrap_async(_ADAPTER, f))
    _patch.patch(PROVIDER, api, "async_request_streamed", lambda f: wrap_async(_ADAPTER, f))
