"""LangChain and LangGraph: a callback handler (sync and async) that records runs as spans.

    from agentlog.integrations.langchain import AgentlogCallbackHandler
    chain.invoke(inputs, config={"callbacks": [AgentlogCallbackHandler()]})

LangChain reports every step with its ``run_id`` and ``parent_run_id``; the
handler rebuilds that tree in agentlog:

===================  =========================================================================
LangChain            agentlog
===================  =========================================================================
chain (and every     span of kind ``chain`` (LangGraph graphs and nodes are chains; a node
LangGraph node)      keeps ``langgraph_node`` / ``langgraph_step``), inputs as attributes,
                     outputs as result. A top-level chain outside ``agentlog.run()`` is a run.
chat model / LLM     an LLM call: messages, invocation parameters, streamed tokens, text,
                     tool calls, usage (``usage_metadata``), cost, stop reason
tool                 a tool execution, linked to the model's tool-call id
retriever            span of kind ``retriever``: the query, and the documents as result
===================  =========================================================================

Double counting: a chat model that calls an SDK instrumented by
``agentlog.instrument()`` (``ChatOpenAI`` with ``instrument("openai")``) is
recorded by the instrumentation, under the same parent span; the handler sees
that the SDK call happened inside the model's run and records nothing more.
``llm_calls=False`` leaves every model call to the instrumentation.

Both handlers run inline (``run_inline = True``): LangChain then calls them in
the context of the code they describe, which is what nests SDK calls under the
right span. Secrets: credential-like keys in parameters and metadata are masked.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from .._guard import guard, strict
from ..context import RunScope, SpanScope
from ..instrument._common import error_kind, get, parse_arguments, text_of_parts
from ..pricing import cost_usd
from ..producers import Inference, ToolCall
from ._bridge import Bridge, ModelCall, Node, close_run, close_span, open_run, open_under, scrub

try:
    from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "LangChain is not installed; install it with: pip install 'agentlog[langchain]'"
    ) from exc

__all__ = ["AgentlogCallbackHandler", "AsyncAgentlogCallbackHandler"]

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "function",
          "AIMessageChunk": "assistant"}
#: LangGraph metadata worth keeping on a node's span (the rest is checkpoint plumbing).
_GRAPH_KEYS = ("langgraph_node", "langgraph_step")


class _Mapper:
    """The mapping itself, shared by the sync and the async handler."""

    def __init__(self, llm_calls: bool) -> None:
        self.llm_calls = llm_calls
        self.bridge = Bridge()

    # -- chains ------------------------------------------------------------------------------
    def chain_start(self, serialized: Any, inputs: Any, run_id: UUID, parent_run_id: UUID | None,
                    tags: list[str] | None, metadata: dict[str, Any] | None, kwargs: dict[str, Any]) -> None:
        name = _name(serialized, kwargs, "chain")
        parent, frame = self.bridge.parent_frame(parent_run_id)
        run = None
        if parent is None and parent_run_id is None and frame.run is None:
            run = open_run(RunScope(name, tags=["langchain"]))
            frame = run._frame
        attrs: dict[str, Any] = {"inputs": _plain(inputs)}
        attrs.update({k: metadata[k] for k in _GRAPH_KEYS if metadata and k in metadata})
        if tags:
            attrs["tags"] = tags
        self._open(run_id, parent, frame, SpanScope(name, kind="chain", attributes=scrub(attrs)), "chain",
                   run=run)

    def chain_end(self, outputs: Any, run_id: UUID) -> None:
        node = self.bridge.pop(run_id)
        if node is not None and isinstance(node.scope, SpanScope):
            close_span(node.scope, "ok", result=scrub(_plain(outputs)))
            if node.data.get("run") is not None:
                close_run(node.data["run"])

    def chain_error(self, error: BaseException, run_id: UUID) -> None:
        node = self.bridge.pop(run_id)
        if node is not None and isinstance(node.scope, SpanScope):
            status, err = _failure(error)
            close_span(node.scope, status, err)
            if node.data.get("run") is not None:
                close_run(node.data["run"], status, err)

    # -- models ------------------------------------------------------------------------------
    def model_start(self, serialized: Any, messages: list[Any] | None, prompts: list[str] | None,
                    run_id: UUID, parent_run_id: UUID | None, metadata: dict[str, Any] | None,
                    kwargs: dict[str, Any]) -> None:
        parent, frame = self.bridge.parent_frame(parent_run_id)
        params = scrub(dict(kwargs.get("invocation_params") or {}))
        meta = metadata or {}
        model = meta.get("ls_model_name") or params.get("model") or params.get("model_name")
        provider = meta.get("ls_provider") or _provider_of(serialized)
        if messages is not None:
            canonical = [_message(m) for m in (messages[0] if messages else ())]
        else:
            canonical = [{"role": "user", "content": p} for p in (prompts or ())[:1]]
        node = Node(run_id, frame, parent=parent, kind="llm")
        node.data.update(model_call=ModelCall.begin(), provider=str(provider), model=model, name=_name(serialized, kwargs, None),
                         request={**params, "messages": canonical}, messages=canonical)
        self.bridge.add(node)

    def _own_call(self, node: Node) -> Inference | None:
        """The inference this handler records for ``node`` (opened on first need), or None
        when an SDK instrumentation records the call (or ``llm_calls`` is off)."""
        if "call" in node.data:
            return node.data["call"]  # type: ignore[no-any-return]
        mc: ModelCall = node.data["model_call"]
        call = None
        if self.llm_calls and not mc.recorded_by_sdk():
            call = Inference(node.data["provider"], node.data["model"], node.data["request"],
                             messages=node.data["messages"], name=node.data["name"])
            open_under(call, node.frame, ns=mc.ns, t0=mc.t0)
        node.data["call"] = call
        return call

    def model_token(self, token: str | list[str | dict[str, Any]], run_id: UUID) -> None:
        node = self.bridge.get(run_id)
        if isinstance(token, list):  # content blocks (Anthropic and others stream these)
            token = "".join(t if isinstance(t, str) else str(t.get("text") or "") for t in token
                            if isinstance(t, str) or t.get("type") in ("text", "text_delta", None))
        if node is None or not token:
            return
        call = self._own_call(node)
        if call is not None:
            call.delta(token)

    def model_end(self, response: Any, run_id: UUID) -> None:
        node = self.bridge.pop(run_id)
        if node is None:
            return
        node.data["model_call"].end()
        call = self._own_call(node)
        if call is None:
            return
        generations = get(response, "generations") or [[]]
        gen = generations[0][0] if generations and generations[0] else None
        message = get(gen, "message")
        for tc in get(message, "tool_calls") or ():
            call.tool_call(get(tc, "id"), get(tc, "name"), get(tc, "args"))
        text = text_of_parts(get(message, "content")) if message is not None else get(gen, "text")
        usage = _usage(get(message, "usage_metadata"))
        meta = get(message, "response_metadata") or {}
        info = get(gen, "generation_info") or {}
        model = meta.get("model_name") or meta.get("model") or call.model
        stop = info.get("finish_reason") or meta.get("finish_reason") or meta.get("stop_reason")
        call.finish(text if isinstance(text, str) and text else None, stop_reason=stop, usage=usage, model=model,
                    cost_usd=cost_usd(call.provider, model, usage))

    def model_error(self, error: BaseException, run_id: UUID) -> None:
        node = self.bridge.pop(run_id)
        if node is None:
            return
        node.data["model_call"].end()
        call = self._own_call(node)
        if call is None:
            return
        status = getattr(error, "status_code", None)
        status = status if isinstance(status, int) else None
        call.fail(str(error) or type(error).__name__, kind=error_kind(status, type(error).__name__),
                  http_status=status, body=scrub(_plain(getattr(error, "body", None))),
                  status=_failure(error)[0])

    # -- tools and retrievers ------------------------------------------------------------------
    def tool_start(self, serialized: Any, input_str: str, run_id: UUID, parent_run_id: UUID | None,
                   inputs: Any, kwargs: dict[str, Any]) -> None:
        parent, frame = self.bridge.parent_frame(parent_run_id)
        arguments = inputs if inputs is not None else parse_arguments(input_str)
        tool = ToolCall(_name(serialized, kwargs, "tool"), scrub(_plain(arguments)),
                        tool_call_id=kwargs.get("tool_call_id"))
        self._open(run_id, parent, frame, tool, "tool")

    def tool_end(self, output: Any, run_id: UUID) -> None:
        node = self.bridge.pop(run_id)
        if node is None or not isinstance(node.scope, ToolCall):
            return
        # A tool that handled its own error answers with a ToolMessage of status "error".
        if get(output, "status") == "error":
            node.scope.fail(str(get(output, "content")))
            return
        content = get(output, "content") if get(output, "tool_call_id") is not None else output
        node.scope.finish(_plain(content))

    def tool_error(self, error: BaseException, run_id: UUID) -> None:
        node = self.bridge.pop(run_id)
        if node is not None and isinstance(node.scope, ToolCall):
            node.scope.fail(error)

    def retriever_start(self, serialized: Any, query: str, run_id: UUID, parent_run_id: UUID | None,
                        kwargs: dict[str, Any]) -> None:
        parent, frame = self.bridge.parent_frame(parent_run_id)
        span = SpanScope(_name(serialized, kwargs, "retriever"), kind="retriever", attributes={"query": query})
        self._open(run_id, parent, frame, span, "retriever")

    def retriever_end(self, documents: Any, run_id: UUID) -> None:
        self.chain_end(documents, run_id)

    def retriever_error(self, error: BaseException, run_id: UUID) -> None:
        self.chain_error(error, run_id)

    def _open(self, run_id: UUID, parent: Node | None, frame: Any, scope: SpanScope, kind: str,
              run: RunScope | None = None) -> None:
        open_under(scope, frame)
        node = Node(run_id, scope._frame, scope, parent=parent, kind=kind)
        node.data["run"] = run
        self.bridge.add(node, current=True)


class AgentlogCallbackHandler(BaseCallbackHandler):  # type: ignore[misc,unused-ignore]  # Any without LangChain
    """Records LangChain / LangGraph runs in agentlog; never raises into the chain.

    ``llm_calls=False``: record no model calls here (leave them to ``agentlog.instrument()``).
    """

    run_inline = True  # called in the context of the code it describes (see the module docstring)

    def __init__(self, *, llm_calls: bool = True) -> None:
        super().__init__()
        self._map = _Mapper(llm_calls)
        self.raise_error = strict()  # agentlog's own test suite sees its bugs

    def on_chain_start(self, serialized: dict[str, Any], inputs: dict[str, Any], *, run_id: UUID,
                       parent_run_id: UUID | None = None, tags: list[str] | None = None,
                       metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        with guard("langchain chain start"):
            self._map.chain_start(serialized, inputs, run_id, parent_run_id, tags, metadata, kwargs)

    def on_chain_end(self, outputs: dict[str, Any], *, run_id: UUID, **kwargs: Any) -> None:
        with guard("langchain chain end"):
            self._map.chain_end(outputs, run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with guard("langchain chain error"):
            self._map.chain_error(error, run_id)

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID,
                            parent_run_id: UUID | None = None, tags: list[str] | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        with guard("langchain model start"):
            self._map.model_start(serialized, messages, None, run_id, parent_run_id, metadata, kwargs)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
                     parent_run_id: UUID | None = None, tags: list[str] | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        with guard("langchain model start"):
            self._map.model_start(serialized, None, prompts, run_id, parent_run_id, metadata, kwargs)

    def on_llm_new_token(self, token: str | list[str | dict[str, Any]], *, run_id: UUID, **kwargs: Any) -> None:
        with guard("langchain model token"):
            self._map.model_token(token, run_id)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with guard("langchain model end"):
            self._map.model_end(response, run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with guard("langchain model error"):
            self._map.model_error(error, run_id)

    def on_tool_start(self, serialized: dict[str, Any], input_str: str, *, run_id: UUID,
                      parent_run_id: UUID | None = None, tags: list[str] | None = None,
                      metadata: dict[str, Any] | None = None, inputs: dict[str, Any] | None = None,
                      **kwargs: Any) -> None:
        with guard("langchain tool start"):
            self._map.tool_start(serialized, input_str, run_id, parent_run_id, inputs, kwargs)

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with guard("langchain tool end"):
            self._map.tool_end(output, run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with guard("langchain tool error"):
            self._map.tool_error(error, run_id)

    def on_retriever_start(self, serialized: dict[str, Any], query: str, *, run_id: UUID,
                           parent_run_id: UUID | None = None, tags: list[str] | None = None,
                           metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        with guard("langchain retriever start"):
            self._map.retriever_start(serialized, query, run_id, parent_run_id, kwargs)

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        with guard("langchain retriever end"):
            self._map.retriever_end(documents, run_id)

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        with guard("langchain retriever error"):
            self._map.retriever_error(error, run_id)


class AsyncAgentlogCallbackHandler(AsyncCallbackHandler):  # type: ignore[misc,unused-ignore]
    """The async twin of :class:`AgentlogCallbackHandler` (same mapping, awaited inline)."""

    run_inline = True

    def __init__(self, *, llm_calls: bool = True) -> None:
        super().__init__()
        self._sync = AgentlogCallbackHandler(llm_calls=llm_calls)
        self.raise_error = self._sync.raise_error

    async def on_chain_start(self, serialized: dict[str, Any], inputs: dict[str, Any], **kwargs: Any) -> None:
        self._sync.on_chain_start(serialized, inputs, **kwargs)

    async def on_chain_end(self, outputs: dict[str, Any], **kwargs: Any) -> None:
        self._sync.on_chain_end(outputs, **kwargs)

    async def on_chain_error(self, error: BaseException, **kwargs: Any) -> None:
        self._sync.on_chain_error(error, **kwargs)

    async def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[Any]],
                                  **kwargs: Any) -> None:
        self._sync.on_chat_model_start(serialized, messages, **kwargs)

    async def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any) -> None:
        self._sync.on_llm_start(serialized, prompts, **kwargs)

    async def on_llm_new_token(self, token: str | list[str | dict[str, Any]], **kwargs: Any) -> None:
        self._sync.on_llm_new_token(token, **kwargs)

    async def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self._sync.on_llm_end(response, **kwargs)

    async def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self._sync.on_llm_error(error, **kwargs)

    async def on_tool_start(self, serialized: dict[str, Any], input_str: str, **kwargs: Any) -> None:
        self._sync.on_tool_start(serialized, input_str, **kwargs)

    async def on_tool_end(self, output: Any, **kwargs: Any) -> None:
        self._sync.on_tool_end(output, **kwargs)

    async def on_tool_error(self, error: BaseException, **kwargs: Any) -> None:
        self._sync.on_tool_error(error, **kwargs)

    async def on_retriever_start(self, serialized: dict[str, Any], query: str, **kwargs: Any) -> None:
        self._sync.on_retriever_start(serialized, query, **kwargs)

    async def on_retriever_end(self, documents: Any, **kwargs: Any) -> None:
        self._sync.on_retriever_end(documents, **kwargs)

    async def on_retriever_error(self, error: BaseException, **kwargs: Any) -> None:
        self._sync.on_retriever_error(error, **kwargs)


# -- LangChain values as plain data ------------------------------------------------------------
def _name(serialized: Any, kwargs: dict[str, Any], default: Any) -> Any:
    name = kwargs.get("name") or get(serialized, "name")
    if not name:
        ids = get(serialized, "id")
        name = ids[-1] if isinstance(ids, list) and ids else default
    return name


def _provider_of(serialized: Any) -> str:
    """``["langchain", "chat_models", "openai", "ChatOpenAI"]`` -> ``openai``."""
    ids = get(serialized, "id")
    if isinstance(ids, list) and len(ids) >= 3:
        return str(ids[-2]).removeprefix("langchain_")
    return "langchain"


def _message(m: Any) -> dict[str, Any]:
    """A LangChain message in agentlog's canonical form."""
    kind = get(m, "type")
    role = get(m, "role") if kind == "chat" else _ROLES.get(str(kind), kind)
    out: dict[str, Any] = {"role": role, "content": text_of_parts(_plain(get(m, "content")))}
    if get(m, "tool_call_id"):
        out["tool_call_id"] = get(m, "tool_call_id")
    if get(m, "name"):
        out["name"] = get(m, "name")
    calls = get(m, "tool_calls")
    if calls:
        out["tool_calls"] = [{"id": get(c, "id"), "name": get(c, "name"), "arguments": get(c, "args")}
                             for c in calls]
    return out


