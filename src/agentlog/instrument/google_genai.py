"""Google Gen AI (``google-genai`` 3.x): ``models.generate_content`` and ``generate_content_stream``.

Choke point: ``BaseApiClient.request`` / ``request_streamed`` and their async
twins in ``google.genai._api_client``, which see the REST body as sent and each
response as received. POSTs to ``…:generateContent`` and
``…:streamGenerateContent`` are recorded; everything else passes untouched.
One ``generate_content`` call can make several HTTP requests (automatic
function calling, automatic continuation): each request is its own inference.

Usage mapping: ``input_tokens`` = ``promptTokenCount`` (which already includes
``cachedContentTokenCount``) + ``toolUsePromptTokenCount``; ``cached_tokens`` =
``cachedContentTokenCount``; ``output_tokens`` = ``candidatesTokenCount`` +
``thoughtsTokenCount``; ``reasoning_tokens`` = ``thoughtsTokenCount``; no cache
writes are reported. Gemini repeats the cumulative ``usageMetadata`` on every
streamed chunk: the last one is kept, never a sum. Each continuation hop is a
request of its own and reports its own usage.

Tool calls: a ``functionCall`` part without an ``id`` (most models send none)
gets its name as id, ``name#2``, ``name#3``… when the name repeats in one
reply, and a ``functionResponse`` without an id is linked to the earliest
unanswered call of that name. The model's reply ``stop_reason`` is the
candidate's ``finishReason``, or the prompt's ``blockReason`` when there is no
candidate.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

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
from ._common import error_kind, fields, get

__all__ = ["instrument", "instrument_client"]

PROVIDER = "google"  # the provider recorded on inferences and priced in prices.json
SDK = "google-genai"  # the name agentlog.instrument() / uninstrument() know this SDK by
_METHODS = {"generateContent": False, "streamGenerateContent": True}  # REST method -> streamed
_ROLES = {"model": "assistant", "user": "user", "function": "tool", "tool": "tool"}
_PATCHES = (("request", wrap_sync), ("request_streamed", wrap_sync),
            ("async_request", wrap_async), ("async_request_streamed", wrap_async))


# -- requests ------------------------------------------------------------------------------
def _parse_path(path: str) -> tuple[str, str]:
    """``models/gemini-2.5-flash:streamGenerateContent?alt=sse`` -> (model, REST method)."""
    resource, _, method = path.partition("?")[0].rpartition(":")
    return resource.rsplit("/", 1)[-1], method


def _copy(body: dict[str, Any]) -> dict[str, Any]:
    """A copy of the request's JSON containers, without the SDK's routing keys (``_url``, ``_query``).

    Payloads are encoded later, on the writer thread, and the SDK edits the request dict in
    place after this point (it drops the routing keys and merges ``HttpOptions.extra_body``
    into nested objects). The body is JSON the SDK is about to send: orjson copies it in C,
    several times faster than walking it in Python (which remains for anything orjson refuses).
    """
    sent = {k: v for k, v in body.items() if not k.startswith("_")}
    try:
        copy = orjson.loads(orjson.dumps(sent))
    except (TypeError, orjson.JSONEncodeError):
        copy = None
    return copy if type(copy) is dict else {k: _plain(v) for k, v in sent.items()}


def _plain(value: Any) -> Any:
    """A copy of the JSON containers (the slow way, for what orjson refuses)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _parts_text(parts: Any, thought: bool = False) -> str | None:
    """The answer's text (or, with ``thought``, the thinking's), joined as the SDK's ``.text`` does."""
    texts = []
    for p in parts or ():
        f = fields(p)
        text = f.get("text")
        if isinstance(text, str) and bool(f.get("thought")) == thought:
            texts.append(text)
    return "".join(texts) if texts else None


def _content(parts: list[Any]) -> Any:
    """A message's content: its text, or its parts when some are not text (images, files, code)."""
    shown, texts = [], []
    only_text = True
    for p in parts:
        f = fields(p)
        if f.get("thought") or f.get("functionCall") is not None or f.get("functionResponse") is not None:
            continue
        shown.append(p)
        text = f.get("text")
        if isinstance(text, str):
            texts.append(text)
        else:
            only_text = False
    if only_text:
        return "".join(texts) if texts else None
    return shown


