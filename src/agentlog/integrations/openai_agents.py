"""OpenAI Agents SDK (``openai-agents``, imported as ``agents``): a tracing processor.

    from agentlog.integrations import openai_agents
    openai_agents.instrument()          # agents.add_trace_processor(AgentlogProcessor())

The SDK reports its own tree (traces and spans with parent ids) to every
registered processor; this one rebuilds it in agentlog:

==================  =====================================================================
Agents SDK          agentlog
==================  =====================================================================
trace               a run (``name`` = workflow name); a span of kind ``workflow`` when it
                    starts inside an ``agentlog.run()``
agent               span of kind ``agent`` (its tools, handoffs, output type as attributes)
response,           an LLM call (kind ``llm``), *unless the SDK instrumentation recorded it*
generation          (see below); its tool calls are requested tool calls
function            a tool execution, linked to the model's tool-call id
handoff             a tool execution of the handoff tool (``transfer_to_…``), linked to its
                    tool-call id, with a ``handoff`` link to the agent span it led to
guardrail           span of kind ``guardrail``, result ``{"triggered": …}``
custom, task, turn  span of that kind, the span data as attributes
==================  =====================================================================

Double counting: with ``agentlog.instrument("openai")`` also on, the OpenAI
client call the SDK makes inside a ``response`` / ``generation`` span is recorded
by the instrumentation (full request, streamed timing, request id). The processor
notices that this happened in the span's context and then records nothing for
the span itself, so each LLM call is stored once. Without the instrumentation
(or for a model the instrumentation does not see, such as LiteLLM's) the call is
recorded from the span data. ``llm_calls=False`` leaves LLM calls to the
instrumentation alone.

The function span does not carry the model's tool-call id: the processor takes
it from the model output that asked for the call (the first pending call of the
same name in that agent), so it needs ``trace_include_sensitive_data`` (the
SDK's default). Secrets are never stored: the trace's export key is not read,
and credential-like keys in span data and metadata are masked.
"""

from __future__ import annotations

import threading
from typing import Any

from .._guard import guard
from ..context import RunScope, SpanScope
from ..instrument._common import get, parse_arguments
from ..instrument.openai import responses_usage
from ..pricing import cost_usd
from ..producers import Inference, ToolCall
from ._bridge import Bridge, ModelCall, Node, close_run, close_span, open_run, open_under, scrub

try:
    from agents.tracing import TracingProcessor
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "The OpenAI Agents SDK is not installed; install it with: pip install 'agentlog[openai-agents]'"
    ) from exc

__all__ = ["AgentlogProcessor", "instrument", "uninstrument"]

_LLM_SPANS = frozenset({"response", "generation"})


