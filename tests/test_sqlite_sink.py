"""The SQLite sink's batches: a batch's rows go in as one multi-row INSERT per statement, so how
events are split into batches must not change what is stored; a value the database refuses
costs only its own event."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import agentlog
from agentlog import Event, MemorySink, SQLiteSink

_TABLES = ("al_events", "al_runs", "al_turns", "al_spans", "al_tool_requests", "al_messages", "al_span_links")


def _workload_events(tmp_path: Path, runs: int = 3, turns: int = 12) -> list[Event]:
    """Events from the public producers, as the writer hands them to sinks (encoded)."""
    mem = MemorySink()
    agentlog.configure(tmp_path / "unused.db", sinks=[mem], keep_deltas=True)
    system = {"role": "system", "content": "You are terse."}
    for r in range(runs):
        with agentlog.run(f"run-{r}", metadata={"r": r}):
            for t in range(turns):
                with agentlog.turn():
                    request = {"messages": [system, {"role": "user", "content": f"question {r}.{t}"}]}
                    call = agentlog.inference("openai", "gpt-4o-mini", request).start()
                    for d in range(3):
                        call.delta(f"part {d} of answer {r}.{t} ")
                    call.tool_call(f"call_{r}_{t}", "search", {"query": f"q{t}"})
                    call.finish(stop_reason="tool_calls", usage={"input_tokens": 10 + t, "output_tokens": 3},
                                cost_usd=0.001 * t)
                    with agentlog.tool_call("search", {"query": f"q{t}"}, tool_call_id=f"call_{r}_{t}") as tool:
                        tool.result = f"result {r}.{t}"
                    agentlog.log(f"turn {t} of run {r} done", step=t)
    agentlog.shutdown()
    return mem.events


def _dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(path)
    try:
        out = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in _TABLES}
        out["search"] = sorted(conn.execute("SELECT body, kind, run_id, span_id, event_id FROM search").fetchall(),
                               key=repr)
        return out
    finally:
        conn.close()


def test_one_large_batch_stores_the_same_rows_as_the_same_events_in_small_batches(tmp_path: Path) -> None:
    events = _workload_events(tmp_path)
    assert len(events) > 400
    whole, pieces = SQLiteSink(tmp_path / "whole.db"), SQLiteSink(tmp_path / "pieces.db")
    try:
        whole.write(events)
        for i in range(0, len(events), 50):
            pieces.write(events[i:i + 50])
    finally:
        whole.close()
        pieces.close()
    a, b = _dump(tmp_path / "whole.db"), _dump(tmp_path / "pieces.db")
    assert len(a["al_events"]) == len(events) and len(a["al_messages"]) > 0
    assert a == b


def test_a_value_the_database_refuses_is_left_out_of_its_batch_and_the_rest_kept(tmp_path: Path) -> None:
    events = [Event("log", f"ev-{i:04d}", 1_700_000_000_000_000 + i, i, "run-1", None, None, None,
                    {"message": f"line {i}"}) for i in range(600)]
    events[450].run_id = "bad \ud800 run"  # a lone surrogate cannot be bound as UTF-8
    sink = SQLiteSink(tmp_path / "s.db")
    try:
        sink.write(events)
        assert sink.take_rejected() == 1
        sink.write([Event("log", "ev-after", 1_700_000_000_100_000, 600, "run-1", None, None, None,
                          {"message": "after"})])
    finally:
        sink.close()
    conn = sqlite3.connect(tmp_path / "s.db")
    try:
        ids = {r[0] for r in conn.execute("SELECT event_id FROM al_events")}
        found = conn.execute("SELECT count(*) FROM search WHERE search MATCH 'line'").fetchone()[0]
    finally:
        conn.close()
    assert ids == {f"ev-{i:04d}" for i in range(600) if i != 450} | {"ev-after"}
    assert found == 599


def _ev(typ: str, n: int, seq: int, span: str, **payload: object) -> Event:
    return Event(typ, f"ev-{n:04d}", 1_700_000_000_000_000 + n, seq, "run-1", "turn-1", span, None, payload)


def test_a_span_opened_and_closed_in_one_batch_is_stored_as_if_written_event_by_event(tmp_path: Path) -> None:
    """The writer stores a span opened and closed in the same batch as one row: the result
    must be that of the opening then the closing, whatever else the batch holds."""
    events = [
        # closed with its model: the close's model wins
        _ev("llm.started", 1, 1, "s-model", provider="openai", model="gpt-4o", name="ask"),
        _ev("llm.finished", 2, 2, "s-model", model="gpt-4o-2024-08-06", response_text="hi", stop_reason="stop",
            usage={"input_tokens": 5, "output_tokens": 2}, cost_usd=0.5, request_id="req-1"),
        # closed without a model: the opening's stays
        _ev("llm.started", 3, 3, "s-keep", provider="anthropic", model="claude"),
        _ev("llm.error", 4, 4, "s-keep", error={"message": "boom", "request_id": "req-2"}, partial_text="par"),
        # a status, an annotation and an approval between the opening and the closing
        _ev("tool.started", 5, 5, "s-tool", name="search", arguments={"q": "x"}, tool_call_id="call-1"),
        _ev("tool.approval", 6, 6, "s-tool", decision="approved", by="alice", reason="fine"),
        _ev("span.annotate", 7, 7, "s-tool", fields={"score": 3}),
        _ev("span.status", 8, 8, "s-tool", status="waiting"),
        _ev("tool.finished", 9, 9, "s-tool", result={"ok": True}, duration_ms=12.5),
        # a close that reached the writer with a lower seq than its opening (another process)
        _ev("span.started", 10, 20, "s-late", kind="agent", name="planner", goal="plan"),
        _ev("span.finished", 11, 19, "s-late", status="ok"),
        # closed twice
        _ev("span.started", 12, 12, "s-twice", kind="task", name="t"),
        _ev("span.finished", 13, 13, "s-twice", status="error", error="first"),
        _ev("span.finished", 14, 14, "s-twice", status="ok"),
        # a status from earlier than the opening, in the same batch
        _ev("span.status", 15, 15, "s-early", status="queued"),
        _ev("span.started", 16, 16, "s-early", kind="task", name="e"),
        _ev("span.finished", 17, 17, "s-early", status="ok"),
        # opened only, and closed only
        _ev("span.started", 18, 18, "s-open", kind="task", name="o"),
        _ev("tool.failed", 19, 21, "s-closed", error="gone"),
    ]
    for e in events:
        e.payload_json()
    one, each = SQLiteSink(tmp_path / "one.db"), SQLiteSink(tmp_path / "each.db")
    try:
        one.write(events)
        for e in events:
            each.write([e])
        # a second batch reopens and recloses spans that now exist (the conflict paths)
        again = [_ev("llm.started", 30, 30, "s-model", model="gpt-4o-mini"),
                 _ev("llm.finished", 31, 31, "s-model", response_text="again"),
                 _ev("llm.started", 32, 32, "s-open", provider="openai", model="m2"),
                 _ev("llm.finished", 33, 33, "s-open", model="m3", response_text="x"),
                 _ev("llm.started", 34, 34, "s-keep", model="c2"),
                 _ev("llm.finished", 35, 35, "s-keep", model="c3", response_text="y")]
        for e in again:
            e.payload_json()
        one.write(again)
        for e in again:
            each.write([e])
    finally:
        one.close()
        each.close()
    a, b = _dump(tmp_path / "one.db"), _dump(tmp_path / "each.db")
    assert a == b
    spans = {r[0]: r for r in sqlite3.connect(tmp_path / "one.db").execute(
        "SELECT span_id, status, model, response_text, request_id FROM al_spans")}
    assert spans["s-model"][1:] == ("ok", "gpt-4o-2024-08-06", "again", "req-1")  # a reopening keeps the model
    assert spans["s-keep"][1:] == ("ok", "c3", "y", "req-2")  # a close's model replaces the stored one
    assert spans["s-late"][1] == "running"  # the close's seq is older than the opening's
    assert spans["s-tool"][1] == "ok" and spans["s-open"][2] == "m3"


def test_missing_values_are_stored_as_sql_null(tmp_path: Path) -> None:
    """The writer binds a missing value as a NaN double, which SQLite stores as NULL: every
    column a row leaves out reads back NULL (``IS NULL``, ``typeof``), never a number or text."""
    events = [_ev("llm.started", 1, 1, "s-1", provider="openai", model="m"),
              _ev("llm.finished", 2, 2, "s-1", response_text="ok"),
              _ev("log", 3, 3, "s-1", message="hello")]
    events[2].span_id = None
    for e in events:
        e.payload_json()
    sink = SQLiteSink(tmp_path / "n.db")
    try:
        sink.write(events)
    finally:
        sink.close()
    conn = sqlite3.connect(tmp_path / "n.db")
    try:
        rows = conn.execute("SELECT type, typeof(provider), typeof(input_tokens), typeof(cost_usd), typeof(span_id),"
                            " typeof(parent_span_id) FROM al_events ORDER BY seq").fetchall()
        span = conn.execute("SELECT typeof(parent_span_id), typeof(goal), typeof(input_tokens), typeof(cost_usd),"
                            " typeof(error), provider, status FROM al_spans").fetchone()
        nulls = conn.execute("SELECT count(*) FROM al_spans WHERE cost_usd IS NULL AND goal IS NULL").fetchone()
    finally:
        conn.close()
    assert rows == [("llm.started", "text", "null", "null", "text", "null"),
                    ("llm.finished", "null", "null", "null", "text", "null"),
                    ("log", "null", "null", "null", "null", "null")]
    assert span == ("null", "null", "null", "null", "null", "openai", "ok")
    assert nulls == (1,)