@dataclass
class _CallIds:
    """Ids for the function calls of one reply: the model's id, else the name (numbered on repeats)."""

    seen: dict[str, int] = field(default_factory=dict)

    def calls(self, parts: Any) -> list[dict[str, Any]]:
        out = []
        for part in parts or ():
            fc = fields(part).get("functionCall")
            if fc is None:
                continue
            f = fields(fc)
            name = f.get("name")
            n = self.seen[name] = self.seen.get(name, 0) + 1
            call_id = f.get("id") or (name if n == 1 else f"{name}#{n}")
            out.append({"id": call_id, "name": name, "arguments": f.get("args")})
        return out


def _has_calls(parts: list[Any]) -> bool:
    for part in parts:  # noqa: SIM110 - a loop: any() over a generator costs twice as much
        if fields(part).get("functionCall") is not None:
            return True
    return False


def _turns(contents: Any) -> list[tuple[str, list[Any]]]:
    """(role, parts) per message. Consecutive ``model`` contents are one reply: the SDK's
    automatic function calling sends a streamed reply back as one content per chunk."""
    turns: list[tuple[str, list[Any]]] = []
    for content in contents or ():
        if not isinstance(content, dict):
            continue
        role = str(content.get("role") or "user")
        parts = list(content.get("parts") or ())
        if role == "model" and turns and turns[-1][0] == "model":
            turns[-1][1].extend(parts)
        else:
            turns.append((role, parts))
    return turns


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's conversation in agentlog's canonical form."""
    out: list[dict[str, Any]] = []
    system = body.get("systemInstruction")
    if system:
        parts = get(system, "parts") if isinstance(system, dict) else None
        out.append({"role": "system", "content": system if parts is None else _content(list(parts))})
    unanswered: dict[str, list[str]] = {}  # function name -> ids of calls not yet answered
    for role, parts in _turns(body.get("contents")):
        for part in parts:
            response = fields(part).get("functionResponse")
            if response is None:
                continue
            name = get(response, "name")
            pending = unanswered.get(name) or []
            call_id = get(response, "id") or (pending[0] if pending else name)
            if call_id in pending:
                pending.remove(call_id)
            out.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": get(response, "response")})
        calls = _CallIds().calls(parts) if _has_calls(parts) else []
        for call in calls:
            unanswered.setdefault(call["name"], []).append(call["id"])
        content = _content(parts)
        if content is not None or calls:
            msg: dict[str, Any] = {"role": _ROLES.get(role, role), "content": content}
            if calls:
                msg["tool_calls"] = calls
            out.append(msg)
    return out


# -- responses -----------------------------------------------------------------------------
def _usage(meta: Any) -> dict[str, int | None] | None:
    if not meta:
        return None
    m = fields(meta)
    prompt = m.get("promptTokenCount")
    tool_prompt = m.get("toolUsePromptTokenCount")
    candidates = m.get("candidatesTokenCount")
    thoughts = m.get("thoughtsTokenCount")
    return {
        "input_tokens": _total(prompt, tool_prompt),
        "output_tokens": _total(candidates, thoughts),
        "cached_tokens": m.get("cachedContentTokenCount"),
        "cache_write_tokens": None,
        "reasoning_tokens": thoughts,
    }


def _total(a: int | None, b: int | None) -> int | None:
    """The sum of the counts given; None when none is (proto3 JSON omits zero counts)."""
    if a is None:
        return b
    return a if b is None else a + b


def _body(response: Any) -> dict[str, Any]:
    """The JSON body of an ``SdkHttpResponse`` (one whole response, or one streamed chunk)."""
    raw = getattr(response, "body", None)
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        data = orjson.loads(raw)  # ~3x json.loads: this runs on every streamed chunk
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _first_candidate(data: dict[str, Any]) -> Any:
    candidates = data.get("candidates")
    return candidates[0] if isinstance(candidates, list) and candidates else None


def _stop_reason(data: dict[str, Any], candidate: Any) -> Any:
    return fields(candidate).get("finishReason") or get(data, "promptFeedback", "blockReason")


def _emit_calls(call: Inference, calls: Iterable[dict[str, Any]]) -> None:
    for c in calls:
        call.tool_call(c["id"], c["name"], c["arguments"])


_KINDS: dict[type, str] = {}


def _result_kind(cls: type) -> str:
    """``async`` / ``sync`` for the streamed requests' generators, else ``response``. Per class:
    asked of a response (a pydantic model), ``hasattr`` raises and catches inside pydantic."""
    kind = _KINDS.get(cls)
    if kind is None:
        kind = "async" if hasattr(cls, "__anext__") else "sync" if hasattr(cls, "__next__") else "response"
        if len(_KINDS) < 64:
            _KINDS[cls] = kind
    return kind


class GenAIAdapter(Adapter):
    provider = PROVIDER

    def begin(self, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Begin | None:
        method = args[0] if args else kwargs.get("http_method")
        path = args[1] if len(args) > 1 else kwargs.get("path")
        body = args[2] if len(args) > 2 else kwargs.get("request_dict")
        if str(method).lower() != "post" or not isinstance(path, str) or not isinstance(body, dict):
            return None
        model, rest_method = _parse_path(path)
        if rest_method not in _METHODS:
            return None
        # Keys starting with "_" (_url, _query) are the SDK's routing, not part of the body.
        request = _copy(body)
        request["model"] = model
        return Begin(model=model, request=request, messages=_messages(request), stream=_METHODS[rest_method])

    def handle(self, call: Inference, result: Any) -> Any:
        kind = _result_kind(type(result))
        if kind == "async":  # async_request_streamed: an async generator
            return observe_async_iterator(result, _ChunkStream(call), self)
        if kind == "sync":  # request_streamed: a generator, not started yet
            return observe_iterator(result, _ChunkStream(call), self)
        data = _body(result)
        candidate = _first_candidate(data)
        parts = fields(fields(candidate).get("content")).get("parts")
        _emit_calls(call, _CallIds().calls(parts))
        usage = _usage(data.get("usageMetadata"))
        model = data.get("modelVersion") or call.model
        call.finish(_parts_text(parts), reasoning_text=_parts_text(parts, thought=True),
                    stop_reason=_stop_reason(data, candidate), usage=usage, model=model,
                    cost_usd=cost_usd(PROVIDER, model, usage), request_id=data.get("responseId"))
        return result

    def error_info(self, exc: BaseException) -> ErrorInfo:
        # errors.APIError: .code is the HTTP status, .details the whole error body.
        # Transport errors (httpx2.RemoteProtocolError, timeouts) have neither.
        code = getattr(exc, "code", None)
        status = code if isinstance(code, int) else None
        return ErrorInfo(
            message=str(getattr(exc, "message", None) or exc) or type(exc).__name__,
            kind=error_kind(status, type(exc).__name__),
            http_status=status,
            body=getattr(exc, "details", None),
        )


@dataclass
class _ChunkStream(StreamState):
    """Each chunk is a whole ``GenerateContentResponse``; its usage is the running total."""

    ids: _CallIds = field(default_factory=_CallIds)
    last_meta: Any = None  # the last usageMetadata, raw: normalised once, when the stream ends

    def feed(self, response: Any) -> None:
        # Every chunk comes here: plain dicts from orjson, read directly.
        data = _body(response)
        if not data:
            return
        model = data.get("modelVersion")
        if model:
            self.model = model
        response_id = data.get("responseId")
        if response_id:
            self.request_id = response_id
        meta = data.get("usageMetadata")
        if meta:  # cumulative: the last one wins, never a sum
            self.last_meta = meta
        candidate = _first_candidate(data)
        if type(candidate) is dict:
            content = candidate.get("content")
            parts = content.get("parts") if type(content) is dict else None
            if parts:
                self._parts(parts)
            stop = candidate.get("finishReason")
        else:
            stop = None
        if not stop and "promptFeedback" in data:
            stop = get(data, "promptFeedback", "blockReason")
        if stop:
            self.stop_reason = stop
            self.complete = True

    def _parts(self, parts: Any) -> None:
        calls = False
        for part in parts:
            if type(part) is not dict:
                calls = True  # not JSON as expected: let _CallIds read it the slow way
                continue
            text = part.get("text")
            if type(text) is str and text:
                (self.call.reasoning if part.get("thought") else self.call.delta)(text)
            if "functionCall" in part:
                calls = True
        if calls:
            _emit_calls(self.call, self.ids.calls(parts))

    def settle(self) -> None:
        if self.last_meta is not None:
            self.usage = _usage(self.last_meta)


_ADAPTER = GenAIAdapter()


def instrument() -> None:
    """Record the inferences of every ``google.genai`` client (idempotent)."""
    from google.genai import _api_client

    _patch_methods(_api_client.BaseApiClient)


def instrument_client(client: Any) -> None:
    """Record the inferences of one ``genai.Client`` (its sync and ``.aio`` sides share one API client)."""
    _patch_methods(client._api_client)


def _patch_methods(owner: Any) -> None:
    for name, wrap in _PATCHES:
        _patch.patch(SDK, owner, name, functools.partial(wrap, _ADAPTER))
