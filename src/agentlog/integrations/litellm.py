"""LiteLLM: a ``CustomLogger`` in ``litellm.callbacks``, so every provider LiteLLM reaches is recorded.

    from agentlog.integrations import litellm as agentlog_litellm
    agentlog_litellm.instrument()        # litellm.callbacks.append(AgentlogLogger())

Each ``completion`` / ``acompletion`` (streamed or not) becomes one LLM call
under the agentlog span current where it was made: provider (LiteLLM's
``custom_llm_provider``), model, messages and parameters, text, tool calls,
stop reason, usage, time to first token, duration, and the error of a failed call
(kind, HTTP status). LiteLLM reports a call when it ends (a stream: once it is
consumed), so the call is stored whole then, with the times LiteLLM measured.

Cost: agentlog's own price table first (the same as for the SDKs); for a model
it does not price, LiteLLM's ``response_cost``. LiteLLM's figure is kept in the
call's ``response`` field either way (``{"litellm_cost_usd": …}``).

Double counting: LiteLLM calls some providers through their official SDK (the
``openai`` client for ``openai/…`` and OpenAI-compatible models). With
``agentlog.instrument("openai")`` on, that SDK call is recorded by the
instrumentation; the logger sees it happen between LiteLLM's pre- and post-call
hooks and records nothing more. API keys are never stored: LiteLLM's call
details are not copied, only the parameters, with credential-like keys masked.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from .._frame import Frame, frame_var
from .._guard import guard
from ..instrument._common import error_kind, get, parse_arguments
from ..pricing import cost_usd
from ..producers import Inference
from ._bridge import ModelCall, open_under, scrub

try:
    import litellm as _litellm
    from litellm.integrations.custom_logger import CustomLogger
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("LiteLLM is not installed; install it with: pip install 'agentlog[litellm]'") from exc

__all__ = ["AgentlogLogger", "instrument", "uninstrument"]


class AgentlogLogger(CustomLogger):  # type: ignore[misc,unused-ignore]  # Any without LiteLLM
    """Records every LiteLLM call in agentlog (once, see the module docstring); never raises into LiteLLM."""

    def __init__(self) -> None:
        super().__init__()
        self._calls: dict[str, tuple[Frame, ModelCall]] = {}
        self._lock = threading.Lock()

    # Pre and post call run where the call is made (the caller's context): the frame to
    # attach the call to is read there, and the SDK calls in between are watched.
    def log_pre_api_call(self, model: Any, messages: Any, kwargs: Any) -> None:
        with guard("litellm pre call"):
            key = _key(kwargs)
            if key is not None:
                with self._lock:
                    if key not in self._calls:  # retries call this again
                        self._calls[key] = (frame_var.get(), ModelCall.begin())

    def log_post_api_call(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        with guard("litellm post call"):
            with self._lock:
                entry = self._calls.get(_key(kwargs) or "")
            if entry is not None:
                entry[1].end()

    def log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        with guard("litellm success"):
            self._record(kwargs, response_obj, start_time, end_time, None)

    def log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        with guard("litellm failure"):
            self._record(kwargs, response_obj, start_time, end_time, kwargs.get("exception"))

    async def async_log_success_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.log_success_event(kwargs, response_obj, start_time, end_time)

    async def async_log_failure_event(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any) -> None:
        self.log_failure_event(kwargs, response_obj, start_time, end_time)

    # -- recording ---------------------------------------------------------------------------
    def _record(self, kwargs: Any, response_obj: Any, start_time: Any, end_time: Any,
                error: BaseException | None) -> None:
        with self._lock:
            entry = self._calls.pop(_key(kwargs) or "", None)
        frame, mc = entry if entry is not None else (frame_var.get(), None)
        if mc is not None:
            mc.end()
            if mc.recorded_by_sdk():
                return
        slo = kwargs.get("standard_logging_object") or {}
        provider = str(slo.get("custom_llm_provider") or kwargs.get("custom_llm_provider") or "litellm")
        model = slo.get("model") or kwargs.get("model")
        params = scrub(dict(slo.get("model_parameters") or kwargs.get("optional_params") or {}))
        messages = kwargs.get("messages") or []
        from ..instrument.openai import _chat_messages

        call = Inference(provider, model, {"model": model, "messages": messages, **params},
                         messages=_chat_messages({"messages": messages}))
        start_ns, end_ns = _ns(start_time), _ns(end_time)
        open_under(call, frame, ns=start_ns)
        if start_ns is not None and end_ns is not None:
            # The duration LiteLLM measured, not the time its logging thread took to report it.
            call._t0 = time.perf_counter_ns() - (end_ns - start_ns)
        if error is not None or slo.get("status") == "failure":
            self._fail(call, error, slo)
            return
        response = kwargs.get("complete_streaming_response") or response_obj
        self._finish(call, response, slo, _ns(kwargs.get("completion_start_time")), start_ns)

    def _finish(self, call: Inference, response: Any, slo: Any, first: int | None, start_ns: int | None) -> None:
        choices = get(response, "choices") or []
        choice = choices[0] if choices else None
        message = get(choice, "message")
        for tc in get(message, "tool_calls") or ():
            call.tool_call(get(tc, "id"), get(tc, "function", "name"),
                           parse_arguments(get(tc, "function", "arguments")))
        usage = _usage(get(response, "usage"))
        model = get(response, "model") or call.model
        litellm_cost = slo.get("response_cost")
        ours = cost_usd(call.provider, model, usage) or cost_usd(call.provider, call.model, usage)
        text = get(message, "content")
        call.finish(
            text if isinstance(text, str) and text else None,
            reasoning_text=get(message, "reasoning_content") or None,
            stop_reason=get(choice, "finish_reason"),
            usage=usage,
            model=model,
            cost_usd=ours if ours is not None else litellm_cost,
            ttft_ms=(first - start_ns) / 1e6 if slo.get("stream") and first and start_ns else None,
            response={"id": get(response, "id"), "litellm_cost_usd": litellm_cost},
        )

    @staticmethod
    def _fail(call: Inference, error: BaseException | None, slo: Any) -> None:
        info = slo.get("error_information") or {}
        status = getattr(error, "status_code", None)
        if not isinstance(status, int):
            code = info.get("error_code")
            status = int(code) if isinstance(code, str) and code.isdigit() else None
        name = type(error).__name__ if error is not None else str(info.get("error_class") or "")
        message = str(getattr(error, "message", None) or error or slo.get("error_str") or "LiteLLM call failed")
        call.fail(message, kind=error_kind(status, name), http_status=status,
                  body=scrub({"error_class": info.get("error_class"), "llm_provider": info.get("llm_provider")}))


def _key(kwargs: Any) -> str | None:
    key = kwargs.get("litellm_call_id") if isinstance(kwargs, dict) else None
    return key if isinstance(key, str) else None


def _ns(value: Any) -> int | None:
    """A LiteLLM time (datetime or unix seconds) in ns, the recorder clock's unit."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1e9)
    if isinstance(value, (int, float)) and value > 0:
        return int(value * 1e9)
    return None


