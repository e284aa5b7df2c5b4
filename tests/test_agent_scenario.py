"""Acceptance: a scripted multi-turn agent, recorded whole, asserted in the public views.

The agent uses the real ``openai`` client over HTTP against the fake OpenAI API. In
turn 1 the model asks for three tools at once (two ``get_weather``, one
``book_flight``); the agent runs them in parallel threads with ``@agentlog.tool``
(``book_flight`` is approved, then fails). The model then streams a request for
``research``, a tool that spawns a sub-agent whose own LLM call is its child, and
answers. Turn 2 is a short exchange. Snapshots and logs are taken along the way.
"""

from __future__ import annotations

import json
import string
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

openai = pytest.importorskip("openai")

from click.testing import CliRunner  # noqa: E402

import agentlog  # noqa: E402
from agentlog.cli import main  # noqa: E402

from fakes._server import FakeServer  # noqa: E402
from fakes.openai_fake import base_url, chat_completion, chat_stream  # noqa: E402
from helpers import query  # noqa: E402

KEY = "sk-proj-" + (string.ascii_letters + string.digits)[:40]
FLIGHTS_KEY = "fl_live_0123456789abcdef"
SYSTEM = "You plan trips. Use the tools."
ASK = "Weather in Paris and Tokyo, and book me a flight to Tokyo. Anything to know about Tokyo in spring?"
THANKS = "Thanks!"
RESEARCHER = "You research travel topics in one sentence."
BLOSSOMS = "Cherry blossoms peak in Tokyo in early April."
ANSWER = "Paris is sunny, Tokyo is rainy; no seats to Tokyo yet. Cherry blossoms peak in early April."
SPECS: Any = [
    {"type": "function", "function": {"name": name, "parameters": {
        "type": "object", "properties": {arg: {"type": "string"}}}}}
    for name, arg in (("get_weather", "city"), ("book_flight", "to"), ("research", "topic"))
]
USAGE: Any = {"prompt_tokens": 200, "completion_tokens": 30, "cached_tokens": 100}


class FlightsUnavailable(Exception):
    pass


# -- the agent ----------------------------------------------------------------------------------
class TripAgent:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.messages: list[Any] = [{"role": "system", "content": SYSTEM}]
        self.mode = "chat"
        self.tools = {"get_weather": self.get_weather, "book_flight": self.book_flight,
                      "research": self.research}

    @agentlog.tool
    def get_weather(self, city: str) -> dict[str, Any]:
        return {"city": city, "sky": {"Paris": "sunny", "Tokyo": "rainy"}[city]}

    @agentlog.tool
    def book_flight(self, to: str, api_key: str) -> str:
        call = agentlog.current_tool()
        assert call is not None
        call.approve(by="alice@example.com", reason="within the travel budget")
        call.annotate(side_effects=["seat hold requested"], airline="AZ")
        raise FlightsUnavailable(f"no seats to {to}")

    @agentlog.tool
    def research(self, topic: str) -> str:
        """A sub-agent: its own span, its own model call, its status as it goes."""
        with agentlog.span("researcher", kind="agent", goal=f"research {topic}", label="1") as sub:
            sub.set_status("searching")
            reply = self.client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "system", "content": RESEARCHER}, {"role": "user", "content": topic}])
            sub.result = reply.choices[0].message.content
            return str(sub.result)

    def state(self) -> dict[str, Any]:
        return {"mode": self.mode, "messages": len(self.messages)}

    def turn(self, text: str) -> str:
        with agentlog.turn():
            self.messages.append({"role": "user", "content": text})
            agentlog.snapshot(self.state(), phase="pre")
            answer = self.loop()
            agentlog.snapshot(self.state(), phase="post")
            return answer

    def loop(self) -> str:
        streamed = False
        while True:
            if self.messages[-1]["role"] == "tool" and not streamed:  # one streamed call per turn
                streamed = True
                with self.client.chat.completions.stream(
                        model="gpt-4o", messages=list(self.messages), tools=SPECS,
                        stream_options={"include_usage": True}) as stream:
                    message = stream.get_final_completion().choices[0].message
            else:
                reply = self.client.chat.completions.create(model="gpt-4o", messages=list(self.messages),
                                                            tools=SPECS, parallel_tool_calls=True)
                message = reply.choices[0].message
            self.messages.append(message)
            if not message.tool_calls:
                return str(message.content)
            if self.mode == "chat":
                agentlog.log("mode switched", old=self.mode, new="tools", tools=len(message.tool_calls))
                self.mode = "tools"
            self.run_tools(message.tool_calls)

    def run_tools(self, calls: list[Any]) -> None:
        """Run the calls in parallel; a tool asked for twice is told its call id, others find theirs."""
        repeated = Counter(tc.function.name for tc in calls)

        def run_one(tc: Any) -> str:
            args = json.loads(tc.function.arguments)
            if tc.function.name == "book_flight":
                args["api_key"] = FLIGHTS_KEY
            try:
                if repeated[tc.function.name] > 1:
                    with agentlog.tool_call_id(tc.id):
                        return json.dumps(self.tools[tc.function.name](**args))
                return json.dumps(self.tools[tc.function.name](**args))
            except FlightsUnavailable as exc:
                return f"error: {exc}"

        with ThreadPoolExecutor(len(calls)) as pool:
            results = list(pool.map(agentlog.bind_context(run_one), calls))
        for tc, content in zip(calls, results, strict=True):
            self.messages.append({"role": "tool", "tool_call_id": tc.id, "content": content})
            if content.startswith("error:"):
                agentlog.log("tool failed", level="warning", tool=tc.function.name, error=content)


