"""The ingest references: what SQLite alone does with the rows agentlog wrote.

The rows are read back from a store agentlog has just written, so the
reference inserts exactly the same data (same columns, same JSON payload text,
same derived rows, same full-text rows), grouped in transactions of 1,000
events with one ``executemany`` per statement, prepared before the timer
starts. No agentlog code runs inside the timed loop; agentlog's migration
runner only creates the empty schema.

Three levels, from the ceiling down:

* ``plain``: ``al_events``' columns in a table with no index and no FTS.
* ``events_only``: the real schema, but only the ``al_events`` rows (4 indexes).
* ``full``: the real schema and every row the sink writes for these events:
  al_events, run / turn / span upserts, tool requests, the deduplicated
  conversation (al_messages) and the full-text rows, plus one al_writers
  upsert per transaction. Not included: the sink's two SELECTs (next message
  position, once per run; a request looked up when its reply lands in a later
  batch), which are reads the reference does not need.
"""

from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from agentlog.store.sqlite import connect_writer

__all__ = [
    "EVENT",
    "Chunk",
    "count_events",
    "events_only",
    "insert_chunks",
    "load_chunks",
    "open_plain",
    "open_schema",
    "rows_per_statement",
]

Row = tuple[Any, ...]
Chunk = list[tuple[str, list[Row]]]  # (statement, rows) in the order they run

CHUNK_EVENTS = 1000

