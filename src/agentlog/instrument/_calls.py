"""The one place that wraps SDK calls and streams; provider modules only describe.

A provider module gives an :class:`Adapter`: how to recognise an inference
request and normalise it (``begin``), how to read a finished response
(``finish``), how to follow a stream (``StreamState``), and how to read an
error (``error_info``). This module runs the call around those hooks:

* every hook runs inside a ``try`` that reports as :func:`agentlog._guard.guard` does
  (a plain ``try`` is the cheaper on every call), so a parsing bug never breaks the
  caller's request (it is logged, and re-raised under the test suite);
* the SDK's own exception always propagates unchanged, after being recorded;
* a stream keeps its SDK type: only its private iterator is wrapped, and its
  HTTP response's ``close`` is observed, so the inference is finalised exactly
  once however the stream ends (exhausted, closed, ``__exit__``, broken out of
  and then closed or garbage-collected, or failed mid-way).
"""

from __future__ import annotations

import atexit
import functools
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .._guard import guard
from ..producers import Inference
from . import _http, _patch
from ._http import current_call

__all__ = ["Adapter", "Begin", "CallWatch", "ErrorInfo", "StreamState", "sdk_calls", "wrap_async", "wrap_sync"]


class CallWatch:
    """The SDK calls started while a framework adapter reports a model call.

    An adapter puts a fresh watch in :data:`sdk_calls` when the framework's model call
    begins; every inference an SDK instrumentation starts inside it (in this context, or
    in a task or thread that copied it) is added, until the adapter closes the watch. So
    the adapter knows the call is already recorded, and does not record it twice.
    """

    __slots__ = ("calls", "open")

    def __init__(self) -> None:
        self.calls: list[Inference] = []
        self.open = True


sdk_calls: ContextVar[CallWatch | None] = ContextVar("agentlog_sdk_calls", default=None)


@dataclass(slots=True)
class Begin:
    """A recognised inference request, normalised."""

    model: str | None
    request: dict[str, Any]
    messages: list[dict[str, Any]] | None = None
    stream: bool = False


@dataclass
class ErrorInfo:
    message: str
    kind: str
    http_status: int | None = None
    request_id: str | None = None
    body: Any = None
    status: str = "error"  # or "interrupted"