# -- the recording ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    db = tmp_path_factory.mktemp("scenario") / "agent.db"
    with FakeServer() as server:
        server.push(
            chat_completion(tool_calls=[("call_w1", "get_weather", '{"city": "Paris"}'),
                                        ("call_w2", "get_weather", '{"city": "Tokyo"}'),
                                        ("call_b1", "book_flight", '{"to": "Tokyo"}')], usage=USAGE),
            chat_stream(["Let me ", "research that."], include_usage=True, usage=USAGE,
                        tool_calls=[("call_r1", "research", '{"topic": "Tokyo in spring"}')]),
            chat_completion(BLOSSOMS, model="gpt-4o-mini"),
            chat_completion(ANSWER, usage=USAGE),
            chat_completion("You're welcome!", usage=USAGE),
        )
        agentlog.configure(db)
        agentlog.instrument("openai")
        try:
            with openai.OpenAI(base_url=base_url(server), api_key=KEY, max_retries=0) as client, \
                    agentlog.run("trip-planner", tags=["acceptance"]) as run:
                agent = TripAgent(client)
                assert agent.turn(ASK) == ANSWER
                assert agent.turn(THANKS) == "You're welcome!"
            assert not server.script, "scripted replies left unused"
        finally:
            agentlog.uninstrument()
            agentlog.shutdown()
    assert run.run_id is not None
    yield db, run.run_id


def test_the_run_and_its_turns_finished(recorded: tuple[Path, str]) -> None:
    db, run_id = recorded
    (run,) = query(db, "SELECT * FROM runs WHERE run_id = ?", run_id)
    assert (run["name"], run["status"], run["error"], run["llm_calls"], run["tool_calls"]) == (
        "trip-planner", "ok", None, 5, 4)
    assert run["input_tokens"] == 4 * 200 + 12 and run["cost_usd"] > 0  # the sub-agent's call: 12 in
    turns = query(db, "SELECT turn_index, status FROM turns WHERE run_id = ? ORDER BY turn_index", run_id)
    assert [tuple(t) for t in turns] == [(1, "ok"), (2, "ok")]


