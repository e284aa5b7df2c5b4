"""Task graphs: the span tree with depth and position, status history, extra edges; views and Store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import agentlog
from agentlog.store import queries
from agentlog.store.migrate import _statements, load_migrations
from agentlog.store.sqlite import connect_writer

from helpers import query


def planner_run(db: Path) -> str:
    """A planner that spawns sub-tasks that spawn sub-tasks, with status changes and dependencies."""
    agentlog.configure(db)
    with agentlog.run("planner") as run, agentlog.turn():
        with agentlog.span("plan trip", kind="agent", goal="a weekend in Rome", label="1") as plan:
            plan.set_status("planning", note="3 sub-tasks")
            with agentlog.span("flights", kind="task", label="1.1") as flights:
                flights.set_status("waiting", note="airline API slow")
                with agentlog.span("compare fares", kind="task", label="1.1.1") as fares:
                    fares.result = {"cheapest": "AZ 609"}
                flights.result = "AZ 609"
            with agentlog.span("hotel", kind="task", label="1.2") as hotel:
                hotel.link(flights.span_id or "", "depends_on")
                with pytest.raises(LookupError), agentlog.span("book hotel", kind="task", label="1.2.1"):
                    raise LookupError("no rooms")
                hotel.set_status("replanning")
            plan.set_status("done")
            plan.result = {"booked": ["flight"]}
        with agentlog.span("summary", kind="task") as summary:
            summary.link(plan.span_id or "", "summarises")
    assert agentlog.flush(5)
    assert run.run_id is not None
    return run.run_id


@pytest.fixture
def run_id(db: Path) -> str:
    return planner_run(db)


def test_span_tree_view_gives_depth_position_and_path(db: Path, run_id: str) -> None:
    rows = query(db, "SELECT * FROM span_tree WHERE run_id = ? ORDER BY sort_key", run_id)
    assert [(r["name"], r["depth"], r["position"], r["label"]) for r in rows] == [
        ("plan trip", 0, "1", "1"),
        ("flights", 1, "1.1", "1.1"),
        ("compare fares", 2, "1.1.1", "1.1.1"),
        ("hotel", 1, "1.2", "1.2"),
        ("book hotel", 2, "1.2.1", "1.2.1"),
        ("summary", 0, "2", None),
    ]
    ids = {r["name"]: r["span_id"] for r in rows}
    fares = rows[2]
    assert fares["path"] == "/".join([ids["plan trip"], ids["flights"], ids["compare fares"]])
    assert fares["parent_span_id"] == ids["flights"] and rows[0]["parent_span_id"] is None
    assert json.loads(fares["result"]) == {"cheapest": "AZ 609"}
    assert rows[4]["status"] == "error" and rows[4]["error"] == "LookupError: no rooms"
    assert rows[0]["goal"] == "a weekend in Rome" and rows[0]["kind"] == "agent"


def test_the_documented_one_run_query_agrees_with_the_view(db: Path, run_id: str) -> None:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        fast = [(r["span_id"], r["depth"], r["position"], r["path"]) for r in queries.run_tree(conn, run_id)]
        view = [tuple(r) for r in conn.execute(
            "SELECT span_id, depth, position, path FROM span_tree WHERE run_id = ? ORDER BY sort_key", (run_id,))]
    finally:
        conn.close()
    assert fast == view and len(fast) == 6
    doc = (Path(__file__).resolve().parent.parent / "docs" / "schema.md").read_text("utf-8")
    assert queries.RUN_TREE.strip().split("SELECT s.*")[0] in doc  # docs/schema.md shows this query


def test_status_history_lists_every_transition_with_its_duration(db: Path, run_id: str) -> None:
    (plan,) = query(db, "SELECT span_id FROM spans WHERE name = 'plan trip'")
    rows = query(db, "SELECT * FROM status_history WHERE span_id = ? ORDER BY seq", plan["span_id"])
    assert [(r["status"], r["previous_status"], r["note"]) for r in rows] == [
        ("running", None, None), ("planning", "running", "3 sub-tasks"),
        ("done", "planning", None), ("ok", "done", None),
    ]
    assert all(r["duration_ms"] >= 0 for r in rows[:-1]) and rows[-1]["duration_ms"] is None
    assert json.loads(rows[1]["fields"]) == {"status": "planning", "note": "3 sub-tasks"}
    assert rows[0]["fields"] is None and rows[-1]["fields"] is None  # not the whole closing payload
    (book,) = query(db, "SELECT span_id FROM spans WHERE name = 'book hotel'")
    assert [r["status"] for r in query(db, "SELECT status FROM status_history WHERE span_id = ? ORDER BY seq",
                                       book["span_id"])] == ["running", "error"]
    (hotel,) = query(db, "SELECT status FROM spans WHERE name = 'hotel'")
    assert hotel["status"] == "ok"  # the close comes after "replanning": the last status wins


def test_extra_edges_are_in_span_links(db: Path, run_id: str) -> None:
    rows = query(db, """SELECT a.name AS source, l.relation, b.name AS target FROM span_links l
                        JOIN spans a ON a.span_id = l.span_id JOIN spans b ON b.span_id = l.target_span_id
                        WHERE l.run_id = ? ORDER BY l.created_at""", run_id)
    assert [tuple(r) for r in rows] == [("hotel", "depends_on", "flights"), ("summary", "summarises", "plan trip")]


def test_store_tree_and_status_history(db: Path, run_id: str) -> None:
    with agentlog.open(db) as store:
        roots = store.tree(run_id[:10])
        assert [r.span["name"] for r in roots] == ["plan trip", "summary"]
        plan = roots[0]
        assert [c.span["name"] for c in plan.children] == ["flights", "hotel"]
        hotel = plan.children[1]
        assert hotel.span["depth"] == 1 and hotel.span["position"] == "1.2"
        flights_id = plan.children[0].span["span_id"]
        assert [(link["relation"], link["target_span_id"]) for link in hotel.links] == [("depends_on", flights_id)]
        assert [(d, s["name"]) for d, s in plan.walk()] == [
            (0, "plan trip"), (1, "flights"), (2, "compare fares"), (1, "hotel"), (2, "book hotel")]
        assert store.run(run_id).spans == roots
        history = store.status_history(flights_id)
        assert [(h["status"], h["note"]) for h in history] == [
            ("running", None), ("waiting", "airline API slow"), ("ok", None)]
        with pytest.raises(agentlog.NotFoundError, match="No such span: 'nope'"):
            store.status_history("nope")


def test_a_run_started_inside_a_span_of_another_starts_its_own_tree(db: Path) -> None:
    agentlog.configure(db)
    with agentlog.run("outer"), agentlog.span("dispatcher", kind="agent"), \
            agentlog.run("inner") as inner, agentlog.span("worker", kind="agent"):
        pass
    assert agentlog.flush(5)
    (row,) = query(db, "SELECT name, depth, position, parent_span_id FROM span_tree WHERE run_id = ?",
                   inner.run_id)
    assert tuple(row) == ("worker", 0, "1", None)
    (run,) = query(db, "SELECT r.parent_run_id = o.run_id FROM runs r JOIN runs o ON o.name = 'outer'"
                       " WHERE r.name = 'inner'")
    assert run[0] == 1  # the runs are linked instead


def test_a_store_from_schema_version_1_is_migrated_and_its_spans_read(db: Path) -> None:
    first = load_migrations()[0]
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE al_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied_at INTEGER NOT NULL)")
    for stmt in _statements(first.sql):
        conn.execute(stmt)
    conn.execute("INSERT INTO al_migrations VALUES (1, ?, 0)", (first.name,))
    rows: list[tuple[Any, ...]] = [("root", None, 1), ("child", "root", 2)]
    conn.executemany("INSERT INTO al_spans (span_id, run_id, parent_span_id, kind, started_at)"
                     " VALUES (?, 'old-run', ?, 'task', ?)", rows)
    conn.close()
    connect_writer(db).close()
    assert [tuple(r) for r in query(db, "SELECT version FROM al_migrations ORDER BY version")] == [
        (m.version,) for m in load_migrations()]
    tree = query(db, "SELECT span_id, depth, position, approval FROM span_tree"
                     " LEFT JOIN tool_calls USING (span_id) ORDER BY sort_key")
    assert [tuple(r) for r in tree] == [("root", 0, "1", None), ("child", 1, "1.1", None)]
