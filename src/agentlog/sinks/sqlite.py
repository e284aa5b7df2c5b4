"""The default sink: one SQLite file, one ``BEGIN IMMEDIATE`` transaction per batch.

Besides the raw ``al_events`` rows it maintains the derived tables behind the
public views (runs, turns, spans, tool requests, the deduplicated conversation,
the full-text index) with upserts written so that their effect does not depend
on the order they run in; this lets a batch run one multi-row INSERT per
statement instead of one statement per event.

The connection is opened lazily on the writer thread, so ``configure()`` never
blocks on a slow or locked file. Environmental errors (locked, disk full,
read-only) raise, and the recorder retries the batch on a fresh connection; an
event the database itself refuses is isolated, left out and counted in
``take_rejected()``. A file agentlog must not write into (damaged, foreign, a
directory, a newer schema) is left untouched and the sink writes to
``<name>.fallback.db`` beside it instead, saying so once in the log.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from .._gil import share_gil
from ..errors import UnusableStoreError
from ..events import SPAN_CLOSING, SPAN_OPENING, USAGE_KEYS, Event
from ..store.sqlite import (
    BUSY_TIMEOUT_MS,
    WAL_CHECK_EVERY,
    WAL_RESTART_BYTES,
    WAL_RESTART_WAIT_MS,
    connect_writer,
    fallback_path,
    insert_rows,
    is_damage,
)
from ._conversation import msg_hash, reply_message, request_chain
from ._requests import Part, Splitter

__all__ = ["SQLiteSink"]

log = logging.getLogger("agentlog")

_INSERT_EVENT = (
    "INSERT OR IGNORE INTO al_events (event_id, run_id, turn_id, span_id, parent_span_id, seq, ts, type,"
    " provider, model, status, input_tokens, output_tokens, cached_tokens, cache_write_tokens,"
    " reasoning_tokens, cost_usd, duration_ms, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
# The event rows of a batch that stores a request by reference (see _requests.py), all of
# them in publish order, with that request's refs; its items go in before them.
_INSERT_STARTED = (
    "INSERT OR IGNORE INTO al_events (event_id, run_id, turn_id, span_id, parent_span_id, seq, ts, type,"
    " provider, model, status, input_tokens, output_tokens, cached_tokens, cache_write_tokens,"
    " reasoning_tokens, cost_usd, duration_ms, payload, refs) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_REQUEST_ITEM = "INSERT OR IGNORE INTO al_request_items (hash, parent, item) VALUES (?,?,?)"
_RUN_STARTED = (
    "INSERT INTO al_runs (run_id, name, started_at, metadata, tags, parent_run_id, implicit)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT (run_id) DO UPDATE SET name = excluded.name,"
    " started_at = excluded.started_at, metadata = excluded.metadata, tags = excluded.tags,"
    " parent_run_id = excluded.parent_run_id, implicit = excluded.implicit"
)
_RUN_FINISHED = (
    "INSERT INTO al_runs (run_id, status, ended_at, error) VALUES (?,?,?,?)"
    " ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at,"
    " error = excluded.error"
)
_RUN_SEEN = (
    "INSERT INTO al_runs (run_id, last_event_at) VALUES (?,?) ON CONFLICT (run_id) DO UPDATE SET"
    " last_event_at = max(coalesce(al_runs.last_event_at, 0), excluded.last_event_at)"
)
_TURN_STARTED = (
    "INSERT INTO al_turns (turn_id, run_id, idx, started_at, metadata) VALUES (?,?,?,?,?)"
    " ON CONFLICT (turn_id) DO UPDATE SET run_id = excluded.run_id, idx = excluded.idx,"
    " started_at = excluded.started_at, metadata = excluded.metadata"
)
_TURN_FINISHED = (
    "INSERT INTO al_turns (turn_id, run_id, status, ended_at, error) VALUES (?,?,?,?,?)"
    " ON CONFLICT (turn_id) DO UPDATE SET status = excluded.status, ended_at = excluded.ended_at,"
    " error = excluded.error"
)
# Opening a span never touches its status (a close may already have landed);
# closing and status changes apply only if they are newer (by seq) than what is there.
_SPAN_OPENED = (
    "INSERT INTO al_spans (span_id, run_id, turn_id, parent_span_id, kind, name, status_seq, started_at,"
    " goal, label, attributes, provider, model, tool_call_id, arguments)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (span_id) DO UPDATE SET"
    " run_id = excluded.run_id, turn_id = excluded.turn_id, parent_span_id = excluded.parent_span_id,"
    " kind = excluded.kind, name = excluded.name, started_at = excluded.started_at, goal = excluded.goal,"
    " label = excluded.label, attributes = excluded.attributes, provider = excluded.provider,"
    " model = coalesce(al_spans.model, excluded.model), tool_call_id = excluded.tool_call_id,"
    " arguments = excluded.arguments"
)
_SPAN_CLOSED = (
    "INSERT INTO al_spans (span_id, run_id, turn_id, kind, status, status_seq, ended_at, duration_ms,"
    " result, error, model, response_text, reasoning_text, stop_reason, input_tokens, output_tokens,"
    " cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd, ttft_ms, request_id)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (span_id) DO UPDATE SET"
    " status = CASE WHEN excluded.status_seq >= al_spans.status_seq THEN excluded.status ELSE al_spans.status END,"
    " status_seq = max(excluded.status_seq, al_spans.status_seq),"
    " ended_at = excluded.ended_at, duration_ms = excluded.duration_ms, result = excluded.result,"
    " error = excluded.error, model = coalesce(excluded.model, al_spans.model),"
    " response_text = excluded.response_text, reasoning_text = excluded.reasoning_text,"
    " stop_reason = excluded.stop_reason, input_tokens = excluded.input_tokens,"
    " output_tokens = excluded.output_tokens, cached_tokens = excluded.cached_tokens,"
    " cache_write_tokens = excluded.cache_write_tokens, reasoning_tokens = excluded.reasoning_tokens,"
    " cost_usd = excluded.cost_usd, ttft_ms = excluded.ttft_ms,"
    " request_id = coalesce(excluded.request_id, al_spans.request_id)"
)
# A span opened and closed in the same batch (most LLM calls and tool calls): one row
# instead of an insert and an update, with the same result as _SPAN_OPENED then
# _SPAN_CLOSED (see _merge_spans). Two variants, as the close's model wins over the
# stored one only when the close names one.
_SPAN_WHOLE_COLUMNS = (
    "INSERT INTO al_spans (span_id, run_id, turn_id, parent_span_id, kind, name, status_seq, started_at,"
    " goal, label, attributes, provider, model, tool_call_id, arguments, status, ended_at, duration_ms,"
    " result, error, response_text, reasoning_text, stop_reason, input_tokens, output_tokens,"
    " cached_tokens, cache_write_tokens, reasoning_tokens, cost_usd, ttft_ms, request_id)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (span_id) DO UPDATE SET"
    " run_id = excluded.run_id, turn_id = excluded.turn_id, parent_span_id = excluded.parent_span_id,"
    " kind = excluded.kind, name = excluded.name, started_at = excluded.started_at, goal = excluded.goal,"
    " label = excluded.label, attributes = excluded.attributes, provider = excluded.provider,"
    " tool_call_id = excluded.tool_call_id, arguments = excluded.arguments,"
    " status = CASE WHEN excluded.status_seq >= al_spans.status_seq THEN excluded.status ELSE al_spans.status END,"
    " status_seq = max(excluded.status_seq, al_spans.status_seq),"
    " ended_at = excluded.ended_at, duration_ms = excluded.duration_ms, result = excluded.result,"
    " error = excluded.error, response_text = excluded.response_text, reasoning_text = excluded.reasoning_text,"
    " stop_reason = excluded.stop_reason, input_tokens = excluded.input_tokens,"
    " output_tokens = excluded.output_tokens, cached_tokens = excluded.cached_tokens,"
    " cache_write_tokens = excluded.cache_write_tokens, reasoning_tokens = excluded.reasoning_tokens,"
    " cost_usd = excluded.cost_usd, ttft_ms = excluded.ttft_ms,"
    " request_id = coalesce(excluded.request_id, al_spans.request_id),"
)
_SPAN_WHOLE_KEEP_MODEL = _SPAN_WHOLE_COLUMNS + " model = coalesce(al_spans.model, excluded.model)"
_SPAN_WHOLE_CLOSE_MODEL = _SPAN_WHOLE_COLUMNS + " model = excluded.model"
_SPAN_STATUS = (
    "INSERT INTO al_spans (span_id, run_id, turn_id, kind, status, status_seq) VALUES (?,?,?,'span',?,?)"
    " ON CONFLICT (span_id) DO UPDATE SET"
    " status = CASE WHEN excluded.status_seq >= al_spans.status_seq THEN excluded.status ELSE al_spans.status END,"
    " status_seq = max(excluded.status_seq, al_spans.status_seq)"
)
_SPAN_LINK = (
    "INSERT OR IGNORE INTO al_span_links (span_id, target_span_id, relation, run_id, created_at)"
    " VALUES (?,?,?,?,?)"
)
_SPAN_ANNOTATE = (
    "INSERT INTO al_spans (span_id, run_id, turn_id, kind, annotations) VALUES (?,?,?,'span',json_patch('{}', ?))"
    " ON CONFLICT (span_id) DO UPDATE SET"
    " annotations = json_patch(coalesce(al_spans.annotations, '{}'), excluded.annotations)"
)
# A decision applies after the ones published before it: rows go in publish order.
_TOOL_APPROVAL = (
    "INSERT INTO al_spans (span_id, run_id, turn_id, kind, approval, approval_by, approval_reason)"
    " VALUES (?,?,?,'tool',?,?,?) ON CONFLICT (span_id) DO UPDATE SET approval = excluded.approval,"
    " approval_by = excluded.approval_by, approval_reason = excluded.approval_reason"
)
_TOOL_REQUEST = (
    "INSERT OR IGNORE INTO al_tool_requests (tool_call_id, span_id, run_id, turn_id, name, arguments, ts)"
    " VALUES (?,?,?,?,?,?,?)"
)
_MESSAGE = (
    "INSERT OR IGNORE INTO al_messages (run_id, position, msg_hash, turn_id, span_id, direction, role,"
    " content, tool_call_id, name, tool_calls) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)
_SEARCH = "INSERT INTO search (body, kind, run_id, span_id, event_id) VALUES (?,?,?,?,?)"
_WRITER = (
    "INSERT INTO al_writers (writer_id, host, pid, started_at, updated_at, written, dropped, queued, stats)"
    " VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (writer_id) DO UPDATE SET updated_at = excluded.updated_at,"
    " written = excluded.written, dropped = excluded.dropped, queued = excluded.queued, stats = excluded.stats"
)
# Statement order inside a batch transaction. Every statement is order-independent
# with respect to the others on the same key (see the comments above).
_ORDER = (
    _INSERT_EVENT, _REQUEST_ITEM, _INSERT_STARTED,
    _RUN_STARTED, _RUN_FINISHED, _RUN_SEEN, _TURN_STARTED, _TURN_FINISHED,
    _SPAN_OPENED, _SPAN_WHOLE_KEEP_MODEL, _SPAN_WHOLE_CLOSE_MODEL, _SPAN_CLOSED, _SPAN_STATUS, _SPAN_LINK, _SPAN_ANNOTATE, _TOOL_APPROVAL,
    _TOOL_REQUEST, _SEARCH,
)

_KIND_OF = {"llm": "llm", "tool": "tool", "span": "span"}
_KIND_OF_TYPE = {t: t.split(".", 1)[0] for t in (*SPAN_OPENING, *SPAN_CLOSING)}  # "llm.started" -> "llm"
_NO_TOKENS: tuple[None, ...] = (None,) * len(USAGE_KEYS)
_HOST = socket.gethostname()
_INHERITED: list[sqlite3.Connection] = []  # connections a forked child must never touch


def _insert_search(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Full-text rows, one single-row INSERT each (``executemany``), not multi-row statements.

    A multi-row INSERT into an FTS5 table runs as one statement with a statement journal,
    and FTS5 (SQLite 3.40) writes its pending terms out as a new segment at each statement
    savepoint: a small segment per 64 rows, merged again later. Single-row INSERTs need no
    statement journal, so a batch's terms stay in memory until the commit writes them as
    one segment. Measured with callgrind on the ingest benchmark's workload: 15k fewer
    instructions per event for the whole writer (8 %).
    """
    conn.executemany(_SEARCH, rows)