def test_the_span_tree(recorded: tuple[Path, str]) -> None:
    db, run_id = recorded
    rows = [(r["depth"], r["position"], r["kind"], r["name"], r["status"], r["turn_index"]) for r in query(db, """
        SELECT t.*, u.turn_index FROM span_tree t JOIN turns u USING (turn_id)
        WHERE t.run_id = ? ORDER BY t.sort_key""", run_id)]
    parallel = sorted(rows[1:4], key=lambda r: (r[3], r[1]))
    assert [r[2:] for r in parallel] == [("tool", "book_flight", "error", 1), ("tool", "get_weather", "ok", 1),
                                         ("tool", "get_weather", "ok", 1)]
    assert sorted(r[1] for r in parallel) == ["2", "3", "4"] and {r[0] for r in parallel} == {0}
    assert [rows[0], *rows[4:]] == [
        (0, "1", "llm", "gpt-4o", "ok", 1),
        (0, "5", "llm", "gpt-4o", "ok", 1),        # streamed: asks for research
        (0, "6", "tool", "research", "ok", 1),
        (1, "6.1", "agent", "researcher", "ok", 1),
        (2, "6.1.1", "llm", "gpt-4o-mini", "ok", 1),
        (0, "7", "llm", "gpt-4o", "ok", 1),
        (0, "8", "llm", "gpt-4o", "ok", 2),
    ]
    (sub,) = query(db, "SELECT * FROM spans WHERE name = 'researcher'")
    assert (sub["goal"], sub["label"], sub["result"]) == ("research Tokyo in spring", "1", BLOSSOMS)
    with agentlog.open(db) as store:
        roots = store.tree(run_id)
        research = next(n for n in roots if n.span["name"] == "research")
        assert [(d, s["name"]) for d, s in research.walk()] == [
            (0, "research"), (1, "researcher"), (2, "gpt-4o-mini")]


def test_tool_calls_are_joined_to_the_requests_that_asked_for_them(recorded: tuple[Path, str]) -> None:
    db, run_id = recorded
    rows = {r["tool_call_id"]: r for r in query(db, """
        SELECT t.*, l.model, l.stop_reason, l.response_text AS asked_with, s.parent_span_id
        FROM tool_calls t JOIN llm_calls l ON l.span_id = t.llm_span_id JOIN spans s ON s.span_id = t.span_id
        WHERE t.run_id = ?""", run_id)}
    assert sorted(rows) == ["call_b1", "call_r1", "call_w1", "call_w2"]
    assert query(db, "SELECT count(*) FROM tool_calls WHERE run_id = ? AND (tool_call_id IS NULL"
                     " OR span_id IS NULL)", run_id)[0][0] == 0  # every execution found its request
    first, streamed = rows["call_w1"]["llm_span_id"], rows["call_r1"]["llm_span_id"]
    assert rows["call_w2"]["llm_span_id"] == rows["call_b1"]["llm_span_id"] == first != streamed
    assert rows["call_r1"]["asked_with"] == "Let me research that."
    assert all(r["model"] == "gpt-4o" and r["stop_reason"] == "tool_calls" for r in rows.values())
    assert json.loads(rows["call_w1"]["result"]) == {"city": "Paris", "sky": "sunny"}
    assert json.loads(rows["call_w2"]["result"]) == {"city": "Tokyo", "sky": "rainy"}
    assert rows["call_r1"]["result"] == BLOSSOMS and rows["call_r1"]["status"] == "ok"
    booking = rows["call_b1"]
    assert (booking["status"], booking["error"]) == ("error", "FlightsUnavailable: no seats to Tokyo")
    assert json.loads(booking["arguments"]) == {"to": "Tokyo", "api_key": "[REDACTED]"}
    assert json.loads(booking["requested_arguments"]) == {"to": "Tokyo"}
    assert (booking["approval"], booking["approval_by"], booking["approval_reason"]) == (
        "approved", "alice@example.com", "within the travel budget")
    assert json.loads(booking["annotations"]) == {"side_effects": ["seat hold requested"], "airline": "AZ"}
    assert all(r["parent_span_id"] is None for r in rows.values())  # tools run at the turn's top level
    everything = " ".join(r[0] for r in query(db, "SELECT payload FROM events"))
    assert FLIGHTS_KEY not in everything and KEY not in everything