_EVENT_COLUMNS = (
    "event_id, run_id, turn_id, span_id, parent_span_id, seq, ts, type, provider, model, status,"
    " input_tokens, output_tokens, cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd,"
    " duration_ms, payload"
)
EVENT = f"INSERT OR IGNORE INTO al_events ({_EVENT_COLUMNS}) VALUES ({','.join('?' * 19)})"
RUN_STARTED = (
    "INSERT INTO al_runs (run_id, name, started_at, metadata, tags, parent_run_id, implicit)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT (run_id) DO UPDATE SET name = excluded.name,"
    " started_at = excluded.started_at, metadata = excluded.metadata, tags = excluded.tags,"
    " parent_run_id = excluded.parent_run_id, implicit = excluded.implicit"
)
_RUN_STARTED_COLUMNS = (
    "run_id",
    "name",
    "started_at",
    "metadata",
    "tags",
    "parent_run_id",
    "implicit",
)
RUN_FINISHED = (
    "INSERT INTO al_runs (run_id, status, ended_at, error) VALUES (?,?,?,?) ON CONFLICT (run_id)"
    " DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at, error = excluded.error"
)
_RUN_FINISHED_COLUMNS = ("run_id", "status", "ended_at", "error")
RUN_SEEN = (
    "INSERT INTO al_runs (run_id, last_event_at) VALUES (?,?) ON CONFLICT (run_id) DO UPDATE SET"
    " last_event_at = max(coalesce(al_runs.last_event_at, 0), excluded.last_event_at)"
)
TURN_STARTED = (
    "INSERT INTO al_turns (turn_id, run_id, idx, started_at, metadata) VALUES (?,?,?,?,?)"
    " ON CONFLICT (turn_id) DO UPDATE SET run_id = excluded.run_id, idx = excluded.idx,"
    " started_at = excluded.started_at, metadata = excluded.metadata"
)
_TURN_STARTED_COLUMNS = ("turn_id", "run_id", "idx", "started_at", "metadata")
TURN_FINISHED = (
    "INSERT INTO al_turns (turn_id, run_id, status, ended_at, error) VALUES (?,?,?,?,?)"
    " ON CONFLICT (turn_id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at,"
    " error = excluded.error"
)
_TURN_FINISHED_COLUMNS = ("turn_id", "run_id", "status", "ended_at", "error")
_SPAN_OPEN_COLUMNS = (
    "span_id",
    "run_id",
    "turn_id",
    "parent_span_id",
    "kind",
    "name",
    "status_seq",
    "started_at",
    "goal",
    "label",
    "attributes",
    "provider",
    "model",
    "tool_call_id",
    "arguments",
)
SPAN_OPENED = (
    f"INSERT INTO al_spans ({', '.join(_SPAN_OPEN_COLUMNS)}) VALUES ({','.join('?' * 15)})"
    " ON CONFLICT (span_id) DO UPDATE SET run_id = excluded.run_id, turn_id = excluded.turn_id,"
    " parent_span_id = excluded.parent_span_id, kind = excluded.kind, name = excluded.name,"
    " started_at = excluded.started_at, goal = excluded.goal, label = excluded.label,"
    " attributes = excluded.attributes, provider = excluded.provider,"
    " model = coalesce(al_spans.model, excluded.model), tool_call_id = excluded.tool_call_id,"
    " arguments = excluded.arguments"
)
_SPAN_CLOSE_COLUMNS = (
    "span_id",
    "run_id",
    "turn_id",
    "kind",
    "status",
    "status_seq",
    "ended_at",
    "duration_ms",
    "result",
    "error",
    "model",
    "response_text",
    "reasoning_text",
    "stop_reason",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "ttft_ms",
    "request_id",
)
SPAN_CLOSED = (
    f"INSERT INTO al_spans ({', '.join(_SPAN_CLOSE_COLUMNS)}) VALUES ({','.join('?' * 22)})"
    " ON CONFLICT (span_id) DO UPDATE SET"
    " status = CASE WHEN excluded.status_seq >= al_spans.status_seq THEN excluded.status"
    " ELSE al_spans.status END, status_seq = max(excluded.status_seq, al_spans.status_seq),"
    " ended_at = excluded.ended_at, duration_ms = excluded.duration_ms, result = excluded.result,"
    " error = excluded.error, model = coalesce(excluded.model, al_spans.model),"
    " response_text = excluded.response_text, reasoning_text = excluded.reasoning_text,"
    " stop_reason = excluded.stop_reason, input_tokens = excluded.input_tokens,"
    " output_tokens = excluded.output_tokens, cached_tokens = excluded.cached_tokens,"
    " cache_write_tokens = excluded.cache_write_tokens, reasoning_tokens = excluded.reasoning_tokens,"
    " cost_usd = excluded.cost_usd, ttft_ms = excluded.ttft_ms,"
    " request_id = coalesce(excluded.request_id, al_spans.request_id)"
)
# A span opened and closed in the same transaction: one row, as the sink writes it.
_SPAN_WHOLE_COLUMNS = (*_SPAN_OPEN_COLUMNS, *(c for c in _SPAN_CLOSE_COLUMNS if c not in _SPAN_OPEN_COLUMNS))
SPAN_WHOLE = (
    f"INSERT INTO al_spans ({', '.join(_SPAN_WHOLE_COLUMNS)}) VALUES ({','.join('?' * len(_SPAN_WHOLE_COLUMNS))})"
    " ON CONFLICT (span_id) DO UPDATE SET run_id = excluded.run_id, turn_id = excluded.turn_id,"
    " parent_span_id = excluded.parent_span_id, kind = excluded.kind, name = excluded.name,"
    " started_at = excluded.started_at, goal = excluded.goal, label = excluded.label,"
    " attributes = excluded.attributes, provider = excluded.provider, tool_call_id = excluded.tool_call_id,"
    " arguments = excluded.arguments,"
    " status = CASE WHEN excluded.status_seq >= al_spans.status_seq THEN excluded.status"
    " ELSE al_spans.status END, status_seq = max(excluded.status_seq, al_spans.status_seq),"
    " ended_at = excluded.ended_at, duration_ms = excluded.duration_ms, result = excluded.result,"
    " error = excluded.error, response_text = excluded.response_text, reasoning_text = excluded.reasoning_text,"
    " stop_reason = excluded.stop_reason, input_tokens = excluded.input_tokens,"
    " output_tokens = excluded.output_tokens, cached_tokens = excluded.cached_tokens,"
    " cache_write_tokens = excluded.cache_write_tokens, reasoning_tokens = excluded.reasoning_tokens,"
    " cost_usd = excluded.cost_usd, ttft_ms = excluded.ttft_ms,"
    " request_id = coalesce(excluded.request_id, al_spans.request_id),"
    " model = coalesce(al_spans.model, excluded.model)"
)
TOOL_REQUEST = (
    "INSERT OR IGNORE INTO al_tool_requests (tool_call_id, span_id, run_id, turn_id, name, arguments, ts)"
    " VALUES (?,?,?,?,?,?,?)"
)
MESSAGE = (
    "INSERT OR IGNORE INTO al_messages (run_id, position, msg_hash, turn_id, span_id, direction, role,"
    " content, tool_call_id, name, tool_calls) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
SEARCH = "INSERT INTO search (body, kind, run_id, span_id, event_id) VALUES (?,?,?,?,?)"
WRITER = (
    "INSERT INTO al_writers (writer_id, host, pid, started_at, updated_at, written, dropped, queued,"
    " stats) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (writer_id) DO UPDATE SET"
    " updated_at = excluded.updated_at, written = excluded.written, dropped = excluded.dropped,"
    " queued = excluded.queued, stats = excluded.stats"
)
_ORDER = (
    EVENT,
    RUN_STARTED,
    RUN_FINISHED,
    RUN_SEEN,
    TURN_STARTED,
    TURN_FINISHED,
    SPAN_OPENED,
    SPAN_WHOLE,
    SPAN_CLOSED,
    TOOL_REQUEST,
    MESSAGE,
    SEARCH,
    WRITER,
)
_LABELS = {
    EVENT: "al_events",
    RUN_STARTED: "al_runs (started)",
    RUN_FINISHED: "al_runs (finished)",
    RUN_SEEN: "al_runs (last seen)",
    TURN_STARTED: "al_turns (started)",
    TURN_FINISHED: "al_turns (finished)",
    SPAN_OPENED: "al_spans (opened)",
    SPAN_WHOLE: "al_spans (opened and closed)",
    SPAN_CLOSED: "al_spans (closed)",
    TOOL_REQUEST: "al_tool_requests",
    MESSAGE: "al_messages",
    SEARCH: "search (FTS5)",
    WRITER: "al_writers",
}
_OPENING = frozenset({"span.started", "llm.started", "tool.started"})
_CLOSING = frozenset(
    {
        "span.finished",
        "llm.finished",
        "llm.error",
        "llm.interrupted",
        "tool.finished",
        "tool.failed",
    }
)


# -- reading back what agentlog wrote ------------------------------------------------------
class _Store:
    """The rows of one store, indexed by the event that made them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        conn.row_factory = sqlite3.Row
        q = conn.execute
        self.events: list[Row] = [
            tuple(r) for r in q(f"SELECT {_EVENT_COLUMNS} FROM al_events ORDER BY id")
        ]
        self.runs = {r["run_id"]: r for r in q("SELECT * FROM al_runs")}
        self.turns = {r["turn_id"]: r for r in q("SELECT * FROM al_turns")}
        self.spans = {r["span_id"]: r for r in q("SELECT * FROM al_spans")}
        self.tool_requests: dict[str, list[Row]] = defaultdict(list)
        for r in q(
            "SELECT tool_call_id, span_id, run_id, turn_id, name, arguments, ts FROM al_tool_requests"
        ):
            self.tool_requests[r["span_id"]].append(tuple(r))
        self.messages: dict[tuple[str, str], list[Row]] = defaultdict(list)
        self.system: dict[str, Row] = {}
        for r in q(
            "SELECT run_id, position, msg_hash, turn_id, span_id, direction, role, content,"
            " tool_call_id, name, tool_calls FROM al_messages ORDER BY run_id, position"
        ):
            if r["role"] == "system":  # one per run, but the sink retries it on every call
                self.system.setdefault(r["run_id"], tuple(r))
            else:
                self.messages[(r["span_id"], r["direction"])].append(tuple(r))
        # The recorder's counters as stored with the last batch (the same size every batch).
        self.writer: Row = tuple(
            q("SELECT writer_id, host, pid, started_at, stats FROM al_writers").fetchone()
        )
        self.search: dict[str, list[Row]] = defaultdict(list)
        for r in q("SELECT body, kind, run_id, span_id, event_id FROM search ORDER BY rowid"):
            self.search[r["event_id"]].append(tuple(r))


def load_chunks(db: Path) -> list[Chunk]:
    """Every row agentlog wrote to ``db``, as the statements of 1,000-event transactions."""
    conn = sqlite3.connect(db)
    try:
        store = _Store(conn)
    finally:
        conn.close()
    return [
        _chunk(store, store.events[i : i + CHUNK_EVENTS], n)
        for n, i in enumerate(range(0, len(store.events), CHUNK_EVENTS))
    ]


def _chunk(store: _Store, events: Sequence[Row], n: int) -> Chunk:
    ops: dict[str, list[Row]] = defaultdict(list)
    last_seen: dict[str, int] = {}
    for ev in events:
        ops[EVENT].append(ev)
        run_id, ts = ev[1], ev[6]
        if run_id is not None:
            last_seen[run_id] = max(last_seen.get(run_id, 0), ts)
        _derived(store, ev, ops)
    ops[RUN_SEEN] = list(last_seen.items())
    _merge_spans(store, ops)
    writer_id, host, pid, started_at, stats = store.writer
    ops[WRITER] = [(writer_id, host, pid, started_at, n, n * CHUNK_EVENTS, 0, 0, stats)]
    return [(stmt, ops[stmt]) for stmt in _ORDER if ops.get(stmt)]


def _derived(store: _Store, ev: Row, ops: dict[str, list[Row]]) -> None:
    """The derived rows the sink writes for one event (see sinks/sqlite.py)."""
    event_id, run_id, turn_id, span_id, _, seq, _, typ = ev[:8]
    if typ == "run.started":
        ops[RUN_STARTED].append(_pick(store.runs[run_id], _RUN_STARTED_COLUMNS))
    elif typ == "run.finished":
        ops[RUN_FINISHED].append(_pick(store.runs[run_id], _RUN_FINISHED_COLUMNS))
    elif typ == "turn.started":
        ops[TURN_STARTED].append(_pick(store.turns[turn_id], _TURN_STARTED_COLUMNS))
    elif typ == "turn.finished":
        ops[TURN_FINISHED].append(_pick(store.turns[turn_id], _TURN_FINISHED_COLUMNS))
    elif typ in _OPENING and span_id in store.spans:
        ops[SPAN_OPENED].append(_pick(store.spans[span_id], _SPAN_OPEN_COLUMNS, status_seq=seq))
        if typ == "llm.started":  # the sink tries the system prompt again on every call
            if run_id in store.system:
                ops[MESSAGE].append(store.system[run_id])
            ops[MESSAGE].extend(store.messages.get((span_id, "input"), ()))
    elif typ in _CLOSING and span_id in store.spans:
        ops[SPAN_CLOSED].append(_pick(store.spans[span_id], _SPAN_CLOSE_COLUMNS, status_seq=seq))
        ops[MESSAGE].extend(store.messages.get((span_id, "output"), ()))
    if typ in ("llm.tool_call", "llm.finished"):
        ops[TOOL_REQUEST].extend(store.tool_requests.get(span_id, ()))
    ops[SEARCH].extend(store.search.get(event_id, ()))


def _merge_spans(store: _Store, ops: dict[str, list[Row]]) -> None:
    """A span opened and closed once in the transaction is one row (as the sink does it)."""
    opens: dict[str, int] = defaultdict(int)
    closes: dict[str, list[Row]] = defaultdict(list)
    for row in ops[SPAN_OPENED]:
        opens[row[0]] += 1
    for row in ops[SPAN_CLOSED]:
        closes[row[0]].append(row)
    whole = {s for s, n in opens.items() if n == 1 and len(closes.get(s, ())) == 1}
    if not whole:
        return
    ops[SPAN_WHOLE] = [_pick(store.spans[r[0]], _SPAN_WHOLE_COLUMNS, status_seq=closes[r[0]][0][5])
                       for r in ops[SPAN_OPENED] if r[0] in whole]
    ops[SPAN_OPENED] = [r for r in ops[SPAN_OPENED] if r[0] not in whole]
    ops[SPAN_CLOSED] = [r for r in ops[SPAN_CLOSED] if r[0] not in whole]


def _pick(row: sqlite3.Row, columns: Sequence[str], **override: Any) -> Row:
    """The statement's parameters, from the final row (``override``: values it had back then)."""
    return tuple(override[c] if c in override else row[c] for c in columns)


# -- writing it again ------------------------------------------------------------------------
def open_plain(path: Path, like: Path) -> sqlite3.Connection:
    """A new file holding only ``like``'s al_events table definition: no index, no FTS."""
    src = sqlite3.connect(like)
    try:
        (ddl,) = src.execute("SELECT sql FROM sqlite_master WHERE name = 'al_events'").fetchone()
    finally:
        src.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # as agentlog's writer connection
    conn.execute(ddl)
    return conn


def open_schema(path: Path) -> sqlite3.Connection:
    """A new, empty agentlog store (agentlog's own migrations and pragmas)."""
    return connect_writer(path)


def insert_chunks(conn: sqlite3.Connection, chunks: Sequence[Chunk]) -> float:
    """Write every chunk in its own ``BEGIN IMMEDIATE`` transaction; return the seconds taken."""
    t0 = time.perf_counter()
    for chunk in chunks:
        conn.execute("BEGIN IMMEDIATE")
        for stmt, rows in chunk:
            conn.executemany(stmt, rows)
        conn.execute("COMMIT")
    return time.perf_counter() - t0


def events_only(chunks: Sequence[Chunk]) -> Iterator[Chunk]:
    """The same transactions with their al_events rows only."""
    for chunk in chunks:
        yield [(stmt, rows) for stmt, rows in chunk if stmt == EVENT]


def rows_per_statement(chunks: Sequence[Chunk]) -> dict[str, int]:
    """How many rows each statement wrote over all chunks (what the workload costs SQLite)."""
    out: dict[str, int] = {}
    for chunk in chunks:
        for stmt, rows in chunk:
            out[_LABELS[stmt]] = out.get(_LABELS[stmt], 0) + len(rows)
    return out


def count_events(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM al_events").fetchone()[0])
