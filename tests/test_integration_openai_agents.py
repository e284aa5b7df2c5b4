"""OpenAI Agents SDK adapter: a real ``agents.Agent`` run, its model pointed at the fake OpenAI API.

A triage agent calls a function tool, then hands off to a writer agent that answers.
The tree, the LLM calls and the tool executions are asserted in the public views,
with the Responses API and with Chat Completions, with and without the OpenAI SDK
instrumentation (which must not make any LLM call count twice).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

agents = pytest.importorskip("agents")
openai = pytest.importorskip("openai")

import agentlog  # noqa: E402
from agentlog.integrations.openai_agents import AgentlogProcessor  # noqa: E402

from fakes._server import FakeServer  # noqa: E402
from fakes.openai_fake import base_url, chat_completion, error, response  # noqa: E402
from helpers import query  # noqa: E402

KEY = "sk-proj-" + (string.ascii_letters + string.digits)[:40]
TOOL_ARGS = '{"city":"Paris"}'


@pytest.fixture
def processor(db: Path) -> Iterator[AgentlogProcessor]:
    agentlog.configure(db)
    proc = AgentlogProcessor()
    # Only agentlog: the SDK's default exporter would try to reach api.openai.com.
    agents.set_trace_processors([proc])
    yield proc
    agents.set_trace_processors([])
    agentlog.uninstrument()


def build_agents(server: FakeServer, api: str) -> Any:
    client = openai.AsyncOpenAI(base_url=base_url(server), api_key=KEY, max_retries=0)
    if api == "responses":
        model: Any = agents.OpenAIResponsesModel(model="gpt-4o", openai_client=client)
    else:
        model = agents.OpenAIChatCompletionsModel(model="gpt-4o", openai_client=client)

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"18C and sunny in {city}"

    writer = agents.Agent(name="writer", instructions="Write the answer.", model=model)
    return agents.Agent(name="triage", instructions="Find facts, then hand off.", model=model,
                        tools=[get_weather], handoffs=[writer])


def script(server: FakeServer, api: str) -> None:
    """Triage: call the tool, then hand off; writer: answer."""
    if api == "responses":
        server.push(
            response(function_calls=[("call_weather", "get_weather", TOOL_ARGS)], request_id="req_1",
                     usage={"input_tokens": 50, "output_tokens": 10}),
            response(function_calls=[("call_handoff", "transfer_to_writer", "{}")], request_id="req_2",
                     usage={"input_tokens": 70, "output_tokens": 8}),
            response("Paris: 18C and sunny.", request_id="req_3", usage={"input_tokens": 90, "output_tokens": 6}),
        )
    else:
        server.push(
            chat_completion(tool_calls=[("call_weather", "get_weather", TOOL_ARGS)], request_id="req_1",
                            usage={"prompt_tokens": 50, "completion_tokens": 10}),
            chat_completion(tool_calls=[("call_handoff", "transfer_to_writer", "{}")], request_id="req_2",
                            usage={"prompt_tokens": 70, "completion_tokens": 8}),
            chat_completion("Paris: 18C and sunny.", request_id="req_3",
                            usage={"prompt_tokens": 90, "completion_tokens": 6}),
        )


def assert_structure(db: Path, *, by_sdk: bool) -> None:
    assert agentlog.flush(5)
    (run,) = query(db, "SELECT * FROM runs WHERE implicit = 0")
    assert (run["name"], run["status"], run["llm_calls"], run["tool_calls"]) == ("Agent workflow", "ok", 3, 2)
    assert (run["input_tokens"], run["output_tokens"]) == (210, 24)
    spans = {r["span_id"]: r for r in query(db, "SELECT * FROM spans WHERE run_id = ?", run["run_id"])}
    assert all(s["status"] == "ok" for s in spans.values())
    by_kind: dict[str, list[Any]] = {}
    for s in spans.values():
        by_kind.setdefault(s["kind"], []).append(s)
    def agent_of(span_id: str) -> str:
        while spans[span_id]["kind"] != "agent":
            span_id = spans[span_id]["parent_span_id"]
        return str(spans[span_id]["name"])

    (task,) = by_kind["task"]  # the SDK's own top span: the whole workflow
    assert (task["name"], task["parent_span_id"]) == ("Agent workflow", None)
    triage, writer = sorted(by_kind["agent"], key=lambda s: s["started_at"])
    assert (triage["name"], writer["name"]) == ("triage", "writer")
    assert triage["parent_span_id"] == writer["parent_span_id"] == task["span_id"]
    assert json.loads(triage["result"]) == {"tools": ["get_weather"], "handoffs": ["writer"], "output_type": "str"}
    assert [json.loads(t["attributes"]) for t in sorted(by_kind["turn"], key=lambda s: s["started_at"])] == [
        {"turn": 1, "agent_name": "triage"}, {"turn": 2, "agent_name": "triage"}, {"turn": 3, "agent_name": "writer"}]
    llm = query(db, "SELECT * FROM llm_calls WHERE run_id = ? ORDER BY started_at", run["run_id"])
    assert [agent_of(c["span_id"]) for c in llm] == ["triage", "triage", "writer"]
    assert [c["request_id"] for c in llm] == (["req_1", "req_2", "req_3"] if by_sdk else [c["request_id"] for c in llm])
    assert llm[2]["response_text"] == "Paris: 18C and sunny."
    assert all(c["provider"] == "openai" and c["status"] == "ok" for c in llm)
    assert llm[0]["cost_usd"] is not None  # priced from agentlog's table
    tools = query(db, "SELECT * FROM tool_calls WHERE run_id = ? ORDER BY started_at", run["run_id"])
    assert [(t["tool_call_id"], t["name"], t["status"], t["llm_span_id"]) for t in tools] == [
        ("call_weather", "get_weather", "ok", llm[0]["span_id"]),
        ("call_handoff", "transfer_to_writer", "ok", llm[1]["span_id"]),
    ]
    assert json.loads(tools[0]["arguments"]) == {"city": "Paris"}
    assert "18C and sunny in Paris" in tools[0]["result"]
    assert json.loads(tools[1]["result"]) == {"from_agent": "triage", "to_agent": "writer"}
    assert agent_of(tools[0]["span_id"]) == "triage"
    (link,) = query(db, "SELECT payload FROM events WHERE type = 'span.link'")
    assert json.loads(link["payload"]) == {"target_span_id": writer["span_id"], "relation": "handoff"}
    assert KEY not in Path(db).read_bytes().decode("utf-8", "replace")


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_agent_run_with_a_tool_and_a_handoff_is_recorded_from_the_traces(
    db: Path, server: FakeServer, processor: AgentlogProcessor, api: str
) -> None:
    script(server, api)
    result = agents.Runner.run_sync(build_agents(server, api), "Weather in Paris?")
    assert result.final_output == "Paris: 18C and sunny."
    assert_structure(db, by_sdk=False)
    if api == "responses":  # the Responses object carries the request id
        assert [c["request_id"] for c in query(db, "SELECT request_id FROM llm_calls ORDER BY started_at")] == [
            "req_1", "req_2", "req_3"]


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_with_the_openai_instrumentation_each_llm_call_is_recorded_once(
    db: Path, server: FakeServer, processor: AgentlogProcessor, api: str
) -> None:
    agentlog.instrument("openai")
    script(server, api)
    result = asyncio.run(agents.Runner.run(build_agents(server, api), "Weather in Paris?"))
    assert result.final_output == "Paris: 18C and sunny."
    assert_structure(db, by_sdk=True)
    (row,) = query(db, "SELECT count(*) AS n FROM llm_calls")
    assert row["n"] == 3


def test_inside_an_agentlog_run_the_trace_is_a_workflow_span(
    db: Path, server: FakeServer, processor: AgentlogProcessor
) -> None:
    server.push(response("Hi."))
    with agentlog.run("my app") as r:
        agents.Runner.run_sync(agents.Agent(name="solo", model=build_agents(server, "responses").model), "hi")
    assert agentlog.flush(5)
    assert [x["name"] for x in query(db, "SELECT name FROM runs WHERE implicit = 0")] == ["my app"]
    rows = query(db, "SELECT kind, name, parent_span_id, span_id FROM spans WHERE run_id = ? ORDER BY started_at",
                 r.run_id)
    assert [(s["kind"], s["name"]) for s in rows] == [
        ("workflow", "Agent workflow"), ("task", "Agent workflow"), ("agent", "solo"), ("turn", "turn"),
        ("llm", "gpt-4o")]
    assert all(child["parent_span_id"] == parent["span_id"] for parent, child in itertools.pairwise(rows))


def test_a_failing_model_call_marks_the_call_agent_and_run_as_errors(
    db: Path, server: FakeServer, processor: AgentlogProcessor
) -> None:
    server.push(error(500))
    with pytest.raises(openai.InternalServerError):
        agents.Runner.run_sync(agents.Agent(name="solo", model=build_agents(server, "responses").model), "hi")
    assert agentlog.flush(5)
    (run,) = query(db, "SELECT status, error FROM runs WHERE implicit = 0")
    assert run["status"] == "error"
    (call,) = query(db, "SELECT status, error FROM llm_calls")
    assert call["status"] == "error" and "Error getting response" in call["error"]
    (agent,) = query(db, "SELECT status FROM spans WHERE kind = 'agent'")
    assert agent["status"] == "error"


def test_a_failing_function_tool_is_a_failed_tool_call_and_the_run_goes_on(
    db: Path, server: FakeServer, processor: AgentlogProcessor
) -> None:
    @agents.function_tool
    def explode(x: int) -> int:
        """Always fails."""
        raise ValueError("boom")

    client = openai.AsyncOpenAI(base_url=base_url(server), api_key=KEY, max_retries=0)
    agent = agents.Agent(name="solo", tools=[explode],
                         model=agents.OpenAIResponsesModel(model="gpt-4o", openai_client=client))
    server.push(response(function_calls=[("call_x", "explode", '{"x": 1}')]), response("It failed."))
    assert agents.Runner.run_sync(agent, "go").final_output == "It failed."
    assert agentlog.flush(5)
    (t,) = query(db, "SELECT * FROM tool_calls")
    assert (t["tool_call_id"], t["name"], t["status"]) == ("call_x", "explode", "error")
    (run,) = query(db, "SELECT status FROM runs WHERE implicit = 0")
    assert run["status"] == "ok"  # the SDK gave the error to the model, which answered


def test_llm_calls_false_leaves_model_calls_to_the_instrumentation(db: Path, server: FakeServer) -> None:
    agentlog.configure(db)
    agents.set_trace_processors([AgentlogProcessor(llm_calls=False)])
    try:
        server.push(response("Hi."))
        agents.Runner.run_sync(agents.Agent(name="solo", model=build_agents(server, "responses").model), "hi")
    finally:
        agents.set_trace_processors([])
    assert agentlog.flush(5)
    assert query(db, "SELECT count(*) AS n FROM llm_calls")[0]["n"] == 0
    assert [r["kind"] for r in query(db, "SELECT kind FROM spans ORDER BY started_at")] == ["task", "agent", "turn"]