def test_the_conversation_in_order(recorded: tuple[Path, str]) -> None:
    db, run_id = recorded
    msgs = query(db, "SELECT * FROM messages WHERE run_id = ? ORDER BY position", run_id)
    assert [m["position"] for m in msgs] == list(range(1, 15))
    assert [(m["role"], m["direction"], m["tool_call_id"] or m["content"]) for m in msgs] == [
        ("system", "input", SYSTEM),
        ("user", "input", ASK),
        ("assistant", "output", None),
        ("tool", "input", "call_w1"),
        ("tool", "input", "call_w2"),
        ("tool", "input", "call_b1"),
        ("assistant", "output", "Let me research that."),
        ("system", "input", RESEARCHER),               # the sub-agent's own conversation
        ("user", "input", "Tokyo in spring"),
        ("assistant", "output", BLOSSOMS),
        ("tool", "input", "call_r1"),
        ("assistant", "output", ANSWER),
        ("user", "input", THANKS),
        ("assistant", "output", "You're welcome!"),
    ]
    assert [c["id"] for c in json.loads(msgs[2]["tool_calls"])] == ["call_w1", "call_w2", "call_b1"]
    assert msgs[5]["content"] == "error: no seats to Tokyo"


def test_statuses_over_time(recorded: tuple[Path, str]) -> None:
    db, run_id = recorded
    history = query(db, """SELECT h.status, h.note FROM status_history h JOIN spans s USING (span_id)
                           WHERE s.name = 'researcher' ORDER BY h.seq""")
    assert [h["status"] for h in history] == ["running", "searching", "ok"]
    statuses = query(db, "SELECT kind, status, count(*) AS n FROM spans WHERE run_id = ?"
                         " GROUP BY kind, status ORDER BY kind, status", run_id)
    assert [tuple(r) for r in statuses] == [("agent", "ok", 1), ("llm", "ok", 5), ("tool", "error", 1),
                                            ("tool", "ok", 3)]


def test_snapshots_and_logs(recorded: tuple[Path, str]) -> None:
    db, run_id = recorded
    rows = query(db, """SELECT e.type, e.payload, u.turn_index FROM events e JOIN turns u USING (turn_id)
                        WHERE e.run_id = ? AND e.type IN ('snapshot', 'log') ORDER BY e.seq""", run_id)
    seen = [(r["type"], r["turn_index"], json.loads(r["payload"])) for r in rows]
    assert seen == [
        ("snapshot", 1, {"phase": "pre", "state": {"mode": "chat", "messages": 2}}),
        ("log", 1, {"level": "info", "message": "mode switched",
                    "fields": {"old": "chat", "new": "tools", "tools": 3}}),
        ("log", 1, {"level": "warning", "message": "tool failed",
                    "fields": {"tool": "book_flight", "error": "error: no seats to Tokyo"}}),
        ("snapshot", 1, {"phase": "post", "state": {"mode": "tools", "messages": 9}}),
        ("snapshot", 2, {"phase": "pre", "state": {"mode": "tools", "messages": 10}}),
        ("snapshot", 2, {"phase": "post", "state": {"mode": "tools", "messages": 11}}),
    ]


def test_agentlog_show_tells_the_whole_story(recorded: tuple[Path, str]) -> None:
    db, run_id = recorded
    result = CliRunner().invoke(main, ["show", run_id, "--db", str(db)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(f"Run {run_id}  trip-planner  [ok]")
    assert "5 LLM, 4 tool, 1 failed" in out
    assert "\n    tool  research  ok" in out and "\n      agent 1 researcher  ok" in out
    assert "\n        llm   gpt-4o-mini  ok" in out
    assert "\n  book_flight  error" in out and "approved by alice@example.com: within the travel budget" in out
    assert "snapshot pre: " in out and "snapshot post: " in out
    assert 'log warning: tool failed tool=book_flight error="error: no seats to Tokyo"' in out
    assert "status researcher -> searching" in out