def _usage(usage: Any) -> dict[str, int | None] | None:
    """LangChain's ``usage_metadata`` (input already includes cache reads and writes)."""
    if not usage:
        return None
    return {
        "input_tokens": get(usage, "input_tokens"),
        "output_tokens": get(usage, "output_tokens"),
        "cached_tokens": get(usage, "input_token_details", "cache_read"),
        "cache_write_tokens": get(usage, "input_token_details", "cache_creation"),
        "reasoning_tokens": get(usage, "output_token_details", "reasoning"),
    }


def _failure(error: BaseException) -> tuple[str, dict[str, str]]:
    # LangGraph pauses a graph for human input by raising GraphInterrupt through its chains.
    name = type(error).__name__
    status = "interrupted" if name.endswith("Interrupt") or name == "CancelledError" else "error"
    return status, {"type": name, "message": str(error)}


def _plain(value: Any, depth: int = 0) -> Any:
    """Messages, documents and pydantic objects as JSON-ready data."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if depth > 12:
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    if get(value, "page_content") is not None:  # a Document
        return {"page_content": get(value, "page_content"), "metadata": _plain(get(value, "metadata"), depth + 1)}
    if get(value, "type") is not None and hasattr(value, "content"):  # a message
        return _message(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return _plain(dump(), depth + 1)
        except Exception:
            pass
    return repr(value)
