"""Every SELECT the read side runs, in one place, over the public views.

Readers (the Python query API, the CLI, later the web viewer) call these;
a PostgreSQL store will provide the same functions over the same views.
"""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = [
    "GROUPINGS",
    "find_run_ids",
    "run_events",
    "run_links",
    "run_llm_calls",
    "run_messages",
    "run_row",
    "run_spans",
    "run_tool_calls",
    "run_tree",
    "run_turns",
    "runs_page",
    "search",
    "span_exists",
    "stats",
    "status_history",
]

Rows = list[sqlite3.Row]


def runs_page(
    conn: sqlite3.Connection,
    *,
    status: str | None,
    name: str | None,
    since: str | None,
    until: str | None,
    tag: str | None,
    include_implicit: bool,
    limit: int,
    offset: int,
) -> Rows:
    where: list[str] = []
    args: list[Any] = []
    if status:
        where.append("status = ?")
        args.append(status)
    if name:
        where.append("name LIKE ?")
        args.append(name.replace("*", "%"))
    if since:
        where.append("started_at >= ?")
        args.append(since)
    if until:
        where.append("started_at < ?")
        args.append(until)
    if tag:
        where.append("EXISTS (SELECT 1 FROM json_each(runs.tags) WHERE value = ?)")
        args.append(tag)
    if not include_implicit:
        where.append("implicit = 0")
    # The page's ids first, then the page: selecting only run_id lets SQLite drop the view's
    # per-run totals (five correlated subqueries) for every run but the page's. Ordering all
    # of `runs` by its text started_at computed them for every run in the store (0.3 s at
    # 5,000 runs for a 50-run page).
    page = "SELECT run_id FROM runs"
    if where:
        page += " WHERE " + " AND ".join(where)
    page += " ORDER BY started_at DESC, run_id DESC LIMIT ? OFFSET ?"
    sql = f"SELECT * FROM runs WHERE run_id IN ({page}) ORDER BY started_at DESC, run_id DESC"
    return conn.execute(sql, [*args, limit, offset]).fetchall()


def find_run_ids(conn: sqlite3.Connection, run_id: str) -> list[str]:
    """Exact id, else ids starting with it (for short prefixes typed on the CLI)."""
    row = conn.execute("SELECT run_id FROM al_runs WHERE run_id = ?", (run_id,)).fetchone()
    if row:
        return [row[0]]
    escaped = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute(
        "SELECT run_id FROM al_runs WHERE run_id LIKE ? ESCAPE '\\' LIMIT 5", (escaped + "%",)
    ).fetchall()
    return [r[0] for r in rows]


def latest_run_id(conn: sqlite3.Connection, include_implicit: bool = True) -> str | None:
    sql = "SELECT run_id FROM al_runs"
    if not include_implicit:
        sql += " WHERE implicit = 0"
    row = conn.execute(sql + " ORDER BY started_at DESC, run_id DESC LIMIT 1").fetchone()
    return row[0] if row else None


