"""The SQL in docs/schema.md runs, and returns rows, against a demo database."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

import agentlog
from agentlog.demo import write_demo

DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"
QUERIES = re.findall(r"```sql\n(.*?)```", DOC.read_text("utf-8"), re.S)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("docs") / "demo.db"
    write_demo(db)
    agentlog.shutdown()
    return db


def test_the_page_has_the_example_queries() -> None:
    assert len(QUERIES) >= 12


@pytest.mark.parametrize("sql", QUERIES, ids=[q.split("\n")[0][:40] for q in QUERIES])
def test_documented_query_runs(demo_db: Path, sql: str) -> None:
    conn = sqlite3.connect(demo_db)
    try:
        run_id, turn_id = conn.execute("SELECT run_id, turn_id FROM turns ORDER BY started_at LIMIT 1").fetchone()
        span_id = conn.execute("SELECT span_id FROM spans WHERE kind = 'agent'").fetchone()[0]
        params = {"run": run_id, "turn": turn_id, "span": span_id}
        rows = conn.execute(sql, {k: v for k, v in params.items() if f":{k}" in sql}).fetchall()
    finally:
        conn.close()
    # The demo loses nothing, finishes its run and has no failed inference.
    expect_empty = any(k in sql for k in ("dropped > 0", "status = 'running'", "'llm.error'"))
    assert bool(rows) != expect_empty, sql


def test_every_test_the_guarantees_cite_exists() -> None:
    root = DOC.parent.parent
    text = (root / "docs" / "guarantees.md").read_text("utf-8")
    cited = re.findall(r"`((?:rel|tests)/[\w/]+\.py)::(\w+)", text)
    assert len(cited) >= 20
    for path, name in cited:
        source = root / path.replace("rel/", "tests/reliability/", 1)
        assert f"def {name}(" in source.read_text("utf-8"), f"{path}::{name}"
