"""Optional raw HTTP capture (``agentlog.instrument(capture_http=True)``).

For debugging provider issues: each HTTP exchange an instrumented inference
makes (retries included) is recorded as an ``llm.http`` event on that
inference's span, with the request and response bodies as sent and received
(for a stream, the raw SSE lines). Credentials are removed from the headers.

It works at the transport of ``httpx2`` (which the SDKs use), and only for
requests made while an instrumented inference is in progress: other traffic
of the program is never looked at. Bodies are kept up to ``MAX_BODY`` bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from typing import Any

from .._guard import guard
from ..producers import Inference
from . import _patch

__all__ = ["current_call", "enable", "redact_headers"]

MAX_BODY = 4 * 1024 * 1024
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie",
                            "set-cookie", "proxy-authorization", "openai-organization", "openai-project"})
current_call: ContextVar[Inference | None] = ContextVar("agentlog_http_call", default=None)
#: Whether capture is on: the wrapping sets ``current_call`` only then (it costs on every chunk).
enabled = False


def redact_headers(headers: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in headers.items():
        k = str(key).lower()
        out[k] = "[REDACTED]" if k in SECRET_HEADERS else str(value)
    return out


def _text(data: bytes) -> str:
    clipped = data[:MAX_BODY]
    text = clipped.decode("utf-8", "replace")
    if len(data) > MAX_BODY:
        text += f"\n[... {len(data) - MAX_BODY} more bytes not kept]"
    return text


class _Exchange:
    """One request/response pair; emitted once, when the response body is closed."""

    def __init__(self, call: Inference, request: Any, response: Any) -> None:
        self.call = call
        self.request = request
        self.response = response
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size <= MAX_BODY + len(chunk):
            self.chunks.append(chunk)

    def emit(self) -> None:
        if self.done:
            return
        self.done = True
        with guard("http capture"):
            req = self.request
            try:
                req_body = _text(bytes(req.content))
            except Exception:  # a streaming request body that was not buffered
                req_body = None
            self.call.emit("llm.http", {
                "request": {"method": req.method, "url": str(req.url), "headers": redact_headers(req.headers),
                            "body": req_body},
                "response": {"status": self.response.status_code,
                             "headers": redact_headers(self.response.headers),
                             "body": _text(b"".join(self.chunks)), "size": self.size},
            })


def _tee_classes() -> tuple[type, type]:
    """Byte streams that copy what the SDK reads; httpx2 insists on its own base classes."""
    import httpx2

    class TeeStream(httpx2.SyncByteStream):
        def __init__(self, inner: Any, exchange: _Exchange) -> None:
            self.inner = inner
            self.exchange = exchange

        def __iter__(self) -> Iterator[bytes]:
            for chunk in self.inner:
                self.exchange.add(chunk)
                yield chunk

        def close(self) -> None:
            try:
                self.inner.close()
            finally:
                self.exchange.emit()

    class AsyncTeeStream(httpx2.AsyncByteStream):
        def __init__(self, inner: Any, exchange: _Exchange) -> None:
            self.inner = inner
            self.exchange = exchange

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self.inner:
                self.exchange.add(chunk)
                yield chunk

        async def aclose(self) -> None:
            try:
                await self.inner.aclose()
            finally:
                self.exchange.emit()

    return TeeStream, AsyncTeeStream


def enable() -> None:
    """Patch httpx2's transports (idempotent; undone by ``uninstrument()``)."""
    global enabled
    import httpx2

    enabled = True

    tee, atee = _tee_classes()

    def sync_factory(original: Any) -> Any:
        def handle_request(self: Any, request: Any) -> Any:
            response = original(self, request)
            call = current_call.get()
            if call is not None:
                with guard("http capture"):
                    response.stream = tee(response.stream, _Exchange(call, request, response))
            return response

        return handle_request

    def async_factory(original: Any) -> Any:
        async def handle_async_request(self: Any, request: Any) -> Any:
            response = await original(self, request)
            call = current_call.get()
            if call is not None:
                with guard("http capture"):
                    response.stream = atee(response.stream, _Exchange(call, request, response))
            return response

        return handle_async_request

    _patch.patch("http", httpx2.HTTPTransport, "handle_request", sync_factory)
    _patch.patch("http", httpx2.AsyncHTTPTransport, "handle_async_request", async_factory)
