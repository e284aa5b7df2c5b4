"""A fake Gemini API (Google Gen AI, "mldev" flavour) for the official ``google-genai`` client.

Point the client at a :class:`~fakes._server.FakeServer`::

    client = genai.Client(api_key="AIza-test", http_options=types.HttpOptions(base_url=server.url))

and it posts to ``/{api_version}/models/{model}:generateContent`` (a JSON reply) or
``/{api_version}/models/{model}:streamGenerateContent?alt=sse`` (Server-Sent Events,
one full ``GenerateContentResponse`` per ``data:`` line). google-genai 3.4 defaults
``api_version`` to ``v1``; the builders here do not care which version the path has.

The builders write the REST wire format (camelCase JSON, proto3 style: zero counts
and empty fields are left out), as the real service does, so that the SDK's own
converters and pydantic models do the parsing — the thing instrumentation sees.
Each builder is checked against the SDK in ``tests/test_fake_gemini.py``.

Facts of the wire format these builders reproduce, on purpose:

* thinking shows up as parts ``{"text": ..., "thought": true}`` ahead of the answer;
  ``thoughtSignature`` (base64 bytes) rides on the first answer or function-call part;
* function calls are whole ``functionCall`` parts (``name``, ``args``; ``id`` only
  on some models), never fragments, even when streamed;
* ``usageMetadata.promptTokenCount`` already includes ``cachedContentTokenCount``;
  output is ``candidatesTokenCount`` plus ``thoughtsTokenCount``;
* a stream repeats the *cumulative* ``usageMetadata`` on every chunk (summing the
  chunks over-counts), and only the last chunk has ``finishReason``;
* errors are ``{"error": {"code", "message", "status", "details"?}}``, with the
  HTTP status as ``code`` and the google.rpc code name as ``status``.
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from ._server import Received, Reply

__all__ = [
    "DEFAULT_MODEL_VERSION",
    "STATUS_TEXT",
    "default",
    "error",
    "error_body",
    "generate_content",
    "parse_path",
    "prompt_blocked",
    "stream_generate_content",
    "usage_metadata",
]

DEFAULT_MODEL_VERSION = "gemini-2.5-flash"

#: The google.rpc code name the service puts in ``error.status`` for each HTTP status.
STATUS_TEXT: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

#: A function call to script: ``(name, args)`` or ``(name, args, id)``.
FunctionCallSpec = tuple[str, Mapping[str, Any]] | tuple[str, Mapping[str, Any], str]

_ids = itertools.count(1)


def _response_id() -> str:
    # Real ids are 22-ish URL-safe characters; a counter keeps them unique and readable.
    return f"fake-gemini-resp-{next(_ids):05d}"


def _b64(data: bytes) -> str:
    # The SDK's models parse bytes fields (thoughtSignature, continuationToken) as base64.
    return base64.b64encode(data).decode("ascii")


def _estimate_tokens(*texts: str | None) -> int:
    # Roughly four characters a token, like the real tokenizer on English text.
    return sum(max(1, len(t) // 4) for t in texts if t)


def usage_metadata(
    prompt: int,
    candidates: int,
    *,
    cached: int | None = None,
    thoughts: int | None = None,
    tool_use_prompt: int | None = None,
) -> dict[str, Any]:
    """A consistent ``usageMetadata`` object.

    ``prompt`` is the whole input and already includes ``cached`` (as on the real
    service); ``totalTokenCount`` is the sum of prompt, candidates, thoughts and
    tool-use prompt tokens. Zero or absent counts are left out, as proto3 JSON does.
    """
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if candidates:
        usage["candidatesTokenCount"] = candidates
    usage["totalTokenCount"] = prompt + candidates + (thoughts or 0) + (tool_use_prompt or 0)
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if cached:
        usage["cachedContentTokenCount"] = cached
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if tool_use_prompt:
        usage["toolUsePromptTokenCount"] = tool_use_prompt
    return usage


def _function_call_part(spec: FunctionCallSpec) -> dict[str, Any]:
    call: dict[str, Any] = {"name": spec[0], "args": dict(spec[1])}
    if len(spec) > 2:
        call["id"] = spec[2]
    # The SDK's automatic function calling skips a call whose args are absent,
    # so args are always written, even when empty (the service does the same).
    return {"functionCall": call}


def _candidate(
    parts: list[dict[str, Any]],
    finish_reason: str | None,
    continuation_token: bytes | None = None,
) -> dict[str, Any]:
    # A candidate with no parts (e.g. MAX_TOKENS spent on thinking) keeps only its role.
    content: dict[str, Any] = {"parts": parts, "role": "model"} if parts else {"role": "model"}
    candidate: dict[str, Any] = {"content": content}
    if finish_reason:
        candidate["finishReason"] = finish_reason
    if continuation_token is not None:
        candidate["continuationToken"] = _b64(continuation_token)
    candidate["index"] = 0
    return candidate


def _response(
    candidate: dict[str, Any] | None,
    usage: Mapping[str, Any] | None,
    model_version: str,
    response_id: str,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if candidate is not None:
        body["candidates"] = [candidate]
    if usage:
        body["usageMetadata"] = dict(usage)
    body["modelVersion"] = model_version
    body["responseId"] = response_id
    return body


def generate_content(
    text: str | None = None,
    *,
    thoughts: Sequence[str] | None = None,
    function_calls: Sequence[FunctionCallSpec] | None = None,
    finish_reason: str | None = "STOP",
    usage: Mapping[str, Any] | None = None,
    model_version: str = DEFAULT_MODEL_VERSION,
    response_id: str | None = None,
    thought_signature: bytes | None = None,
    continuation_token: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    delay: float = 0.0,
) -> Reply:
    """The reply to ``:generateContent``: one candidate, usage, model version, response id.

    Parts come in the service's order: thought summaries, the text, then function
    calls. ``usage`` is a wire-format ``usageMetadata`` (see :func:`usage_metadata`);
    None estimates one from the text, ``{}`` leaves it out. ``continuation_token``
    (with ``finish_reason="CONTINUATION"``) makes the SDK send a follow-up request
    and merge the two answers inside one ``generate_content`` call.
    """
    parts: list[dict[str, Any]] = [{"text": t, "thought": True} for t in thoughts or ()]
    answer: list[dict[str, Any]] = []
    if text is not None:
        answer.append({"text": text})
    answer += [_function_call_part(fc) for fc in function_calls or ()]
    if thought_signature is not None and answer:
        answer[0]["thoughtSignature"] = _b64(thought_signature)
    parts += answer
    if usage is None:
        calls_text = " ".join(f"{fc[0]}{dict(fc[1])}" for fc in function_calls or ())
        usage = usage_metadata(
            8,
            _estimate_tokens(text, calls_text) or 1,
            thoughts=_estimate_tokens(*(thoughts or ())) or None,
        )
    body = _response(
        _candidate(parts, finish_reason, continuation_token),
        usage,
        model_version,
        response_id or _response_id(),
    )
    return Reply(json=body, headers=dict(headers or {}), delay=delay)


def _cumulative_usage(
    final: Mapping[str, Any], thought_chunks: int, answer_chunks: int
) -> list[dict[str, Any]]:
    """The running usage totals a stream reports, one per chunk, ending exactly at ``final``.

    Thinking happens first, so ``thoughtsTokenCount`` grows over the thought chunks
    and then stays; ``candidatesTokenCount`` grows over the answer chunks. Prompt and
    cache counts are known from the first chunk and repeat unchanged.
    """
    n = thought_chunks + answer_chunks
    total_thoughts = int(final.get("thoughtsTokenCount", 0))
    total_candidates = int(final.get("candidatesTokenCount", 0))
    fixed = int(final.get("totalTokenCount", 0)) - total_thoughts - total_candidates
    out: list[dict[str, Any]] = []
    for i in range(n - 1):
        thoughts = (
            total_thoughts
            if thought_chunks == 0
            else round(total_thoughts * min(i + 1, thought_chunks) / thought_chunks)
        )
        answered = i + 1 - thought_chunks
        candidates = round(total_candidates * answered / answer_chunks) if answered > 0 else 0
        usage = {
            k: v
            for k, v in final.items()
            if k not in ("candidatesTokenCount", "thoughtsTokenCount")
        }
        if candidates:
            usage["candidatesTokenCount"] = candidates
        usage["totalTokenCount"] = fixed + thoughts + candidates
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        out.append(usage)
    out.append(dict(final))
    return out


def stream_generate_content(
    text_chunks: Sequence[str] = (),
    *,
    thought_chunks: Sequence[str] | None = None,
    function_calls: Sequence[FunctionCallSpec] | None = None,
    finish_reason: str | None = "STOP",
    usage: Mapping[str, Any] | None = None,
    repeat_usage: bool = True,
    model_version: str = DEFAULT_MODEL_VERSION,
    response_id: str | None = None,
    thought_signature: bytes | None = None,
    continuation_token: bytes | None = None,
    error: Mapping[str, Any] | None = None,
    cut_after: int | None = None,
    chunk_delay: float = 0.0,
    headers: Mapping[str, str] | None = None,
    delay: float = 0.0,
) -> Reply:
    """The reply to ``:streamGenerateContent?alt=sse``: one full response per SSE event.

    Events are data-only (no ``event:`` line), as the service sends them. Thought
    chunks come first, then one chunk per text piece, then all function calls in a
    single chunk. Every chunk has the same ``responseId`` and ``modelVersion``; the
    last has ``finishReason`` (and ``continuationToken`` if given). With
    ``repeat_usage`` every chunk carries the running, cumulative ``usageMetadata``
    (the real behaviour); without, only the last one does.

    ``error`` (an :func:`error_body`) is sent as one more event after the chunks,
    the way the service reports a failure once the stream has begun; ``cut_after``
    drops the connection after that many events instead.

    ``continuation_token`` with ``finish_reason="CONTINUATION"`` (a hop that hit the
    per-request limit) or ``finish_reason=None`` (a mid-stream checkpoint) makes the
    SDK open another request to resume, inside the same iterator — after a
    checkpoint even when an ``error`` follows, which the caller then never sees.
    """
    if isinstance(text_chunks, str):
        text_chunks = [text_chunks]
    chunks: list[list[dict[str, Any]]] = [
        [{"text": t, "thought": True}] for t in thought_chunks or ()
    ]
    answer: list[list[dict[str, Any]]] = [[{"text": t}] for t in text_chunks]
    if function_calls:
        answer.append([_function_call_part(fc) for fc in function_calls])
    if not answer:
        answer.append([{"text": ""}])  # the service always ends on an answer chunk
    if thought_signature is not None:
        answer[0][0]["thoughtSignature"] = _b64(thought_signature)
    n_thoughts = len(chunks)
    chunks += answer

    if usage is None:
        calls_text = " ".join(f"{fc[0]}{dict(fc[1])}" for fc in function_calls or ())
        usage = usage_metadata(
            8,
            _estimate_tokens("".join(text_chunks), calls_text) or 1,
            thoughts=_estimate_tokens("".join(thought_chunks or ())) or None,
        )
    if not usage:
        usages: list[dict[str, Any] | None] = [None] * len(chunks)
    elif repeat_usage:
        usages = list(_cumulative_usage(usage, n_thoughts, len(answer)))
    else:
        usages = [None] * (len(chunks) - 1) + [dict(usage)]

    rid = response_id or _response_id()
    events: list[tuple[str | None, Any]] = []
    for i, parts in enumerate(chunks):
        last = i == len(chunks) - 1
        candidate = _candidate(
            parts,
            finish_reason if last else None,
            continuation_token if last else None,
        )
        events.append((None, _response(candidate, usages[i], model_version, rid)))
    if error is not None:
        events.append((None, dict(error)))
    return Reply(
        sse=events,
        cut_after=cut_after,
        chunk_delay=chunk_delay,
        headers=dict(headers or {}),
        delay=delay,
    )


def prompt_blocked(
    reason: str = "SAFETY",
    *,
    usage: Mapping[str, Any] | None = None,
    model_version: str = DEFAULT_MODEL_VERSION,
    response_id: str | None = None,
) -> Reply:
    """A 200 reply with no candidates: the prompt was blocked (``promptFeedback.blockReason``).

    The SDK raises nothing; ``response.text`` is None. Instrumentation must cope
    with a successful response that has no output at all.
    """
    body = _response(
        None,
        usage if usage is not None else usage_metadata(8, 0),
        model_version,
        response_id or _response_id(),
    )
    body["promptFeedback"] = {"blockReason": reason}
    return Reply(json=body)


def error_body(
    status: int,
    message: str,
    *,
    status_text: str | None = None,
    details: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Google's error envelope ``{"error": {"code", "message", "status", "details"?}}``."""
    err: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": status_text or STATUS_TEXT.get(status, "UNKNOWN"),
    }
    if details is not None:
        err["details"] = [dict(d) for d in details]
    return {"error": err}


