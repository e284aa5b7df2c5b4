"""LangChain / LangGraph adapter: ``ChatOpenAI`` against the fake OpenAI API, asserted in the views.

A retrieval chain over a tiny in-memory document list, a streamed model call, a
LangGraph tool loop (model -> tool -> model), failures; sync and async handlers;
and with ``agentlog.instrument("openai")`` also on, each LLM call recorded once.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core")
langchain_openai = pytest.importorskip("langchain_openai")
pytest.importorskip("langgraph")
openai = pytest.importorskip("openai")

from langchain_core.callbacks import CallbackManagerForRetrieverRun  # noqa: E402
from langchain_core.documents import Document  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from langchain_core.runnables import RunnableLambda  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langgraph.graph import END, START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import ToolNode  # noqa: E402

import agentlog  # noqa: E402
from agentlog.integrations.langchain import AgentlogCallbackHandler, AsyncAgentlogCallbackHandler  # noqa: E402

from fakes._server import FakeServer  # noqa: E402
from fakes.openai_fake import base_url, chat_completion, chat_stream, error  # noqa: E402
from helpers import query  # noqa: E402

KEY = "sk-proj-" + (string.ascii_letters + string.digits)[:40]
DOCS = [Document(page_content="Paris is the capital of France.", metadata={"id": 1}),
        Document(page_content="Tokyo is the capital of Japan.", metadata={"id": 2})]


class KeywordRetriever(BaseRetriever):
    """Documents that contain the query's last word: a retriever with no vector store."""

    docs: list[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        word = query.rstrip("?").split()[-1].lower()
        return [d for d in self.docs if word in d.page_content.lower()]


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"18C in {city}"


@pytest.fixture(autouse=True)
def _store(db: Path) -> Iterator[None]:
    agentlog.configure(db)
    yield
    agentlog.uninstrument()


def chat(server: FakeServer, **kwargs: Any) -> Any:
    return langchain_openai.ChatOpenAI(model="gpt-4o", base_url=base_url(server), api_key=KEY, max_retries=0,
                                       **kwargs)


def rows(db: Path, sql: str, *params: Any) -> list[Any]:
    assert agentlog.flush(5)
    return query(db, sql, *params)


def test_retrieval_chain_is_a_run_with_retriever_and_llm_spans(db: Path, server: FakeServer) -> None:
    server.push(chat_completion("Paris.", usage={"prompt_tokens": 30, "completion_tokens": 2}))
    prompt = ChatPromptTemplate.from_messages([("system", "Context: {context}"), ("human", "{question}")])
    chain = ({"context": KeywordRetriever(docs=DOCS), "question": lambda q: q} | prompt | chat(server))
    answer = chain.invoke("What is the capital of France?", config={"callbacks": [AgentlogCallbackHandler()]})
    assert answer.content == "Paris."
    (run,) = rows(db, "SELECT * FROM runs WHERE implicit = 0")
    assert (run["name"], run["status"], run["llm_calls"]) == ("RunnableSequence", "ok", 1)
    spans = rows(db, "SELECT * FROM spans WHERE run_id = ? ORDER BY started_at", run["run_id"])
    by_id = {s["span_id"]: s for s in spans}
    root = spans[0]
    assert (root["kind"], root["name"], root["parent_span_id"]) == ("chain", "RunnableSequence", None)
    (retriever,) = [s for s in spans if s["kind"] == "retriever"]
    assert retriever["name"] == "KeywordRetriever"
    assert json.loads(retriever["attributes"]) == {"query": "What is the capital of France?"}
    assert json.loads(retriever["result"]) == [{"page_content": "Paris is the capital of France.",
                                                "metadata": {"id": 1}}]
    assert by_id[retriever["parent_span_id"]]["name"] == "RunnableParallel<context,question>"
    (call,) = rows(db, "SELECT * FROM llm_calls")
    assert by_id[call["parent_span_id"]] is root
    assert (call["provider"], call["model"], call["response_text"], call["stop_reason"]) == (
        "openai", "gpt-4o", "Paris.", "stop")
    assert (call["input_tokens"], call["output_tokens"]) == (30, 2) and call["cost_usd"] is not None
    request = json.loads(call["request"])
    assert request["model"] == "gpt-4o" and KEY not in json.dumps(request)
    msgs = rows(db, "SELECT role, content FROM messages ORDER BY position")
    assert [(m["role"], m["content"]) for m in msgs] == [
        ("system", f"Context: {[DOCS[0]]}"), ("user", "What is the capital of France?"),
        ("assistant", "Paris.")]
    assert json.loads(root["result"])["content"] == "Paris."


def test_streamed_tokens_are_recorded_as_they_arrive(db: Path, server: FakeServer) -> None:
    server.push(chat_stream(["Hel", "lo", "!"]))
    handler = AgentlogCallbackHandler()
    with agentlog.run("stream"):
        text = "".join(str(c.content) for c in chat(server, streaming=True).stream("hi", config={"callbacks": [handler]}))
    assert text == "Hello!"
    (call,) = rows(db, "SELECT * FROM llm_calls")
    assert (call["status"], call["response_text"]) == ("ok", "Hello!") and call["ttft_ms"] is not None
    deltas = rows(db, "SELECT payload FROM events WHERE type = 'llm.delta'")
    assert "".join(json.loads(d["payload"])["text"] for d in deltas) == "Hello!"


def build_graph(llm: Any) -> Any:
    model = llm.bind_tools([get_weather])

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def aagent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    def route(state: MessagesState) -> str:
        return "tools" if state["messages"][-1].tool_calls else END

    graph = StateGraph(MessagesState)
    graph.add_node("agent", RunnableLambda(agent, afunc=aagent, name="agent"))  # ainvoke awaits aagent
    graph.add_node("tools", ToolNode([get_weather]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["tools", END])
    graph.add_edge("tools", "agent")
    return graph.compile()


def script_tool_loop(server: FakeServer) -> None:
    server.push(chat_completion(tool_calls=[("call_w", "get_weather", '{"city": "Paris"}')], request_id="req_1"),
                chat_completion("It is 18C in Paris.", request_id="req_2"))


def assert_tool_loop(db: Path, *, by_sdk: bool) -> None:
    (run,) = rows(db, "SELECT * FROM runs WHERE implicit = 0")
    assert (run["name"], run["status"], run["llm_calls"], run["tool_calls"]) == ("LangGraph", "ok", 2, 1)
    spans = {s["span_id"]: s for s in rows(db, "SELECT * FROM spans WHERE run_id = ?", run["run_id"])}
    calls = rows(db, "SELECT * FROM llm_calls ORDER BY started_at")
    assert [c["response_text"] for c in calls] == [None, "It is 18C in Paris."]
    # Each model call sits under the graph node that made it.
    nodes = [json.loads(spans[c["parent_span_id"]]["attributes"]).get("langgraph_node") for c in calls]
    assert nodes == ["agent", "agent"]
    if by_sdk:
        assert [c["request_id"] for c in calls] == ["req_1", "req_2"]
    (t,) = rows(db, "SELECT * FROM tool_calls")
    assert (t["tool_call_id"], t["name"], t["status"], t["result"]) == ("call_w", "get_weather", "ok", "18C in Paris")
    assert json.loads(t["arguments"]) == {"city": "Paris"} and t["llm_span_id"] == calls[0]["span_id"]
    tool_parent = spans[spans[t["span_id"]]["parent_span_id"]]
    assert json.loads(tool_parent["attributes"]).get("langgraph_node") == "tools"


def test_langgraph_tool_loop_links_the_tool_to_the_model_request(db: Path, server: FakeServer) -> None:
    script_tool_loop(server)
    out = build_graph(chat(server)).invoke({"messages": [("user", "Weather in Paris?")]},
                                           config={"callbacks": [AgentlogCallbackHandler()]})
    assert out["messages"][-1].content == "It is 18C in Paris."
    assert_tool_loop(db, by_sdk=False)


def test_with_the_openai_instrumentation_each_llm_call_is_recorded_once(db: Path, server: FakeServer) -> None:
    agentlog.instrument("openai")
    script_tool_loop(server)
    build_graph(chat(server)).invoke({"messages": [("user", "Weather in Paris?")]},
                                     config={"callbacks": [AgentlogCallbackHandler()]})
    assert_tool_loop(db, by_sdk=True)


@pytest.mark.parametrize("instrumented", [False, True], ids=["handler", "handler+sdk"])
def test_async_graph_with_the_async_handler(db: Path, server: FakeServer, instrumented: bool) -> None:
    if instrumented:
        agentlog.instrument("openai")
    script_tool_loop(server)

    async def main() -> Any:
        # langchain-openai caches its default async HTTP client, bound to the first event loop.
        llm = chat(server, http_async_client=openai.DefaultAsyncHttpxClient())
        return await build_graph(llm).ainvoke({"messages": [("user", "Weather in Paris?")]},
                                                       config={"callbacks": [AsyncAgentlogCallbackHandler()]})

    asyncio.run(main())
    assert_tool_loop(db, by_sdk=instrumented)


def test_a_failing_model_call_fails_the_call_the_chain_and_the_run(db: Path, server: FakeServer) -> None:
    server.push(error(429))
    chain = ChatPromptTemplate.from_messages([("human", "{q}")]) | chat(server)
    with pytest.raises(openai.RateLimitError):
        chain.invoke({"q": "hi"}, config={"callbacks": [AgentlogCallbackHandler()]})
    (run,) = rows(db, "SELECT status, error FROM runs WHERE implicit = 0")
    assert run["status"] == "error" and "RateLimitError" in run["error"]
    (call,) = rows(db, "SELECT status, error FROM llm_calls")
    assert call["status"] == "error"
    err = json.loads(rows(db, "SELECT payload FROM events WHERE type = 'llm.error'")[0]["payload"])["error"]
    assert (err["kind"], err["http_status"]) == ("rate_limit", 429)


def test_a_failing_tool_is_recorded_and_the_error_reaches_the_caller(db: Path) -> None:
    @tool
    def explode(x: int) -> int:
        """Always fails."""
        raise ValueError("boom")

    with agentlog.run("tools"), pytest.raises(ValueError, match="boom"):
        explode.invoke({"args": {"x": 1}, "id": "call_x", "name": "explode", "type": "tool_call"},
                       config={"callbacks": [AgentlogCallbackHandler()]})
    (t,) = rows(db, "SELECT * FROM tool_calls")
    assert (t["tool_call_id"], t["name"], t["status"]) == ("call_x", "explode", "error")
    assert "boom" in t["error"]