class AgentlogProcessor(TracingProcessor):  # type: ignore[misc,unused-ignore]  # Any without the SDK
    """Records the Agents SDK's traces and spans in agentlog (never raises into the SDK).

    ``llm_calls``: ``True`` (default) records each model call once, from the SDK
    instrumentation when it saw the call, else from the span; ``False`` never
    records them from spans (use with ``agentlog.instrument("openai")``).
    """

    def __init__(self, *, llm_calls: bool = True) -> None:
        self.llm_calls = llm_calls
        self._bridge = Bridge()

    # -- traces ------------------------------------------------------------------------------
    def on_trace_start(self, trace: Any) -> None:
        with guard("openai-agents trace start"):
            info = scrub({"trace_id": trace.trace_id, "group_id": getattr(trace, "group_id", None),
                          "metadata": getattr(trace, "metadata", None)})
            _, ambient = self._bridge.parent_frame()
            scope: SpanScope | RunScope
            if ambient.run is not None:  # inside the user's own agentlog.run(): one span of it
                scope = open_under(SpanScope(trace.name, kind="workflow", attributes=info), ambient)
                frame = scope._frame
            else:
                scope = open_run(RunScope(trace.name, metadata=info, tags=["openai-agents"]))
                frame = scope._frame
            self._bridge.add(Node(("trace", trace.trace_id), frame, scope, kind="trace"), current=True)

    def on_trace_end(self, trace: Any) -> None:
        with guard("openai-agents trace end"):
            node = self._bridge.pop(("trace", trace.trace_id))
            if node is None:
                return
            error = node.data.get("error")
            status = "error" if error else "ok"
            if isinstance(node.scope, RunScope):
                close_run(node.scope, status, error)
            elif node.scope is not None:
                close_span(node.scope, status, error)

    # -- spans -------------------------------------------------------------------------------
    def on_span_start(self, span: Any) -> None:
        with guard("openai-agents span start"):
            self._start(span)

    def on_span_end(self, span: Any) -> None:
        with guard("openai-agents span end"):
            self._end(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        from ..recorder import get_recorder

        get_recorder().flush(5.0)

    # -- mapping -------------------------------------------------------------------------------
    def _start(self, span: Any) -> None:
        data = span.span_data
        kind = str(data.type)
        parent, frame = self._bridge.parent_frame(span.parent_id, ("trace", span.trace_id))
        node = Node(span.span_id, frame, parent=parent, kind=kind)
        if kind in _LLM_SPANS:
            # Recorded at the end (from the SDK instrumentation, or else from the span data).
            node.data["model_call"] = ModelCall.begin()
            self._bridge.add(node)
            return
        scope: SpanScope
        if kind == "function":
            call = _take_pending(parent, lambda c: c["name"] == data.name)
            scope = ToolCall(data.name, call["arguments"] if call else None,
                             tool_call_id=call["id"] if call else None)
        elif kind == "handoff":
            # The handoff is a tool the model called (transfer_to_…): any pending call that is
            # not one of the agent's function tools.
            agent = _agent_of(parent)
            tools = set(getattr(agent.data.get("span_data") if agent else None, "tools", None) or ())
            call = _take_pending(parent, lambda c: c["name"] not in tools)
            scope = ToolCall(call["name"] if call else "handoff", call["arguments"] if call else None,
                             tool_call_id=call["id"] if call else None)
        elif kind == "agent":
            # Its tools, handoffs and output type are filled in while it runs: kept as its result.
            scope = SpanScope(data.name, kind="agent")
            node.data["span_data"] = data
        elif kind == "guardrail":
            scope = SpanScope(data.name, kind="guardrail")
        else:  # custom, task, turn, mcp_tools, speech, transcription...
            exported = data.export() or {}
            if exported.get("type") == "custom" and isinstance(exported.get("data"), dict):
                exported = exported["data"]  # custom spans, and task / turn spans exported as custom
            name = getattr(data, "name", None) or kind
            attrs = {k: v for k, v in exported.items() if k not in ("type", "sdk_span_type", "name")}
            scope = SpanScope(str(name), kind=kind, attributes=scrub(attrs) or None)
        node.scope = open_under(scope, frame)
        node.frame = scope._frame
        self._bridge.add(node, current=True)
        if kind == "agent":
            self._link_handoff(span.trace_id, data.name, scope)

    def _end(self, span: Any) -> None:
        node = self._bridge.pop(span.span_id)
        if node is None:
            return
        data = span.span_data
        error = _error(span.error)
        if error is not None and node.kind == "agent":
            trace = self._bridge.get(("trace", span.trace_id))
            if trace is not None:
                trace.data["error"] = error
        if node.kind in _LLM_SPANS:
            self._model_call(node, span, error)
        elif isinstance(node.scope, ToolCall):
            if error is not None:
                node.scope.fail(error["message"])
            elif node.kind == "handoff":
                node.scope.finish({"from_agent": data.from_agent, "to_agent": data.to_agent})
                trace = self._bridge.get(("trace", span.trace_id))
                if trace is not None and data.to_agent:
                    trace.data.setdefault("handoffs", {})[data.to_agent] = node.scope
            else:
                node.scope.finish(_plain(data.output))
        elif isinstance(node.scope, SpanScope):
            result: Any = None
            if node.kind == "guardrail":
                result = {"triggered": bool(data.triggered)}
            elif node.kind == "agent":
                result = scrub({"tools": data.tools, "handoffs": data.handoffs, "output_type": data.output_type})
            close_span(node.scope, "error" if error else "ok", error, result)

    def _link_handoff(self, trace_id: str, agent_name: str, agent_scope: SpanScope) -> None:
        """An edge from the handoff that led to this agent span (not its parent in the tree)."""
        trace = self._bridge.get(("trace", trace_id))
        handoff = trace.data.get("handoffs", {}).pop(agent_name, None) if trace else None
        if handoff is not None and agent_scope.span_id is not None:
            handoff.link(agent_scope.span_id, relation="handoff")

    # -- model calls ---------------------------------------------------------------------------
    def _model_call(self, node: Node, span: Any, error: dict[str, Any] | None) -> None:
        data = span.span_data
        calls = _requested_calls(data)
        agent = _agent_of(node.parent)
        if agent is not None:
            agent.data.setdefault("pending", []).extend(calls)
        mc: ModelCall = node.data["model_call"]
        mc.end()
        if not self.llm_calls or mc.recorded_by_sdk():
            return  # the SDK instrumentation recorded this call (or was asked to alone)
        call = _inference(data)
        open_under(call, node.frame, ns=mc.ns, t0=mc.t0)
        if error is not None:
            call.fail(error["message"], body=error.get("data"))
            return
        response = getattr(data, "response", None)
        if response is not None:  # a Responses API object: read it as the instrumentation does
            from ..instrument.openai import _finish_response

            _finish_response(call, response, getattr(response, "_request_id", None))
            return
        for c in calls:
            call.tool_call(c["id"], c["name"], c["arguments"])
        usage = responses_usage(data.usage) if data.usage else None
        model = getattr(data, "model", None) or call.model
        call.finish(_output_text(getattr(data, "output", None)), usage=usage, model=model,
                    cost_usd=cost_usd(call.provider, _bare(model), usage))


# -- span data -----------------------------------------------------------------------------
def _inference(data: Any) -> Inference:
    from ..instrument.openai import _chat_messages, _responses_messages

    if data.type == "response":
        response = data.response
        request: dict[str, Any] = {"input": data.input}
        if response is not None:
            request.update(model=response.model, instructions=response.instructions,
                           tools=[_plain(t) for t in response.tools or ()])
        messages = _responses_messages({"input": _plain(data.input),
                                        "instructions": get(response, "instructions")})
        return Inference("openai", get(response, "model"), scrub(request), messages=messages)
    model = str(data.model) if data.model else None
    provider, _, _ = (model or "").partition("/") if model and "/" in model else ("openai", "", "")
    request = {"model": model, "messages": data.input, **scrub(dict(data.model_config or {}))}
    return Inference(provider, model, request,
                     messages=_chat_messages({"messages": _plain(data.input) or []}))


def _requested_calls(data: Any) -> list[dict[str, Any]]:
    """The tool calls a model span's output asked for: ``{"id", "name", "arguments"}``."""
    out: list[dict[str, Any]] = []
    if data.type == "response":
        for item in get(data.response, "output") or ():
            if get(item, "type") == "function_call":
                out.append({"id": get(item, "call_id"), "name": get(item, "name"),
                            "arguments": parse_arguments(get(item, "arguments"))})
        return out
    for message in data.output or ():
        for tc in get(message, "tool_calls") or ():
            out.append({"id": get(tc, "id"), "name": get(tc, "function", "name"),
                        "arguments": parse_arguments(get(tc, "function", "arguments"))})
    return out


def _output_text(output: Any) -> str | None:
    texts = [get(m, "content") for m in output or () if get(m, "role") in ("assistant", None)]
    joined = "".join(t for t in texts if isinstance(t, str))
    return joined or None


def _bare(model: str | None) -> str | None:
    return model.rsplit("/", 1)[-1] if model else model


def _error(error: Any) -> dict[str, Any] | None:
    if not error:
        return None
    return {"type": "error", "message": str(get(error, "message") or "error"),
            "data": scrub(_plain(get(error, "data")))}


def _plain(value: Any) -> Any:
    """SDK (pydantic) objects as plain data, for the store."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(exclude_none=True)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _agent_of(node: Node | None) -> Node | None:
    while node is not None and node.kind != "agent":
        node = node.parent
    return node


def _take_pending(node: Node | None, match: Any) -> dict[str, Any] | None:
    agent = _agent_of(node)
    pending: list[dict[str, Any]] = agent.data.get("pending", []) if agent else []
    for i, call in enumerate(pending):
        if match(call):
            return pending.pop(i)
    return None


# -- registration ------------------------------------------------------------------------------
_lock = threading.Lock()
_installed: AgentlogProcessor | None = None


def instrument(*, llm_calls: bool = True) -> AgentlogProcessor:
    """Add an :class:`AgentlogProcessor` to the SDK's processors (once; the SDK's own exporter stays).

    To record with agentlog only, use ``agents.set_trace_processors([AgentlogProcessor()])``.
    """
    global _installed
    import agents

    with _lock:
        if _installed is None:
            _installed = AgentlogProcessor(llm_calls=llm_calls)
            agents.add_trace_processor(_installed)
        _installed.llm_calls = llm_calls
        return _installed


def uninstrument() -> bool:
    """Remove the processor :func:`instrument` added; False if there was none."""
    global _installed
    from agents.tracing import get_trace_provider

    with _lock:
        processor, _installed = _installed, None
    if processor is None:
        return False
    provider = get_trace_provider()
    multi = getattr(provider, "_multi_processor", None)
    current = list(getattr(multi, "_processors", ()))
    if processor in current:
        provider.set_processors([p for p in current if p is not processor])
    return True
