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
