"""Every event kind, end to end: publish -> SQLite -> public views -> query API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import agentlog

from helpers import query


def _agent_run(db: Path) -> str:
    """A small scripted agent touching every event kind."""
    agentlog.configure(db)
    with agentlog.run("support-bot", metadata={"user": "u42"}, tags=["prod", "eu"]) as run:
        with agentlog.turn(turn_id="turn-one"):
            agentlog.snapshot({"mode": "triage", "history": []}, phase="pre")
            request = {
                "system": "You are a support agent.",
                "messages": [{"role": "user", "content": "Where is my refund for order 42?"}],
                "tools": [{"name": "lookup_order", "parameters": {"type": "object"}}],
                "temperature": 0.2,
                "top_p": 0.9,
                "max_tokens": 256,
            }
            with agentlog.inference("openai", "gpt-4o", request=request) as call:
                call.reasoning("The user asks about ")
                call.reasoning("a refund.")
                for chunk in ("Let me ", "check ", "order 42."):
                    call.delta(chunk)
                call.tool_call("call_1", "lookup_order", {"order_id": 42})
                call.tool_call("call_2", "refund_status", {"order_id": 42})
                call.finish(
                    stop_reason="tool_calls",
                    usage={"input_tokens": 120, "output_tokens": 40, "cached_tokens": 100,
                           "cache_write_tokens": 0, "reasoning_tokens": 12},
                    cost_usd=0.0021,
                    request_id="req_abc",
                )
            with agentlog.tool_call("lookup_order", {"order_id": 42}, tool_call_id="call_1") as t:
                t.result = {"status": "shipped"}
            with pytest.raises(TimeoutError), agentlog.tool_call(
                "refund_status", {"order_id": 42}, tool_call_id="call_2"
            ):
                raise TimeoutError("refund service timed out")
            agentlog.log("mode switched", level="info", old="triage", new="refund")
            agentlog.usage(input_tokens=120, output_tokens=40, cost_usd=0.0021)
            agentlog.snapshot({"mode": "refund"}, phase="post")
        with agentlog.turn():
            with agentlog.span("planner", kind="agent", goal="resolve the refund", label="1") as planner:
                planner.set_status("planning")
                with agentlog.span("check-ledger", kind="task", label="1.1") as task:
                    task.result = "ledger ok"
                with agentlog.span("notify", kind="task", label="1.2") as notify:
                    notify.link(task.span_id or "", "depends_on")
                planner.set_status("reviewing")
                planner.result = {"resolved": True}
            with agentlog.inference("anthropic", "claude-sonnet-4-5") as broken:
                broken.delta("I was cut ")
                broken.delta("off")
                broken.interrupt("client disconnected")
            with agentlog.inference("openai", "gpt-4o") as failed:
                failed.fail("Rate limit reached", kind="rate_limit", http_status=429,
                            request_id="req_429", body={"error": {"code": "rate_limit_exceeded"}})
    assert agentlog.flush(10)
    assert run.run_id is not None
    return run.run_id


@pytest.fixture
def run_id(db: Path) -> str:
    return _agent_run(db)


def test_run_row_totals_and_metadata(db: Path, run_id: str) -> None:
    (row,) = query(db, "SELECT * FROM runs WHERE run_id = ?", run_id)
    assert row["name"] == "support-bot"
    assert row["status"] == "ok"
    assert json.loads(row["metadata"]) == {"user": "u42"}
    assert json.loads(row["tags"]) == ["prod", "eu"]
    assert row["llm_calls"] == 3 and row["tool_calls"] == 2
    assert row["input_tokens"] == 120 and row["output_tokens"] == 40
    assert row["cost_usd"] == pytest.approx(0.0021)
    assert row["started_at"].endswith("Z") and "T" in row["started_at"]
    assert row["duration_ms"] >= 0


def test_llm_call_request_response_usage(db: Path, run_id: str) -> None:
    calls = query(db, "SELECT * FROM llm_calls WHERE run_id = ? ORDER BY started_at", run_id)
    ok, cut, failed = calls
    req = json.loads(ok["request"])
    assert req["temperature"] == 0.2 and req["max_tokens"] == 256 and req["tools"][0]["name"] == "lookup_order"
    assert ok["provider"] == "openai" and ok["model"] == "gpt-4o"
    assert ok["response_text"] == "Let me check order 42."
    assert ok["reasoning_text"] == "The user asks about a refund."
    assert ok["stop_reason"] == "tool_calls" and ok["status"] == "ok"
    assert (ok["input_tokens"], ok["output_tokens"], ok["cached_tokens"], ok["cache_write_tokens"],
            ok["reasoning_tokens"]) == (120, 40, 100, 0, 12)
    assert ok["ttft_ms"] is not None and ok["duration_ms"] >= ok["ttft_ms"]
    assert ok["request_id"] == "req_abc"
    assert cut["status"] == "interrupted" and cut["response_text"] == "I was cut off"
    assert failed["status"] == "error" and "Rate limit reached" in failed["error"]
    assert failed["request_id"] == "req_429"
    (err_event,) = query(db, "SELECT payload FROM events WHERE span_id = ? AND type = 'llm.error'",
                         failed["span_id"])
    error = json.loads(err_event["payload"])["error"]
    assert error["http_status"] == 429 and error["kind"] == "rate_limit"
    assert error["body"] == {"error": {"code": "rate_limit_exceeded"}}


def test_tool_calls_join_requests_to_executions(db: Path, run_id: str) -> None:
    rows = {r["tool_call_id"]: r for r in query(db, "SELECT * FROM tool_calls WHERE run_id = ?", run_id)}
    assert set(rows) == {"call_1", "call_2"}
    assert rows["call_1"]["status"] == "ok" and json.loads(rows["call_1"]["result"]) == {"status": "shipped"}
    assert json.loads(rows["call_1"]["arguments"]) == {"order_id": 42}
    assert rows["call_2"]["status"] == "error"
    assert rows["call_2"]["error"] == "TimeoutError: refund service timed out"
    assert rows["call_1"]["llm_span_id"] == rows["call_2"]["llm_span_id"] is not None
    assert rows["call_2"]["duration_ms"] >= 0


def test_messages_are_the_conversation_in_order(db: Path, run_id: str) -> None:
    msgs = query(db, "SELECT role, content, direction FROM messages WHERE run_id = ? ORDER BY position", run_id)
    # The later calls sent no request messages, and an interrupted or failed call has no reply.
    assert [(m["role"], m["direction"]) for m in msgs] == [
        ("system", "input"), ("user", "input"), ("assistant", "output"),
    ]
    assert msgs[0]["content"] == "You are a support agent."
    assert msgs[1]["content"] == "Where is my refund for order 42?"
    assert msgs[2]["content"] == "Let me check order 42."


def test_span_tree_and_status_history(db: Path, run_id: str) -> None:
    tree = query(db, """
        WITH RECURSIVE tree(span_id, name, depth) AS (
            SELECT span_id, name, 0 FROM spans WHERE run_id = ? AND parent_span_id IS NULL
            UNION ALL
            SELECT s.span_id, s.name, t.depth + 1 FROM spans s JOIN tree t ON s.parent_span_id = t.span_id
        ) SELECT name, depth FROM tree ORDER BY depth, name""", run_id)
    depths = {r["name"]: r["depth"] for r in tree}
    assert depths["planner"] == 0 and depths["check-ledger"] == 1 and depths["notify"] == 1
    (planner,) = query(db, "SELECT * FROM spans WHERE name = 'planner'")
    assert planner["kind"] == "agent" and planner["status"] == "ok" and planner["label"] == "1"
    assert json.loads(planner["result"]) == {"resolved": True}
    history = query(db, """SELECT json_extract(payload, '$.status') AS status FROM events
                           WHERE span_id = ? AND type IN ('span.started', 'span.status', 'span.finished')
                           ORDER BY seq""", planner["span_id"])
    assert [h["status"] for h in history] == [None, "planning", "reviewing", "ok"]
    links = query(db, "SELECT * FROM al_span_links")
    assert len(links) == 1 and links[0]["relation"] == "depends_on"


def test_turns_logs_snapshots_usage(db: Path, run_id: str) -> None:
    turns = query(db, "SELECT * FROM turns WHERE run_id = ? ORDER BY turn_index", run_id)
    assert [t["turn_index"] for t in turns] == [1, 2]
    assert turns[0]["turn_id"] == "turn-one" and all(t["status"] == "ok" for t in turns)
    kinds = [r["type"] for r in query(db, "SELECT type FROM events WHERE turn_id = 'turn-one' ORDER BY seq")]
    assert kinds[0] == "turn.started" and kinds[-1] == "turn.finished"
    assert kinds.count("snapshot") == 2 and "log" in kinds and "usage" in kinds
    (log,) = query(db, "SELECT payload FROM events WHERE type = 'log'")
    assert json.loads(log["payload"]) == {"level": "info", "message": "mode switched",
                                          "fields": {"old": "triage", "new": "refund"}}
    (usage,) = query(db, "SELECT input_tokens, cost_usd FROM events WHERE type = 'usage'")
    assert usage["input_tokens"] == 120 and usage["cost_usd"] == pytest.approx(0.0021)


def test_events_have_time_ordered_ids_and_dense_sequence(db: Path, run_id: str) -> None:
    rows = query(db, "SELECT event_id, seq, ts FROM events WHERE run_id = ? ORDER BY seq", run_id)
    seqs = [r["seq"] for r in rows]
    assert seqs[0] == 1 and seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    ids = [r["event_id"] for r in rows]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(len(i) == 32 and i[12] == "7" for i in ids)  # UUIDv7 layout
    assert all(len(r["ts"]) == len("2026-01-01T00:00:00.000000Z") for r in rows)


def test_query_api_sees_the_same_run(db: Path, run_id: str) -> None:
    with agentlog.open(db) as store:
        assert [r.run_id for r in store.runs()] == [run_id]
        detail = store.run(run_id[:12])
        assert detail.run.status == "ok"
        assert detail.totals["llm_calls"] == 3 and detail.totals["tool_calls"] == 2
        assert detail.totals["errors"] == 2  # the failed inference and the failed tool
        roots = [n.span["name"] for n in detail.spans]
        assert "planner" in roots
        planner = next(n for n in detail.spans if n.span["name"] == "planner")
        assert sorted(c.span["name"] for c in planner.children) == ["check-ledger", "notify"]
        assert [m["role"] for m in detail.messages][:3] == ["system", "user", "assistant"]
        latest = store.latest_run()
        assert latest is not None and latest.run.run_id == run_id
        hits = store.search("refund")
        assert {h.kind for h in hits} >= {"message", "reasoning"}
        assert any("[refund]" in h.snippet for h in hits)
        assert store.search("timed out", kinds=["error"])[0].kind == "error"
        by_model = {r["key"]: r for r in store.stats("model")}
        assert by_model["gpt-4o"]["calls"] == 2 and by_model["gpt-4o"]["errors"] == 1
        tools = {r["key"]: r for r in store.stats("tool")}
        assert tools["refund_status"]["error_rate"] == 1.0 and tools["lookup_order"]["error_rate"] == 0.0
        assert tools["lookup_order"]["p95_duration_ms"] is not None
        events = store.events(run_id)
        assert events[0].type == "run.started" and events[-1].type == "run.finished"
        tail = store.events(run_id, since=events[-3].seq)
        assert [e.seq for e in tail] == [e.seq for e in events[-2:]]


def test_stream_deltas_are_consolidated_by_default(db: Path, run_id: str) -> None:
    rows = query(db, "SELECT payload FROM events WHERE type = 'llm.delta' ORDER BY seq")
    first = json.loads(rows[0]["payload"])
    assert first["text"] == "Let me check order 42." and first["chunks"] == 3
    assert first["first_ts"] <= first["last_ts"]


def test_keep_deltas_stores_every_chunk(db: Path) -> None:
    agentlog.configure(db, keep_deltas=True)
    with agentlog.run("r"), agentlog.inference("openai", "m") as call:
        for c in "abc":
            call.delta(c)
    assert agentlog.flush(5)
    rows = query(db, "SELECT json_extract(payload, '$.text') AS t FROM events WHERE type = 'llm.delta' ORDER BY seq")
    assert [r["t"] for r in rows] == ["a", "b", "c"]


def test_failed_run_and_interrupted_run(db: Path) -> None:
    agentlog.configure(db)
    with pytest.raises(ValueError), agentlog.run("bad"):
        raise ValueError("the plan was wrong")
    with pytest.raises(KeyboardInterrupt), agentlog.run("stopped"):
        raise KeyboardInterrupt
    assert agentlog.flush(5)
    rows = {r["name"]: r for r in query(db, "SELECT name, status, error FROM runs")}
    assert rows["bad"]["status"] == "error" and rows["bad"]["error"] == "ValueError: the plan was wrong"
    assert rows["stopped"]["status"] == "interrupted"


def test_events_outside_any_run_go_to_an_implicit_run(db: Path) -> None:
    agentlog.configure(db)
    with agentlog.inference("openai", "gpt-4o") as call:
        call.finish("hi")
    agentlog.log("loose")
    agentlog.shutdown()
    (run,) = query(db, "SELECT * FROM runs")
    assert run["implicit"] == 1 and run["status"] == "ok" and run["llm_calls"] == 1
    assert query(db, "SELECT count(*) FROM events WHERE run_id = ?", run["run_id"])[0][0] == 5


def _open_text(db: Path, expected: str) -> str | None:
    """The streamed text the store holds for the one call, once it is ``expected`` (5 s at most)."""
    import time

    deadline = time.monotonic() + 5
    text = None
    while time.monotonic() < deadline and text != expected:
        time.sleep(0.02)
        rows = query(db, "SELECT response_text, status FROM llm_calls")
        assert not rows or rows[0]["status"] == "running"
        text = rows[0]["response_text"] if rows else None
    return text


def test_a_stream_that_pauses_past_the_flush_interval_still_reaches_the_store_while_open(db: Path) -> None:
    """Chunks after a pause (the writer stopped following the quiet call) are published all the same,
    and so are chunks that keep coming between the writer's drains."""
    import time

    agentlog.configure(db, flush_interval=0.05)
    with agentlog.run("paused-stream"):
        call = agentlog.inference("openai", "gpt-4o").start()
        assert agentlog.flush(5)
        call.delta("one")
        assert _open_text(db, "one") == "one"
        time.sleep(0.3)  # several drains find nothing pending: the call is no longer followed
        call.delta(" two")
        assert _open_text(db, "one two") == "one two"
        for i in range(10):  # a steady stream across several drains
            call.delta(f" {i}")
            time.sleep(0.02)
        steady = "one two" + "".join(f" {i}" for i in range(10))
        assert _open_text(db, steady) == steady
        call.finish()
    assert agentlog.flush(5)
    (row,) = query(db, "SELECT response_text, status FROM llm_calls")
    assert (row["response_text"], row["status"]) == ("one two 0 1 2 3 4 5 6 7 8 9", "ok")