def run_row(conn: sqlite3.Connection, run_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()  # type: ignore[no-any-return]


def run_turns(conn: sqlite3.Connection, run_id: str) -> Rows:
    return conn.execute("SELECT * FROM turns WHERE run_id = ? ORDER BY turn_index", (run_id,)).fetchall()


def run_spans(conn: sqlite3.Connection, run_id: str) -> Rows:
    return conn.execute(
        "SELECT * FROM spans WHERE run_id = ? ORDER BY started_at, span_id", (run_id,)
    ).fetchall()


# The span_tree view's query for one run, over the public views: it reads only that
# run's spans (the view walks the whole store). docs/schema.md shows it, and a test
# keeps the two in step.
RUN_TREE = """
WITH RECURSIVE
nodes AS (
    SELECT x.span_id, x.started_at,
           (SELECT p.span_id FROM spans p WHERE p.span_id = x.parent_span_id AND p.run_id = x.run_id)
               AS tree_parent
    FROM spans x WHERE x.run_id = :run
),
ranked AS (
    SELECT span_id, tree_parent,
           row_number() OVER (PARTITION BY tree_parent ORDER BY started_at, span_id) AS rank
    FROM nodes
),
tree (span_id, parent_span_id, depth, position, path, sort_key) AS (
    SELECT span_id, NULL, 0, CAST(rank AS TEXT), span_id, printf('%06d', rank)
    FROM ranked WHERE tree_parent IS NULL
    UNION ALL
    SELECT r.span_id, r.tree_parent, t.depth + 1, t.position || '.' || r.rank, t.path || '/' || r.span_id,
           t.sort_key || '.' || printf('%06d', r.rank)
    FROM ranked r JOIN tree t ON r.tree_parent = t.span_id
)
SELECT s.*, t.depth, t.position, t.path
FROM tree t JOIN spans s ON s.span_id = t.span_id
ORDER BY t.sort_key
"""


def run_tree(conn: sqlite3.Connection, run_id: str) -> Rows:
    """A run's spans depth-first, each with depth, position ("1.2.3") and path."""
    return conn.execute(RUN_TREE, {"run": run_id}).fetchall()


def run_links(conn: sqlite3.Connection, run_id: str) -> Rows:
    return conn.execute(
        "SELECT * FROM span_links WHERE run_id = ? ORDER BY created_at, span_id", (run_id,)
    ).fetchall()


def span_exists(conn: sqlite3.Connection, span_id: str) -> bool:
    return conn.execute("SELECT 1 FROM al_spans WHERE span_id = ?", (span_id,)).fetchone() is not None


def status_history(conn: sqlite3.Connection, span_id: str) -> Rows:
    return conn.execute("SELECT * FROM status_history WHERE span_id = ? ORDER BY seq", (span_id,)).fetchall()


def run_messages(conn: sqlite3.Connection, run_id: str) -> Rows:
    return conn.execute("SELECT * FROM messages WHERE run_id = ? ORDER BY position", (run_id,)).fetchall()


def run_llm_calls(conn: sqlite3.Connection, run_id: str) -> Rows:
    return conn.execute("SELECT * FROM llm_calls WHERE run_id = ? ORDER BY started_at", (run_id,)).fetchall()


def run_tool_calls(conn: sqlite3.Connection, run_id: str) -> Rows:
    return conn.execute("SELECT * FROM tool_calls WHERE run_id = ? ORDER BY started_at", (run_id,)).fetchall()


def run_events(
    conn: sqlite3.Connection, run_id: str, since: int, limit: int | None, types: list[str] | None
) -> Rows:
    # The integer ts of al_events, the payload of the events view: a request stored by
    # reference (refs not NULL) is rebuilt there, once, in SQL.
    sql = ("SELECT event_id, run_id, turn_id, span_id, parent_span_id, seq, ts, type,"
           " CASE WHEN refs IS NULL THEN payload ELSE"
           " (SELECT v.payload FROM events v WHERE v.event_id = e.event_id) END AS payload"
           " FROM al_events e WHERE run_id = ? AND seq > ?")
    args: list[Any] = [run_id, since]
    if types:
        sql += f" AND type IN ({','.join('?' * len(types))})"
        args += types
    sql += " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    return conn.execute(sql, args).fetchall()


def search(conn: sqlite3.Connection, match: str, run_id: str | None, kinds: list[str] | None, limit: int) -> Rows:
    sql = ("SELECT run_id, span_id, event_id, kind, snippet(search, 0, '[', ']', '…', 12) AS snippet,"
           " rank FROM search WHERE search MATCH ?")
    args: list[Any] = [match]
    if run_id:
        sql += " AND run_id = ?"
        args.append(run_id)
    if kinds:
        sql += f" AND kind IN ({','.join('?' * len(kinds))})"
        args += kinds
    sql += " ORDER BY rank LIMIT ?"
    args.append(limit)
    return conn.execute(sql, args).fetchall()


_LLM_TOTALS = (
    "count(*) AS calls, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,"
    " sum(cached_tokens) AS cached_tokens, sum(cache_write_tokens) AS cache_write_tokens,"
    " sum(reasoning_tokens) AS reasoning_tokens, sum(cost_usd) AS cost_usd,"
    " sum(status != 'ok') AS errors, avg(duration_ms) AS mean_duration_ms"
)
GROUPINGS = {
    "model": f"SELECT model AS key, {_LLM_TOTALS} FROM llm_calls GROUP BY model ORDER BY cost_usd DESC, calls DESC",
    "provider": f"SELECT provider AS key, {_LLM_TOTALS} FROM llm_calls GROUP BY provider ORDER BY calls DESC",
    "run": f"SELECT run_id AS key, {_LLM_TOTALS} FROM llm_calls GROUP BY run_id ORDER BY min(started_at) DESC",
    "day": f"SELECT substr(started_at, 1, 10) AS key, {_LLM_TOTALS} FROM llm_calls GROUP BY key ORDER BY key DESC",
    "tool": (
        "SELECT name AS key, count(*) AS calls, sum(status = 'error') AS errors,"
        " round(1.0 * sum(status = 'error') / count(*), 4) AS error_rate,"
        " avg(duration_ms) AS mean_duration_ms FROM tool_calls WHERE span_id IS NOT NULL"
        " GROUP BY name ORDER BY calls DESC"
    ),
}


def stats(conn: sqlite3.Connection, group_by: str) -> Rows:
    return conn.execute(GROUPINGS[group_by]).fetchall()


def tool_durations(conn: sqlite3.Connection, name: str) -> list[float]:
    rows = conn.execute(
        "SELECT duration_ms FROM tool_calls WHERE name = ? AND duration_ms IS NOT NULL ORDER BY duration_ms",
        (name,),
    ).fetchall()
    return [r[0] for r in rows]