def _busy(exc: BaseException) -> bool:
    return getattr(exc, "sqlite_errorname", "") in ("SQLITE_BUSY", "SQLITE_LOCKED")


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")


def _text(value: Any) -> str | None:
    """A column that holds text: strings as they are, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return _json(value)


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63 else None


def _num(v: Any) -> float | int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return _int(v)
    return v if isinstance(v, float) else None


def _tokens(usage: Any) -> tuple[int | None, ...]:
    """The USAGE_KEYS columns of a usage dict (the order of USAGE_KEYS)."""
    if not isinstance(usage, dict):
        return _NO_TOKENS
    get = usage.get
    return (_int(get("input_tokens")), _int(get("output_tokens")), _int(get("cached_tokens")),
            _int(get("cache_write_tokens")), _int(get("reasoning_tokens")))


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _error_text(err: Any) -> str | None:
    if err is None or isinstance(err, str):
        return err
    if isinstance(err, dict):
        msg = err.get("message")
        kind = err.get("type") or err.get("kind")
        if isinstance(msg, str):
            return f"{kind}: {msg}" if isinstance(kind, str) and kind else msg
    return _json(err)


class SQLiteSink:
    """Writes batches into an agentlog SQLite store (see module docstring)."""

    def __init__(self, path: str | Path, *, fsync: bool = False, name: str | None = None) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.name = name or f"sqlite:{self.path}"
        self._conn: sqlite3.Connection | None = None
        self._stats: dict[str, Any] | None = None
        self._positions: dict[str, int] = {}
        self._span_tail: dict[str, str] = {}  # llm span -> hash of its request's last message
        self._known: dict[str, set[str]] = {}  # run -> message hashes already stored (a cache)
        self._splitter = Splitter()  # remembers the last request of each run: a hint, checked
        self._rejected = 0
        self._closed = False
        self.fallback: Path | None = None  # set once events go to the fallback file
        self._damage: str | None = None  # the original failed as damaged while in use
        self._checked = False
        self._next_wal_check = 0.0

    # -- the contract ----------------------------------------------------------------
    def write(self, events: Sequence[Event]) -> None:
        conn = self._connect()
        ops = self._ops(conn, events)
        conn.execute("BEGIN IMMEDIATE")
        try:
            try:
                self._apply(conn, ops)
            except sqlite3.OperationalError:
                raise
            except (sqlite3.DatabaseError, ValueError, OverflowError, UnicodeError) as exc:
                if is_damage(exc):  # the file, not a value: see _after_failure
                    raise
                # Some value the database refuses: find it, keep the rest.
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                self._write_one_by_one(conn, events)
            self._write_messages(conn, events)
            self._write_stats(conn)
            conn.execute("COMMIT")
            self._bound_wal(conn)
        except BaseException as exc:
            self._positions.clear()  # positions read inside the failed transaction
            self._span_tail.clear()
            self._known.clear()
            self._after_failure(conn, exc)
            raise

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass
            conn.close()

    def after_fork(self) -> None:
        # The parent's connection: not ours to use or to close. Dropping the last reference
        # would close it (sqlite3_close in the child, on the parent's file and locks), so it
        # is kept, unused, for the life of the child.
        if self._conn is not None:
            _INHERITED.append(self._conn)
        self._conn = None
        self._positions.clear()
        self._known.clear()

    def note_stats(self, stats: dict[str, Any]) -> None:
        self._stats = stats

    def take_rejected(self) -> int:
        n, self._rejected = self._rejected, 0
        return n

    # -- internals --------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self._closed:
                raise RuntimeError(f"{self.name} is closed")
            if self.fallback is None and self._damage is not None:
                self._use_fallback(self._damage)
            target = self.fallback or self.path
            try:
                self._conn = connect_writer(target, fsync=self.fsync, deep_check=not self._checked)
            except UnusableStoreError as exc:
                if self.fallback is not None:
                    raise
                self._use_fallback(str(exc))
                self._conn = connect_writer(self.fallback or self.path, fsync=self.fsync)
            self._checked = True
        return self._conn

    def _bound_wal(self, conn: sqlite3.Connection) -> None:
        """Restart the WAL when readers have kept it from restarting by itself.

        SQLite's automatic checkpoints are PASSIVE: they copy what no reader still
        needs, and the next commit rewinds the WAL only if, at that moment, no reader
        holds a snapshot inside it. A reader that keeps opening short transactions can
        hold one at every commit, and the WAL then grows without end. Past
        ``WAL_RESTART_BYTES`` (checked at most once a second, one ``stat``), a RESTART
        checkpoint waits up to ``WAL_RESTART_WAIT_MS`` for the readers of old snapshots
        to finish (new ones read the database file), so the next commit rewinds the
        WAL, and ``journal_size_limit`` then truncates the file. A reader that holds
        one transaction open keeps everything written since it began, by design; the
        WAL is rewound within about a second after it ends.
        """
        now = time.monotonic()
        if now < self._next_wal_check:
            return
        self._next_wal_check = now + WAL_CHECK_EVERY
        try:
            if os.stat(f"{self.fallback or self.path}-wal").st_size <= WAL_RESTART_BYTES:
                return
            conn.execute(f"PRAGMA busy_timeout={WAL_RESTART_WAIT_MS}")
            try:
                conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
            finally:
                conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        except (OSError, sqlite3.Error):
            pass  # the batch is committed; a later check tries again

    def _use_fallback(self, reason: str) -> None:
        self.fallback = fallback_path(self.path)
        self._checked = False
        log.error("agentlog: not writing to %s: %s -- events are recorded in %s instead; the original"
                  " is not modified (see: agentlog doctor %s)", self.path, reason, self.fallback, self.path)

    def _after_failure(self, conn: sqlite3.Connection, exc: BaseException) -> None:
        """Roll back; on anything but a busy file, reconnect next time (a chmod, a freed disk)."""
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite may have rolled back itself (disk full, I/O error)
        if is_damage(exc) and self.fallback is None:
            self._damage = f"{self.path} is damaged ({exc})"
        elif not isinstance(exc, sqlite3.OperationalError) or _busy(exc):
            return
        self._conn = None
        try:
            conn.close()
        except sqlite3.Error:
            pass

    def _apply(self, conn: sqlite3.Connection, ops: dict[str, list[tuple[Any, ...]]]) -> None:
        for stmt in _ORDER:
            rows = ops.get(stmt)
            if rows:
                if stmt is _SEARCH:
                    _insert_search(conn, rows)
                else:
                    insert_rows(conn, stmt, rows)

    def _write_one_by_one(self, conn: sqlite3.Connection, events: Sequence[Event]) -> None:
        for ev in events:
            conn.execute("SAVEPOINT one")
            try:
                self._apply(conn, self._ops(conn, [ev]))
                conn.execute("RELEASE one")
            except sqlite3.OperationalError:
                raise
            except (sqlite3.DatabaseError, ValueError, OverflowError, UnicodeError) as exc:
                if is_damage(exc):
                    raise
                conn.execute("ROLLBACK TO one")
                conn.execute("RELEASE one")
                self._rejected += 1
                log.error("agentlog: %s refused a %s event (%s); it was left out", self.name, ev.type, exc)

    def _write_stats(self, conn: sqlite3.Connection) -> None:
        s = self._stats
        if s is None:
            return
        mine = s["sinks"].get(self.name, {})
        dropped = sum(s["dropped"].values())
        conn.execute(
            _WRITER,
            (s["writer_id"], _HOST, s["pid"], s["started_at"], time.time_ns() // 1000,
             mine.get("written", 0), dropped, s["queued"], _json(s)),
        )

    def _rows(self, events: Sequence[Event]) -> dict[str, list[tuple[Any, ...]]]:
        """Every statement's parameter rows for ``events``, one list per statement.

        The hot loop of the writer: one ``al_events`` row per event, written out
        field by field (no helper call for a column that is a plain string or
        float, no token columns read unless the payload has usage), plus the rows
        of the derived tables from the event type's handler.
        """
        ops: dict[str, list[tuple[Any, ...]]] = {stmt: [] for stmt in _ORDER}
        append = ops[_INSERT_EVENT].append
        handlers = _HANDLERS
        last_seen: dict[str, int] = {}
        seen = last_seen.get
        for n, ev in enumerate(events):
            if not n & 15:
                share_gil()
            p = ev.payload
            get = p.get
            typ = ev.type
            provider, model, status = get("provider"), get("model"), get("status")
            if provider is not None and not isinstance(provider, str):
                provider = None
            if model is not None and not isinstance(model, str):
                model = None
            if status is not None and not isinstance(status, str):
                status = None
            cost, duration = get("cost_usd"), get("duration_ms")
            if cost is not None and type(cost) is not float:
                cost = _num(cost)
            if duration is not None and type(duration) is not float:
                duration = _num(duration)
            data = ev._json
            if data is None:
                data = ev.payload_json()
            run_id, ts = ev.run_id, ev.ts
            usage = p if typ == "usage" else get("usage")
            if usage is None:
                append((ev.event_id, run_id, ev.turn_id, ev.span_id, ev.parent_span_id, ev.seq, ts, typ,
                        provider, model, status, None, None, None, None, None, cost, duration,
                        data.decode("utf-8")))
            else:
                t_in, t_out, t_cached, t_write, t_reason = _tokens(usage)
                append((ev.event_id, run_id, ev.turn_id, ev.span_id, ev.parent_span_id, ev.seq, ts, typ,
                        provider, model, status, t_in, t_out, t_cached, t_write, t_reason, cost, duration,
                        data.decode("utf-8")))
            if run_id is not None and seen(run_id, 0) < ts:
                last_seen[run_id] = ts
            handler = handlers.get(typ)
            if handler is not None:
                handler(ev, p, ops)
        ops[_RUN_SEEN].extend(last_seen.items())
        if ops[_SPAN_OPENED] and ops[_SPAN_CLOSED]:
            _merge_spans(ops)
        return ops

    def _ops(self, conn: sqlite3.Connection, events: Sequence[Event]) -> dict[str, list[tuple[Any, ...]]]:
        """``_rows(events)``, with each long ``llm.started`` request stored by reference.

        The rows are applied in one transaction (or one savepoint per event): an
        ``llm.started`` row refers only to items that are committed already or that
        the same ``ops`` insert, so a reference never outlives a rollback.
        """
        ops = self._rows(events)
        splits: dict[str, tuple[str, str, list[Part]]] = {}  # event id -> (payload, refs, parts)
        for ev in events:  # in publish order: the splitter compares each request with the last
            if ev.type == "llm.started":
                split = self._split(ev)
                if split is not None:
                    splits[ev.event_id] = split
        if not splits:
            return ops
        self._add_items(conn, [parts for _, _, parts in splits.values()], ops)
        # Every row through the statement with refs, in publish order: al_events' rowid
        # keeps the order events were published in, as for a batch with no split request.
        ordered = ops[_INSERT_STARTED]
        for row in ops[_INSERT_EVENT]:
            split = splits.get(row[0])
            ordered.append((*row, None) if split is None else (*row[:18], split[0], split[1]))
        ops[_INSERT_EVENT] = []
        return ops

    def _split(self, ev: Event) -> tuple[str, str, list[Part]] | None:
        try:
            return self._splitter.split(ev.run_id, ev.payload_json(), ev.payload)
        except (orjson.JSONDecodeError, ValueError, TypeError):
            return None  # not a payload this writer encoded: keep it whole

    def _add_items(self, conn: sqlite3.Connection, requests: list[list[Part]], ops: Ops) -> None:
        """Add to ``ops`` the items of ``requests`` (each one's parts) that are not stored yet.

        An item is only ever inserted after or together with the one before it, and
        never removed: a stored item means a stored head of its chain. One query per
        batch finds which of the items that matter are stored (committed: it runs
        outside the batch's transaction, or inside it for the events written one by
        one): for a request that continues the previous one of its run, the last item
        of that one (it is new only if that request was rolled back); otherwise all
        of its items (the first request a writer sees of a run another process began).
        """
        wanted: set[str] = set()
        for parts in requests:
            for part in parts:
                if part.base is None:
                    wanted.update(item[0] for item in part.items)
                else:
                    wanted.add(part.base)
        stored = self._existing(conn, wanted)
        fresh: set[str] = set()  # items these ops insert
        items = ops[_REQUEST_ITEM]
        for parts in requests:
            for part in parts:
                chain, start = part.items, 0
                if part.base is not None and part.base not in fresh and part.base not in stored:
                    chain = part.whole()  # the request it continues was not stored (rolled back)
                    stored |= self._existing(conn, {item[0] for item in chain})
                if chain is not part.items or part.base is None:
                    start = next((i + 1 for i in range(len(chain) - 1, -1, -1)
                                  if chain[i][0] in fresh or chain[i][0] in stored), 0)
                for item in chain[start:]:
                    if item[0] not in fresh:
                        fresh.add(item[0])
                        items.append(item)

    @staticmethod
    def _existing(conn: sqlite3.Connection, names: set[str]) -> set[str]:
        """Which of ``names`` are stored items."""
        found: set[str] = set()
        pending = list(names)
        try:
            for i in range(0, len(pending), 500):
                chunk = pending[i:i + 500]
                found.update(r[0] for r in conn.execute(
                    f"SELECT hash FROM al_request_items WHERE hash IN ({','.join('?' * len(chunk))})", chunk))
        except sqlite3.Error:
            return set()  # then the items are inserted again (OR IGNORE): never a missing one
        return found

    def _write_messages(self, conn: sqlite3.Connection, events: Sequence[Event]) -> None:
        """Append new conversation messages, each stored once per run."""
        rows: list[tuple[Any, ...]] = []
        search: list[tuple[Any, ...]] = []
        for ev in events:
            if ev.run_id is None or ev.type not in ("llm.started", "llm.finished"):
                continue
            share_gil()
            known = self._known.get(ev.run_id)
            if known is None:  # first time this writer sees the run: it may have history already
                known = self._known[ev.run_id] = {r[0] for r in conn.execute(
                    "SELECT msg_hash FROM al_messages WHERE run_id = ?", (ev.run_id,))}
            for direction, digest, msg in self._conversation(conn, ev):
                if digest in known:  # every request resends the conversation so far
                    continue
                known.add(digest)
                pos = self._next_position(conn, ev.run_id)
                self._positions[ev.run_id] = pos + 1
                content = _text(msg.get("content"))
                rows.append((ev.run_id, pos, digest, ev.turn_id, ev.span_id, direction, _str(msg.get("role")),
                             content, _str(msg.get("tool_call_id")), _str(msg.get("name")),
                             _json(msg.get("tool_calls"))))
                if content:
                    search.append((content, "message", ev.run_id, ev.span_id, ev.event_id))
        if rows:
            # OR IGNORE: another process may have stored the same message of a shared run
            # first; then this position stays unused, which the order does not mind.
            insert_rows(conn, _MESSAGE, rows)
            _insert_search(conn, search)
        if len(self._known) > 1_000:
            self._known.clear()

    def _conversation(self, conn: sqlite3.Connection, ev: Event) -> list[tuple[str, str, dict[str, Any]]]:
        """(direction, chain hash, message) for the messages an llm event carries."""
        p = ev.payload
        if ev.type == "llm.started":
            chain = request_chain(p)
            if chain and ev.span_id:
                if len(self._span_tail) > 10_000:
                    self._span_tail.clear()
                self._span_tail[ev.span_id] = chain[-1][1]
            return chain
        msg = reply_message(p)
        if msg is None:
            return []
        parent = self._span_tail.pop(ev.span_id or "", None)
        if parent is None:  # the request was written by an earlier batch or process
            row = conn.execute("SELECT payload FROM events WHERE span_id = ? AND type = 'llm.started'",
                               (ev.span_id,)).fetchone()
            chain = request_chain(orjson.loads(row[0])) if row else []
            parent = chain[-1][1] if chain else ""
        return [("output", msg_hash(parent, msg), msg)]

    def _next_position(self, conn: sqlite3.Connection, run_id: str) -> int:
        pos = self._positions.get(run_id)
        if pos is None:
            row = conn.execute("SELECT coalesce(max(position), 0) + 1 FROM al_messages WHERE run_id = ?",
                               (run_id,)).fetchone()
            pos = self._positions[run_id] = int(row[0])
            if len(self._positions) > 10_000:
                self._positions.clear()
                self._positions[run_id] = pos
        return pos


# -- event type -> derived rows ----------------------------------------------------------
Ops = dict[str, list[tuple[Any, ...]]]  # statement -> its parameter rows


def _merge_spans(ops: Ops) -> None:
    """Write each span opened and closed once in this batch as one row.

    Statements run in ``_ORDER``, each over its own rows, and every one of them is
    order-independent with respect to the others on the same span except opening then
    closing: the merged row, written where the openings are, gives what the opening then
    the closing would (on a fresh span and on one some earlier event created alike).
    Left as two rows: a span opened or closed twice in the batch, and a close that does
    not come after its opening (``seq``), whose status the opening's ``seq`` would decide.
    """
    opened, closed = ops[_SPAN_OPENED], ops[_SPAN_CLOSED]
    closes: dict[str, int] = {}
    twice: set[str] = set()
    for i, row in enumerate(closed):
        if row[0] in closes:
            twice.add(row[0])
        closes[row[0]] = i
    opens: set[str] = set()
    for row in opened:
        if row[0] in opens:
            twice.add(row[0])
        opens.add(row[0])
    keep_opened: list[tuple[Any, ...]] = []
    merged: set[int] = set()
    keep_model, close_model = ops[_SPAN_WHOLE_KEEP_MODEL], ops[_SPAN_WHOLE_CLOSE_MODEL]
    for o in opened:
        at = closes.get(o[0])
        if at is None or o[0] in twice or closed[at][5] < o[6]:
            keep_opened.append(o)
            continue
        c = closed[at]
        merged.add(at)
        row = (*o[:6], c[5], *o[7:12], o[12] if c[10] is None else c[10], o[13], o[14], c[4], *c[6:10],
               *c[11:])
        (keep_model if c[10] is None else close_model).append(row)
    if merged:
        ops[_SPAN_OPENED] = keep_opened
        ops[_SPAN_CLOSED] = [c for i, c in enumerate(closed) if i not in merged]


def _run_started(ev: Event, p: dict[str, Any], ops: Ops) -> None:
    ops[_RUN_STARTED].append((ev.run_id, _str(p.get("name")), ev.ts, _json(p.get("metadata")),
                              _json(p.get("tags")), _str(p.get("parent_run_id")),
                              1 if p.get("implicit") else 0))


def _run_finished(ev: Event, p: dict[str, Any], ops: Ops) -> None:
    ops[_RUN_FINISHED].append((ev.run_id, _str(p.get("status")) or "ok", ev.ts, _error_text(p.get("error"))))


def _turn_started(ev: Event, p: dict[str, Any], ops: Ops) -> None:
    if ev.turn_id is not None:
        ops[_TURN_STARTED].append((ev.turn_id, ev.run_id, _int(p.get("index")), ev.ts,
                                   _json(p.get("metadata"))))


def _turn_finished(ev: Event, p: dict[str, Any], ops: Ops) -> None:
    if ev.turn_id is not None:
        ops[_TURN_FINISHED].append((ev.turn_id, ev.run_id, _str(p.get("status")) or "ok", ev.ts,
                                    _error_text(p.get("error"))))


def _span_opened(ev: Event, p: dict[str, Any], ops: Ops) -> None:
    if ev.span_id is None:
        return
    get = p.get
    kind = _KIND_OF_TYPE[ev.type]
    if kind == "span":  # generic spans name their own kind: agent, task, chain, ...
        kind = _str(get("kind")) or "span"
    name = _str(get("name"))
    model = _str(get("model"))
    if kind == "llm" and name is None:
        name = model
    goal = _str(get("goal"))
    arguments = get("arguments")
    arguments_json = _json(arguments)
    ops[_SPAN_OPENED].append((
        ev.span_id, ev.run_id, ev.turn_id, ev.parent_span_id, kind, name, ev.seq, ev.ts,
        goal, _str(get("label")), _json(get("attributes")),
        _str(get("provider")), model, _str(get("tool_call_id")), arguments_json,
    ))
    if kind == "tool" and arguments is not None:
        text = arguments if isinstance(arguments, str) else arguments_json
        ops[_SEARCH].append((text, "tool_arguments", ev.run_id, ev.span_id, ev.event_id))
    elif goal:
        ops[_SEARCH].append((goal, "goal", ev.run_id, ev.span_id, ev.event_id))


def _span_closed(ev: Event, p: dict[str, Any], ops: Ops) -> None:
    if ev.span_id is None:
        return
    kind = _KIND_OF_TYPE[ev.type]
    status = _str(p.get("status")) or _DEFAULT_STATUS[ev.type]
    response = _str(p.get("partial_text" if ev.type in ("llm.interrupted", "llm.error") else "response_text"))
    reasoning = _str(p.get("reasoning_text"))
    result = _text(p.get("result"))
    error = p.get("error")
    error_text = _error_text(error)
    ops[_SPAN_CLOSED].append((
        ev.span_id, ev.run_id, ev.turn_id, _KIND_OF.get(kind, "span"), status, ev.seq, ev.ts,
        _num(p.get("duration_ms")), result, error_text, _str(p.get("model")),
        response, reasoning, _str(p.get("stop_reason")),
        *_tokens(p.get("usage")), _num(p.get("cost_usd")), _num(p.get("ttft_ms")),
        _str(p.get("request_id")) or (_str(error.get("request_id")) if isinstance(error, dict) else None),
    ))
    run_id, span_id, event_id = ev.run_id, ev.span_id, ev.event_id
    if response:
        ops[_SEARCH].append((response, "response", run_id, span_id, event_id))
    if reasoning:
        ops[_SEARCH].append((reasoning, "reasoning", run_id, span_id, event_id))
    if result:
        ops[_SEARCH].append((result, "tool_result" if kind == "tool" else "result", run_id, span_id, event_id))
    if error_text:
        ops[_SEARCH].append((error_text, "error", run_id, span_id, event_id))
    if ev.type == "llm.finished":
        for call in p.get("tool_calls") or ():
            if isinstance(call, dict):
                _tool_request(ev, call, ops)


def _span_status(ev: Event, p: dict[str, Any], ops: Ops) -> None:
    status = _str(p.get("status"))
    if ev.span_id is not None and status:
        ops[_SPAN_STATUS].append((ev.span_id, ev.run_id, ev.turn_id, status, ev.seq))


def _span_link(ev: Event, p: dict[str, Any], ops: Ops) -> None:
    target = _str(p.get("target_span_id"))
    if ev.span_id is not None and target:
        ops[_SPAN_LINK].append((ev.span_id, target, _str(p.get("relation")) or "depends_on", ev.run_id,
                                ev.ts))


def _span_annotate(ev: Event, p: dict[str, Any], ops: Ops) -> None:
    fields = p.get("fields")
    if ev.span_id is not None and isinstance(fields, dict) and fields:
        ops[_SPAN_ANNOTATE].append((ev.span_id, ev.run_id, ev.turn_id, _json(fields)))


def _tool_approval(ev: Event, p: dict[str, Any], ops: Ops) -> None:
    decision = _str(p.get("decision"))
    if ev.span_id is None or decision is None:
        return
    reason = _text(p.get("reason"))
    ops[_TOOL_APPROVAL].append((ev.span_id, ev.run_id, ev.turn_id, decision, _text(p.get("by")), reason))
    if reason:
        ops[_SEARCH].append((reason, "approval", ev.run_id, ev.span_id, ev.event_id))


def _tool_call(ev: Event, p: dict[str, Any], ops: Ops) -> None:
    _tool_request(ev, p, ops)


def _tool_request(ev: Event, call: dict[str, Any], ops: Ops) -> None:
    call_id = _str(call.get("id")) or _str(call.get("tool_call_id"))
    if call_id and ev.span_id:
        ops[_TOOL_REQUEST].append((call_id, ev.span_id, ev.run_id, ev.turn_id, _str(call.get("name")),
                                   _json(call.get("arguments")), ev.ts))


def _log(ev: Event, p: dict[str, Any], ops: Ops) -> None:
    msg = _str(p.get("message"))
    if msg:
        ops[_SEARCH].append((msg, "log", ev.run_id, ev.span_id, ev.event_id))


_DEFAULT_STATUS = {
    "span.finished": "ok",
    "llm.finished": "ok",
    "llm.error": "error",
    "llm.interrupted": "interrupted",
    "tool.finished": "ok",
    "tool.failed": "error",
}
_HANDLERS: dict[str, Callable[[Event, dict[str, Any], Ops], None]] = {
    "run.started": _run_started,
    "run.finished": _run_finished,
    "turn.started": _turn_started,
    "turn.finished": _turn_finished,
    "span.started": _span_opened,
    "llm.started": _span_opened,
    "tool.started": _span_opened,
    "span.status": _span_status,
    "span.link": _span_link,
    "span.annotate": _span_annotate,
    "tool.approval": _tool_approval,
    "llm.tool_call": _tool_call,
    "log": _log,
    **dict.fromkeys(SPAN_CLOSING, _span_closed),
}