def _usage(usage: Any) -> dict[str, int | None] | None:
    """LiteLLM's OpenAI-shaped usage: ``prompt_tokens`` already includes cache reads and writes."""
    if usage is None:
        return None
    write = get(usage, "cache_creation_input_tokens") or get(usage, "prompt_tokens_details", "cache_creation_tokens")
    return {
        "input_tokens": get(usage, "prompt_tokens"),
        "output_tokens": get(usage, "completion_tokens"),
        "cached_tokens": get(usage, "prompt_tokens_details", "cached_tokens") or get(usage, "cache_read_input_tokens"),
        "cache_write_tokens": write,
        "reasoning_tokens": get(usage, "completion_tokens_details", "reasoning_tokens"),
    }


# -- registration ------------------------------------------------------------------------------
_lock = threading.Lock()
_installed: AgentlogLogger | None = None


def instrument() -> AgentlogLogger:
    """Add an :class:`AgentlogLogger` to ``litellm.callbacks`` (once)."""
    global _installed
    with _lock:
        if _installed is None:
            _installed = AgentlogLogger()
            _litellm.callbacks.append(_installed)
        return _installed


def uninstrument() -> bool:
    """Remove the logger :func:`instrument` added; False if there was none."""
    global _installed
    with _lock:
        logger, _installed = _installed, None
    if logger is None:
        return False
    manager = getattr(_litellm, "logging_callback_manager", None)
    if manager is not None and hasattr(manager, "remove_callback_from_all_lists"):
        # LiteLLM copies ``callbacks`` into its success / failure lists on first use.
        manager.remove_callback_from_all_lists(logger)
    elif logger in _litellm.callbacks:
        _litellm.callbacks.remove(logger)
    return True