def test_stream_chunks_reach_the_store_while_the_stream_is_still_open(db: Path) -> None:
    import time

    agentlog.configure(db, flush_interval=0.05)
    with agentlog.run("slow-stream"):
        call = agentlog.inference("openai", "gpt-4o").start()
        assert agentlog.flush(5)  # the store exists; from here on only the writer's own pace counts
        for chunk in ("still ", "thinking"):
            call.delta(chunk)
        deadline = time.monotonic() + 5
        rows: list[Any] = []
        while time.monotonic() < deadline:  # the model has gone quiet mid-stream
            time.sleep(0.02)
            rows = query(db, "SELECT response_text, status FROM llm_calls")
            if rows and rows[0]["response_text"]:
                break
        assert rows and rows[0]["status"] == "running" and rows[0]["response_text"] == "still thinking"
        call.delta(" more")
        call.tool_call("call_1", "f", {})
        call.delta(" after")
        call.finish()
    assert agentlog.flush(5)
    kinds = [(r["type"], json.loads(r["payload"]).get("text")) for r in query(
        db, "SELECT type, payload FROM events WHERE type IN ('llm.delta', 'llm.tool_call') ORDER BY seq")]
    assert "".join(t or "" for k, t in kinds if k == "llm.delta") == "still thinking more after"
    assert [k for k, _ in kinds].index("llm.tool_call") == len(kinds) - 2  # order kept: the last delta follows it
    chunks = sum(json.loads(r["payload"])["chunks"] for r in query(
        db, "SELECT payload FROM events WHERE type = 'llm.delta'"))
    assert chunks == 4