def error(
    status: int,
    message: str,
    *,
    status_text: str | None = None,
    details: Sequence[Mapping[str, Any]] | None = None,
    retry_delay: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """An HTTP error reply with Google's error body.

    ``status_text`` defaults from the HTTP status (400 INVALID_ARGUMENT, 401
    UNAUTHENTICATED, 403 PERMISSION_DENIED, 429 RESOURCE_EXHAUSTED, 500 INTERNAL,
    503 UNAVAILABLE, ...). ``retry_delay`` (e.g. ``"7s"``) adds the
    ``google.rpc.RetryInfo`` detail a 429 from the real service carries.
    """
    all_details = [dict(d) for d in details or ()]
    if retry_delay is not None:
        all_details.append(
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay}
        )
    body = error_body(status, message, status_text=status_text, details=all_details or None)
    return Reply(status=status, json=body, headers=dict(headers or {}))


def parse_path(path: str) -> tuple[str, str, str]:
    """Split ``/v1beta/models/gemini-2.5-flash:generateContent`` into (version, model, method).

    The model is returned without its ``models/`` prefix; unknown shapes give empty strings.
    """
    head, _, method = path.rpartition(":")
    pieces = head.strip("/").split("/")
    if len(pieces) >= 3 and pieces[1] == "models":
        return pieces[0], "/".join(pieces[2:]), method
    return "", "", method


def default(req: Received) -> Reply:
    """A ``FakeServer(default=...)`` answer for any unscripted request.

    Streams for ``:streamGenerateContent``, answers JSON for ``:generateContent``,
    and 404s anything else with the service's NOT_FOUND body.
    """
    _, model, method = parse_path(req.path)
    if method == "streamGenerateContent":
        return stream_generate_content(
            ["Hello", " from the fake", " Gemini."], model_version=model or DEFAULT_MODEL_VERSION
        )
    if method == "generateContent":
        return generate_content(
            "Hello from the fake Gemini.", model_version=model or DEFAULT_MODEL_VERSION
        )
    return error(404, f"Method not found: {req.path}")