@dataclass(eq=False)  # identity semantics: states live in a WeakSet
class StreamState:
    """Follows one stream; subclasses implement ``feed`` for their event types."""

    call: Inference
    complete: bool = False  # the terminal event was seen
    pulling: bool = False  # async: inside the SDK's __anext__(): a close now is the SDK's own cleanup
    stop_reason: str | None = None
    usage: dict[str, int | None] | None = None
    model: str | None = None
    request_id: str | None = None

    def feed(self, item: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def settle(self) -> None:
        """Bring ``usage`` up to date, for states that keep the raw form per chunk."""

    def finish(self) -> None:
        """Close the inference from what the stream said (idempotent)."""
        self.settle()
        self.call.finish(stop_reason=self.stop_reason, usage=self.usage, model=self.model,
                         request_id=self.request_id, cost_usd=self.cost())

    def cost(self) -> float | None:
        from ..pricing import cost_usd

        return cost_usd(self.call.provider, self.model or self.call.model, self.usage)

    def ended(self, how: str) -> None:
        """The stream stopped without an error: finished if complete, else interrupted."""
        try:
            if self.complete or how == "exhausted":
                self.finish()
            else:
                self.call.interrupt(how)
        except Exception:
            with guard("stream end"):
                raise


class Adapter:
    """What a provider module tells the shared wrapping. Override the hooks."""

    provider: str = ""

    def begin(self, owner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Begin | None:
        """Recognise an inference request (None: not one, let it pass untouched)."""
        raise NotImplementedError

    def handle(self, call: Inference, result: Any) -> Any:
        """Record what the SDK returned (finish the call, or follow a stream) and return
        what the caller gets: ``result`` itself, or a generator that follows it."""
        raise NotImplementedError

    def error_info(self, exc: BaseException) -> ErrorInfo:
        return ErrorInfo(str(exc) or type(exc).__name__, kind=type(exc).__name__)


def _start(adapter: Adapter, begin: Begin) -> Inference:
    call = Inference(adapter.provider, begin.model, begin.request, messages=begin.messages).start()
    watch = sdk_calls.get()
    if watch is not None and watch.open:
        watch.calls.append(call)
    return call


def _record_error(
    adapter: Adapter, call: Inference, exc: BaseException, state: StreamState | None = None
) -> None:
    with guard(f"{adapter.provider} error"):
        if isinstance(exc, (KeyboardInterrupt, GeneratorExit)) or type(exc).__name__ == "CancelledError":
            call.interrupt(type(exc).__name__)
            return
        info = adapter.error_info(exc)
        # A stream that failed after reporting usage was billed for it all the same.
        if state is not None:
            state.settle()
        usage = state.usage if state is not None else None
        call.fail(info.message, kind=info.kind, http_status=info.http_status,
                  request_id=info.request_id or (state.request_id if state else None), body=info.body,
                  status=info.status, usage=usage, cost_usd=state.cost() if state and usage else None)


def wrap_sync(adapter: Adapter, original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a sync SDK method whose result is a response, a stream, or a raw response."""

    @functools.wraps(original)
    def wrapper(owner: Any, *args: Any, **kwargs: Any) -> Any:
        try:  # a plain try: a guard() context manager costs ten times more, on every call
            begin = adapter.begin(owner, args, kwargs)
        except Exception:
            _failed(adapter, "request")
            begin = None
        if begin is None:
            return original(owner, *args, **kwargs)
        call = _start(adapter, begin)
        token = current_call.set(call) if _http.enabled else None
        try:
            result = original(owner, *args, **kwargs)
        except BaseException as exc:
            _record_error(adapter, call, exc)
            raise
        finally:
            if token is not None:
                current_call.reset(token)
        return _handle_result(adapter, call, result)

    return wrapper


def wrap_async(adapter: Adapter, original: Callable[..., Any]) -> Callable[..., Any]:
    """The async twin of :func:`wrap_sync`."""

    @functools.wraps(original)
    async def wrapper(owner: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            begin = adapter.begin(owner, args, kwargs)
        except Exception:
            _failed(adapter, "request")
            begin = None
        if begin is None:
            return await original(owner, *args, **kwargs)
        call = _start(adapter, begin)
        token = current_call.set(call) if _http.enabled else None
        try:
            result = await original(owner, *args, **kwargs)
        except BaseException as exc:
            _record_error(adapter, call, exc)
            raise
        finally:
            if token is not None:
                current_call.reset(token)
        return _handle_result(adapter, call, result)

    return wrapper


def _handle_result(adapter: Adapter, call: Inference, result: Any) -> Any:
    try:
        return adapter.handle(call, result)
    except Exception:
        _failed(adapter, "response")
    # Only reached when an internal error was reported: end the call, never leave it open.
    call.finish()
    return result


def _failed(adapter: Adapter, step: str) -> None:
    """Report the internal error being handled, as ``guard()`` does (re-raised under the tests)."""
    with guard(f"{adapter.provider} {step}"):
        raise


# -- streams -------------------------------------------------------------------------------
def _attributed(it: Iterator[Any], call: Inference) -> Iterator[Any]:
    """``it``, with ``call`` the current one while it produces each item (``capture_http``)."""
    while True:
        token = current_call.set(call)
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            current_call.reset(token)
        yield item


def observe_iterator(it: Iterator[Any], state: StreamState, adapter: Adapter) -> Iterator[Any]:
    """Yield what ``it`` yields, feeding each item to ``state``; finalise at the end.

    The per-chunk path is a ``for`` loop, a ``try`` and the state's ``feed``: a
    ``guard()`` context manager costs ten times a plain ``try``. With ``capture_http``
    the call is the current one while the SDK produces the next item, so a request
    made lazily by a generator (google-genai) is still attributed to it.
    """
    feed = state.feed
    try:
        for item in _attributed(it, state.call) if _http.enabled else it:
            try:
                feed(item)
            except Exception:
                _failed(adapter, "stream event")
            yield item
    except GeneratorExit:
        state.ended("stream closed before the end")
        raise
    except BaseException as exc:
        _record_error(adapter, state.call, exc, state)
        raise
    state.ended("exhausted")


async def observe_async_iterator(
    it: AsyncIterator[Any], state: StreamState, adapter: Adapter
) -> AsyncIterator[Any]:
    """The async twin of :func:`observe_iterator`."""
    try:
        while True:
            state.pulling = True
            token = current_call.set(state.call) if _http.enabled else None
            try:
                item = await it.__anext__()
            except StopAsyncIteration:
                break
            finally:
                if token is not None:
                    current_call.reset(token)
            state.pulling = False
            try:
                state.feed(item)
            except Exception:
                _failed(adapter, "stream event")
            yield item
    except GeneratorExit:
        state.ended("stream closed before the end")
        raise
    except BaseException as exc:
        _record_error(adapter, state.call, exc, state)
        raise
    state.ended("exhausted")


# Streams still open, so that none is left "running" when the program exits.
_open_streams: weakref.WeakSet[StreamState] = weakref.WeakSet()


@atexit.register
def _end_open_streams() -> None:
    # Registered after the recorder's own exit handler, so it runs before it.
    for state in list(_open_streams):
        state.ended("the program exited before the stream ended")


def attach_stream(stream: Any, state: StreamState, adapter: Adapter, *, is_async: bool) -> None:
    """Follow a Stainless SDK stream (``_iterator`` + ``response``) in place.

    The stream object and its type are untouched apart from its private
    iterator; closing its HTTP response (what ``close()``, ``__exit__`` and the
    SDK's helpers all do) finalises the inference, and so does garbage collection.
    """
    _open_streams.add(state)
    observer: Any
    if is_async:
        observer = stream._iterator = observe_async_iterator(stream._iterator, state, adapter)
    else:
        observer = stream._iterator = observe_iterator(stream._iterator, state, adapter)
    response = getattr(stream, "response", None)
    if response is not None:
        # Weakly: the state must not keep the stream alive (its finalizer ends the call).
        _observe_close(response, state, weakref.ref(observer), is_async)
    weakref.finalize(stream, state.ended, "stream garbage-collected before the end")


def follow_iterator(it: Any, state: StreamState, adapter: Adapter, *, is_async: bool) -> Any:
    """For SDKs whose stream is a plain (async) generator: return one that follows it."""
    _open_streams.add(state)
    if is_async:
        return observe_async_iterator(it, state, adapter)
    return observe_iterator(it, state, adapter)


def _observe_close(response: Any, state: StreamState, observer: Any, is_async: bool) -> None:
    name = "aclose" if is_async else "close"
    original = getattr(response, name, None)
    if original is None:
        return
    # The SDK closes the response itself when the stream ends or fails (inside its
    # next()); those endings are recorded by the iterator. Only a close from outside
    # (the caller, a helper's __exit__) ends the call here. A sync observer is running
    # exactly while it pulls from the SDK (an async one also while it awaits: the flag).
    if is_async:
        async def aclose() -> None:
            if not state.pulling:
                state.ended("stream closed before the end")
            await original()

        setattr(response, name, aclose)
    else:
        def close() -> None:
            gen = observer()
            if gen is None or not gen.gi_running:
                state.ended("stream closed before the end")
            original()

        setattr(response, name, close)


def follow_parse(
    call: Inference,
    response: Any,
    on_parsed: Callable[[Any], None],
    on_unparsed: Callable[[Any], None] | None = None,
) -> None:
    """A raw response object (``with_raw_response`` / ``with_streaming_response``).

    Its body is the caller's to read. agentlog records the first ``parse()``
    (sync or async; later ones return the SDK's cached result, which must not
    be followed twice). If the response is closed without being parsed (the
    caller read raw bytes or lines), ``on_unparsed(response)`` ends the call
    (default: ok, without its text); garbage collection is the last resort.
    """
    import inspect

    parsed_once = False

    def first(parsed: Any) -> None:
        nonlocal parsed_once
        if not parsed_once:
            parsed_once = True
            with guard("raw response parse"):
                on_parsed(parsed)

    def closing() -> None:
        if not parsed_once:  # a parsed stream ends itself when its response closes
            with guard("raw response close"):
                (on_unparsed or (lambda _r: call.finish()))(response)

    original_parse = response.parse
    if inspect.iscoroutinefunction(original_parse):
        async def aparse(*args: Any, **kwargs: Any) -> Any:
            parsed = await original_parse(*args, **kwargs)
            first(parsed)
            return parsed

        response.parse = aparse
    else:
        def parse(*args: Any, **kwargs: Any) -> Any:
            parsed = original_parse(*args, **kwargs)
            first(parsed)
            return parsed

        response.parse = parse

    original_close = getattr(response, "close", None)
    if original_close is not None:
        if inspect.iscoroutinefunction(original_close):
            async def aclose() -> None:
                closing()
                await original_close()

            response.close = aclose
        else:
            def close() -> None:
                closing()
                original_close()

            response.close = close
    weakref.finalize(response, call.finish)


def patch_stainless(sdk: str, base_client: Any, adapter: Adapter) -> None:
    """Patch the one request method of an SDK generated by Stainless (OpenAI, Anthropic)."""
    _patch.patch(sdk, base_client.SyncAPIClient, "request", lambda f: wrap_sync(adapter, f))
    _patch.patch(sdk, base_client.AsyncAPIClient, "request", lambda f: wrap_async(adapter, f))


def patch_stainless_client(sdk: str, client: Any, adapter: Adapter, *, is_async: bool) -> None:
    """The same for one client object only."""
    wrap = wrap_async if is_async else wrap_sync
    _patch.patch(sdk, client, "request", lambda f: wrap(adapter, f))
