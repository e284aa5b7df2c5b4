"""The demo run: a realistic, deterministic support-agent session written through the public API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agentlog
from agentlog.demo import ANSWER_WHERE, PLAN_LOOKUP, write_demo


@pytest.fixture(autouse=True)
def _strict_and_shut_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AGENTLOG_STRICT", "1")
    yield
    agentlog.shutdown()


@pytest.fixture
def demo_db(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "demo.db"
    return db, write_demo(db)


@pytest.fixture
def detail(demo_db: tuple[Path, str]) -> Iterator[agentlog.RunDetail]:
    db, run_id = demo_db
    with agentlog.open(db) as store:
        yield store.run(run_id)


def test_demo_is_one_finished_run_of_three_turns(demo_db: tuple[Path, str]) -> None:
    db, run_id = demo_db
    with agentlog.open(db) as store:
        runs = store.runs()
        detail = store.run(run_id)
    assert [r.run_id for r in runs] == [run_id]
    assert detail.run.name == "support-bot"
    assert detail.run.status == "ok"
    assert detail.run.metadata["demo"] is True
    assert [t["turn_index"] for t in detail.turns] == [1, 2, 3]
    assert all(t["status"] == "ok" for t in detail.turns)


def test_llm_calls_carry_streamed_text_reasoning_tokens_and_cost(demo_db: tuple[Path, str]) -> None:
    db, run_id = demo_db
    with agentlog.open(db) as store:
        detail = store.run(run_id)
        deltas = store.events(run_id, types=["llm.delta", "llm.reasoning"])
    calls = detail.llm_calls
    assert len(calls) == 6
    assert {c["model"] for c in calls} == {"o4-mini", "gpt-4o-mini"}
    assert calls[0]["response_text"] == PLAN_LOOKUP.text
    assert calls[1]["response_text"] == ANSWER_WHERE.text
    assert calls[1]["reasoning_text"] == ANSWER_WHERE.reasoning
    assert {e.type for e in deltas} == {"llm.delta", "llm.reasoning"}
    assert all(c["status"] == "ok" and c["input_tokens"] and c["output_tokens"] for c in calls)
    assert all(c["cost_usd"] > 0 for c in calls)
    totals = detail.totals
    assert totals["cached_tokens"] > 0
    assert totals["reasoning_tokens"] > 0
    assert totals["cost_usd"] == pytest.approx(sum(c["cost_usd"] for c in calls))


def test_two_tool_calls_requested_by_the_model_one_fails(detail: agentlog.RunDetail) -> None:
    tools = {t["name"]: t for t in detail.tool_calls}
    assert set(tools) == {"lookup_order", "track_shipment", "ship_replacement"}
    assert tools["lookup_order"]["status"] == "ok"
    assert "ceramic teapot" in tools["lookup_order"]["result"]
    assert tools["track_shipment"]["status"] == "error"
    assert tools["track_shipment"]["error"].startswith("CarrierTimeout:")
    assert tools["track_shipment"]["arguments"]["api_key"] == "[REDACTED]"
    first_llm = detail.llm_calls[0]["span_id"]
    asked = detail.messages[2]["tool_calls"]
    for requested in asked:  # each execution found its request by name
        tool = tools[requested["name"]]
        assert (tool["tool_call_id"], tool["llm_span_id"]) == (requested["id"], first_llm)
    assert detail.totals["errors"] == 1


def test_the_agent_runs_an_approved_tool_with_side_effects(detail: agentlog.RunDetail) -> None:
    (ship,) = [t for t in detail.tool_calls if t["name"] == "ship_replacement"]
    assert ship["status"] == "ok" and ship["tool_call_id"] is None and ship["llm_span_id"] is None
    assert (ship["approval"], ship["approval_by"]) == ("approved", "replacement-agent")
    assert ship["annotations"]["side_effects"][0] == "replacement order A-1042-R created"
    assert ship["turn_id"] == detail.turns[1]["turn_id"]


def test_sub_agent_is_a_nested_span_with_status_transitions(demo_db: tuple[Path, str]) -> None:
    db, run_id = demo_db
    with agentlog.open(db) as store:
        detail = store.run(run_id)
        statuses = store.events(run_id, types=["span.status"])
    agents = [n for n in detail.spans if n.span["kind"] == "agent"]
    assert len(agents) == 1
    agent = agents[0]
    assert agent.span["name"] == "replacement-agent"
    assert agent.span["turn_id"] == detail.turns[1]["turn_id"]
    tree = [(depth, s["kind"], s["name"], s["label"]) for depth, s in agent.walk()]
    assert tree == [(0, "agent", "replacement-agent", "2"), (1, "task", "check_reship_policy", "2.1"),
                    (2, "llm", "gpt-4o-mini", None), (1, "task", "pick_courier", "2.2")]
    policy, courier = agent.children
    assert [(link["relation"], link["target_span_id"]) for link in courier.links] == [
        ("depends_on", policy.span["span_id"])]
    assert [e.payload["status"] for e in statuses] == ["checking policy", "approved"]
    assert {e.span_id for e in statuses} == {agent.span["span_id"]}


def test_log_snapshot_and_usage_events_are_recorded(demo_db: tuple[Path, str]) -> None:
    db, run_id = demo_db
    with agentlog.open(db) as store:
        events = store.events(run_id, types=["log", "snapshot", "usage"])
    logs = [e.payload for e in events if e.type == "log"]
    assert logs == [{"level": "info", "message": "mode switched", "fields": {
        "old": "self-service", "new": "escalation", "reason": "customer asked for a replacement"}}]
    phases = [e.payload["phase"] for e in events if e.type == "snapshot"]
    assert phases == ["pre", "post", "pre", "post"]
    (usage,) = [e.payload for e in events if e.type == "usage"]
    assert usage["cached_tokens"] > 0 and usage["reasoning_tokens"] > 0 and usage["cost_usd"] > 0


def test_messages_are_the_conversation_in_order(detail: agentlog.RunDetail) -> None:
    positions = [m["position"] for m in detail.messages]
    assert positions == list(range(1, len(positions) + 1))
    roles = [m["role"] for m in detail.messages]
    assert roles[:6] == ["system", "user", "assistant", "tool", "tool", "assistant"]
    assert roles[-2:] == ["user", "assistant"]
    assert detail.messages[1]["content"].startswith("Hi! My order A-1042")
    asked = detail.messages[2]["tool_calls"]
    assert [c["name"] for c in asked] == ["lookup_order", "track_shipment"]
    assert detail.messages[3]["tool_call_id"] == asked[0]["id"]


def _content(db: Path) -> dict[str, Any]:
    """Everything the demo recorded, minus ids, timestamps and durations."""
    volatile = {"run_id", "turn_id", "span_id", "parent_span_id", "llm_span_id", "event_id",
                "tool_call_id", "started_at", "ended_at", "last_event_at", "duration_ms", "ttft_ms",
                "id", "path"}

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in volatile}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    with agentlog.open(db) as store:
        run_id = store.runs()[0].run_id
        d = store.run(run_id)
        events = store.events(run_id, types=["log", "snapshot", "usage", "span.status"])
        return clean({
            "run": dict(vars(d.run)),
            "turns": d.turns,
            "tree": [[[depth, s] for depth, s in root.walk()] for root in d.spans],
            "messages": d.messages,
            "llm": d.llm_calls,
            "tools": d.tool_calls,
            "totals": d.totals,
            "events": [[e.type, e.payload] for e in events],
        })


def test_every_demo_run_records_the_same_content(tmp_path: Path) -> None:
    write_demo(tmp_path / "a.db")
    write_demo(tmp_path / "b.db")
    assert _content(tmp_path / "a.db") == _content(tmp_path / "b.db")


def test_write_demo_refuses_a_directory_quickly(tmp_path: Path) -> None:
    with pytest.raises(agentlog.StoreError, match="is a directory"):
        write_demo(tmp_path)
