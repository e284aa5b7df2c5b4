"""The SQLite store: migrations, version refusal, public views, concurrent writers, read errors."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import sqlite3
from pathlib import Path

import pytest

import agentlog
from agentlog.store.migrate import latest_version, load_migrations
from agentlog.store.sqlite import connect_writer

from helpers import query

PUBLIC_COLUMNS = {
    "runs": ["run_id", "name", "status", "started_at", "ended_at", "duration_ms", "error", "metadata",
             "llm_calls", "tool_calls", "input_tokens", "output_tokens", "cost_usd"],
    "spans": ["span_id", "run_id", "turn_id", "parent_span_id", "kind", "name", "status", "started_at",
              "ended_at", "duration_ms", "attributes"],
    "events": ["event_id", "run_id", "turn_id", "span_id", "seq", "ts", "type", "payload"],
    "llm_calls": ["span_id", "run_id", "turn_id", "provider", "model", "request", "response_text",
                  "reasoning_text", "stop_reason", "input_tokens", "output_tokens", "cached_tokens",
                  "cache_write_tokens", "reasoning_tokens", "cost_usd", "ttft_ms", "duration_ms",
                  "status", "error"],
    "messages": ["run_id", "turn_id", "span_id", "position", "role", "content", "tool_call_id"],
    "tool_calls": ["tool_call_id", "run_id", "turn_id", "span_id", "name", "arguments", "result",
                   "status", "error", "duration_ms"],
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_public_views_have_the_documented_columns_first(db: Path) -> None:
    connect_writer(db).close()
    for view, columns in PUBLIC_COLUMNS.items():
        cols = [r[1] for r in query(db, f"PRAGMA table_info({view})")]
        assert cols[: len(columns)] == columns, view


def test_migrations_are_recorded_and_applied_once(db: Path) -> None:
    connect_writer(db).close()
    connect_writer(db).close()
    rows = query(db, "SELECT version, name FROM al_migrations ORDER BY version")
    assert [(r[0], r[1]) for r in rows] == [(m.version, m.name) for m in load_migrations()]
    assert query(db, "PRAGMA journal_mode")[0][0] == "wal"


def test_a_file_from_a_newer_version_is_refused_and_left_unchanged(db: Path) -> None:
    connect_writer(db).close()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO al_migrations VALUES (?, 'from_the_future', 0)", (latest_version() + 1,))
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = _digest(db)
    with pytest.raises(agentlog.SchemaVersionError, match="newer than this agentlog understands"):
        connect_writer(db)
    with pytest.raises(agentlog.SchemaVersionError, match="Upgrade agentlog"):
        agentlog.open(db)
    assert _digest(db) == before


def test_the_recorder_sends_events_for_a_newer_file_to_a_fallback(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    connect_writer(db).close()
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO al_migrations VALUES (?, 'from_the_future', 0)", (latest_version() + 1,))
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = _digest(db)
    rec = agentlog.configure(db, shutdown_timeout=0.2)
    assert rec.publish("log") is True  # accepted; the host never sees the store's problem
    assert rec.flush(5) is True
    agentlog.shutdown()
    fallback = db.with_name("agentlog.fallback.db")
    assert rec.stats()["sinks"][f"sqlite:{db}"]["fallback"] == str(fallback)
    assert query(fallback, "SELECT count(*) FROM events")[0][0] == 3  # run.started, log, run.finished
    assert _digest(db) == before
    (msg,) = [r.getMessage() for r in caplog.records if "newer than this agentlog understands" in r.getMessage()]
    assert str(fallback) in msg


def _writer_process(db: str, worker: int, n: int) -> None:
    import agentlog as al

    al.configure(db, flush_interval=0.01, batch_size=50)
    with al.run(f"worker-{worker}"):
        for i in range(n):
            al.log("tick", worker=worker, i=i)
    ok = al.shutdown(timeout=60)
    raise SystemExit(0 if ok else 3)


@pytest.mark.parametrize("trial", range(3))
def test_eight_processes_write_one_new_file_without_errors(tmp_path: Path, trial: int) -> None:
    db = tmp_path / f"shared-{trial}.db"
    ctx = mp.get_context("spawn")  # cold starts: each process opens and migrates on its own
    procs = [ctx.Process(target=_writer_process, args=(str(db), w, 300)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * 8
    assert query(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 8 * 300
    assert query(db, "SELECT count(DISTINCT event_id) FROM events")[0][0] == query(
        db, "SELECT count(*) FROM events")[0][0]
    assert query(db, "SELECT count(*) FROM runs WHERE status = 'ok'")[0][0] == 8
    assert query(db, "SELECT sum(dropped) FROM writers")[0][0] == 0
    assert query(db, "SELECT count(*) FROM al_migrations")[0][0] == latest_version()


def test_reading_errors_are_clear(tmp_path: Path, db: Path) -> None:
    with pytest.raises(agentlog.StoreError, match="No agentlog database at"):
        agentlog.open(tmp_path / "missing.db")
    with pytest.raises(agentlog.StoreError, match="is a directory"):
        agentlog.open(tmp_path)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(agentlog.StoreError, match="not a readable agentlog database"):
        agentlog.open(junk)
    agentlog.configure(db)
    with agentlog.run("a"):
        pass
    agentlog.shutdown()
    with agentlog.open(db) as store:
        with pytest.raises(agentlog.NotFoundError, match=r"No such run: 'nope' \(see: agentlog runs\)"):
            store.run("nope")
        with pytest.raises(agentlog.QueryError, match="Invalid search query"):
            store.search('"unbalanced', raw=True)
        with pytest.raises(agentlog.QueryError, match="Empty search query"):
            store.search("   ")
        assert store.search('gpt-4o "quoted" C++') == []  # plain words never hit FTS syntax errors
        with pytest.raises(ValueError, match="group_by must be one of"):
            store.stats("colour")
        with pytest.raises(agentlog.QueryError, match="SQL error"):
            store.sql("SELECT * FROM no_such_table")


def test_ambiguous_run_prefix_names_the_candidates(db: Path) -> None:
    agentlog.configure(db)
    for rid in ("abc-1", "abc-2"):
        with agentlog.run("r", run_id=rid):
            pass
    agentlog.shutdown()
    with agentlog.open(db) as store:
        with pytest.raises(agentlog.NotFoundError, match="ambiguous: abc-1, abc-2"):
            store.run("abc")
        assert store.run("abc-2").run.run_id == "abc-2"


def test_reader_works_on_a_read_only_file(db: Path) -> None:
    agentlog.configure(db)
    with agentlog.run("ro"):
        pass
    agentlog.shutdown()
    db.chmod(0o444)
    try:
        with agentlog.open(db) as store:
            assert [r.name for r in store.runs()] == ["ro"]
    finally:
        db.chmod(0o644)


def test_a_process_that_dies_leaves_its_run_visibly_unfinished(db: Path) -> None:
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import os, agentlog
        agentlog.configure({str(db)!r}, durability="sync")
        run = agentlog.run("doomed").__enter__()
        call = agentlog.inference("openai", "gpt-4o").start()
        call.delta("half a sen")
        call.delta("tence")
        os._exit(9)   # like SIGKILL: no exit handlers run
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 9, proc.stderr
    (run,) = query(db, "SELECT status, ended_at, last_event_at FROM runs")
    assert run["status"] == "running" and run["ended_at"] is None and run["last_event_at"] is not None
    (call,) = query(db, "SELECT status, response_text FROM llm_calls")
    assert call["status"] == "running" and call["response_text"] == "half a sentence"


def test_runs_pages_are_newest_first_contiguous_and_carry_their_totals(db: Path) -> None:
    agentlog.configure(db)
    for i in range(7):
        with agentlog.run(f"job-{i}", tags=["even"] if i % 2 == 0 else None):
            call = agentlog.inference("openai", "m", {"messages": []}).start()
            call.finish("ok", usage={"input_tokens": 10 * i, "output_tokens": 1}, cost_usd=0.5)
    agentlog.shutdown()
    with agentlog.open(db) as store:
        every = store.runs(include_implicit=False)
        assert [r.name for r in every] == [f"job-{i}" for i in range(6, -1, -1)]
        pages = [store.runs(include_implicit=False, limit=3, offset=o) for o in (0, 3, 6)]
        assert [r for page in pages for r in page] == every
        assert [(r.name, r.input_tokens, r.cost_usd, r.llm_calls) for r in pages[1]] == [
            ("job-3", 30, 0.5, 1), ("job-2", 20, 0.5, 1), ("job-1", 10, 0.5, 1)
        ]
        assert [r.name for r in store.runs(tag="even", limit=2, offset=1)] == ["job-4", "job-2"]
        assert [r.name for r in store.runs(name="job-*", status="ok", limit=1)] == ["job-6"]


def test_a_runs_page_computes_the_per_run_totals_for_its_own_runs_only(db: Path) -> None:
    """The totals are correlated subqueries in the runs view: they must not run for every run."""
    from agentlog.store import queries

    agentlog.configure(db)
    with agentlog.run("one"):
        pass
    agentlog.shutdown()
    with agentlog.open(db) as store:
        conn, seen = store.connection, []
        conn.set_trace_callback(seen.append)
        queries.runs_page(conn, status=None, name=None, since=None, until=None, tag=None,
                          include_implicit=True, limit=50, offset=0)
        conn.set_trace_callback(None)
        plan = conn.execute("EXPLAIN QUERY PLAN " + seen[-1], ("x",) * seen[-1].count("?")).fetchall()
    parent = {r[0]: r[1] for r in plan}
    detail = {r[0]: r[3] for r in plan}

    def inside_the_id_list(node: int) -> bool:
        while node:
            if detail[node].startswith("LIST SUBQUERY"):
                return True
            node = parent[node]
        return False

    totals = [r[0] for r in plan if r[3].startswith("CORRELATED SCALAR SUBQUERY")]
    assert totals, [r[3] for r in plan]  # the page itself has them
    assert any(d.startswith("LIST SUBQUERY") for d in detail.values()), [r[3] for r in plan]
    assert not any(inside_the_id_list(n) for n in totals), [r[3] for r in plan]
