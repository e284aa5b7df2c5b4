"""The Python query API: ``agentlog.open("agentlog.db")``.

Everything here reads through the public views (via :mod:`agentlog.store.queries`),
so what Python shows is exactly what SQL shows. Invalid input raises a clear
:class:`~agentlog.errors.QueryError` or :class:`~agentlog.errors.NotFoundError`,
never a raw SQLite traceback.
"""

from __future__ import annotations

import math
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .config import resolve_db_path
from .errors import NotFoundError, QueryError, StoreError
from .events import Event
from .store import queries as q
from .store.sqlite import connect_reader

__all__ = ["Run", "RunDetail", "SearchHit", "SpanNode", "Store", "open_store"]

_JSON_COLUMNS = {"metadata", "tags", "attributes", "request", "arguments", "tool_calls", "stats",
                 "annotations", "requested_arguments"}


def _row(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for key in _JSON_COLUMNS.intersection(out):
        value = out[key]
        if isinstance(value, str):
            try:
                out[key] = orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
    return out


@dataclass
class Run:
    """One row of the ``runs`` view."""

    run_id: str
    name: str | None
    status: str
    started_at: str | None
    ended_at: str | None
    duration_ms: float | None
    error: str | None
    metadata: Any
    llm_calls: int
    tool_calls: int
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    tags: Any = None
    parent_run_id: str | None = None
    implicit: bool = False
    last_event_at: str | None = None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Run:
        d = _row(row)
        d["implicit"] = bool(d.get("implicit"))
        return cls(**d)


@dataclass
class SpanNode:
    """A span and its children: the run's task tree.

    ``span`` is a row of the ``spans`` view plus ``depth`` (0 for a root),
    ``position`` ("1.2.3", by start time among siblings) and ``path`` (span ids
    from the root). ``links`` are the extra edges from this span (``span_links`` rows).
    """

    span: dict[str, Any]
    children: list[SpanNode] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)

    def walk(self, depth: int = 0) -> list[tuple[int, dict[str, Any]]]:
        out = [(depth, self.span)]
        for child in self.children:
            out.extend(child.walk(depth + 1))
        return out


@dataclass
class RunDetail:
    """Everything about one run."""

    run: Run
    turns: list[dict[str, Any]]
    spans: list[SpanNode]
    messages: list[dict[str, Any]]
    llm_calls: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]]
    totals: dict[str, Any]


@dataclass
class SearchHit:
    run_id: str | None
    span_id: str | None
    event_id: str | None
    kind: str
    snippet: str
    rank: float


def _fts_query(text: str) -> str:
    """Plain words -> an AND of quoted terms, so ``gpt-4o`` or ``C++`` just work."""
    terms = [t.replace('"', '""') for t in text.split()]
    return " ".join(f'"{t}"' for t in terms if t)


class Store:
    """Read access to an agentlog SQLite store. Use as a context manager or call close()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect_reader(path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying read-only connection, for your own SQL over the views."""
        return self._conn

    def sql(self, query: str, params: Any = ()) -> list[dict[str, Any]]:
        """Run your own read-only SQL; rows come back as dicts."""
        try:
            return [dict(r) for r in self._conn.execute(query, params).fetchall()]
        except sqlite3.Error as exc:
            raise QueryError(f"SQL error: {exc}") from None

    # -- runs ----------------------------------------------------------------------------
    def runs(
        self,
        *,
        status: str | None = None,
        name: str | None = None,
        since: str | None = None,
        until: str | None = None,
        tag: str | None = None,
        include_implicit: bool = True,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        """Runs, newest first. ``name`` accepts ``*`` wildcards; times are ISO-8601 text."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must be >= 0")
        rows = q.runs_page(self._conn, status=status, name=name, since=since, until=until, tag=tag,
                           include_implicit=include_implicit, limit=limit, offset=offset)
        return [Run.from_row(r) for r in rows]

    def resolve_run_id(self, run_id: str) -> str:
        """The full id for an id or a unique prefix of one."""
        if not isinstance(run_id, str) or not run_id:
            raise ValueError("run_id must be a non-empty string")
        found = q.find_run_ids(self._conn, run_id)
        if not found:
            raise NotFoundError(f"No such run: {run_id!r} (see: agentlog runs)")
        if len(found) > 1:
            raise NotFoundError(
                f"Run id prefix {run_id!r} is ambiguous: {', '.join(found)}… (type more of it)"
            )
        return found[0]

    def run(self, run_id: str) -> RunDetail:
        """The full detail of one run: spans as a tree, messages, LLM and tool calls, totals."""
        rid = self.resolve_run_id(run_id)
        row = q.run_row(self._conn, rid)
        if row is None:  # pragma: no cover - resolve_run_id found it
            raise NotFoundError(f"No such run: {run_id!r} (see: agentlog runs)")
        run = Run.from_row(row)
        llm = [_row(r) for r in q.run_llm_calls(self._conn, rid)]
        tools = [_row(r) for r in q.run_tool_calls(self._conn, rid)]
        totals: dict[str, Any] = {
            "llm_calls": len(llm),
            "tool_calls": sum(1 for t in tools if t["span_id"] is not None),
            "errors": sum(1 for c in llm if c["status"] == "error")
            + sum(1 for t in tools if t["status"] == "error"),
        }
        for key in ("input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens",
                    "reasoning_tokens", "cost_usd"):
            values = [c[key] for c in llm if c[key] is not None]
            totals[key] = sum(values) if values else None
        return RunDetail(
            run=run,
            turns=[_row(r) for r in q.run_turns(self._conn, rid)],
            spans=self._tree(rid),
            messages=[_row(r) for r in q.run_messages(self._conn, rid)],
            llm_calls=llm,
            tool_calls=tools,
            totals=totals,
        )

    def tree(self, run_id: str) -> list[SpanNode]:
        """A run's task tree: its root spans, each with its children, depth-first by start time."""
        return self._tree(self.resolve_run_id(run_id))

    def _tree(self, rid: str) -> list[SpanNode]:
        links: dict[str, list[dict[str, Any]]] = {}
        for link in q.run_links(self._conn, rid):
            links.setdefault(link["span_id"], []).append(dict(link))
        return _tree([_row(r) for r in q.run_tree(self._conn, rid)], links)

    def status_history(self, span_id: str) -> list[dict[str, Any]]:
        """Each status a span went through, oldest first (rows of the ``status_history`` view)."""
        if not isinstance(span_id, str) or not span_id:
            raise ValueError("span_id must be a non-empty string")
        if not q.span_exists(self._conn, span_id):
            raise NotFoundError(f"No such span: {span_id!r} (see: agentlog show <run> --json)")
        return [_row(r) for r in q.status_history(self._conn, span_id)]

    def latest_run(self, *, include_implicit: bool = True) -> RunDetail | None:
        rid = q.latest_run_id(self._conn, include_implicit)
        return self.run(rid) if rid else None

    # -- events, search, stats ---------------------------------------------------------
    def events(
        self, run_id: str, *, since: int = 0, limit: int | None = None, types: list[str] | None = None
    ) -> list[Event]:
        """A run's events with ``seq > since``, in order: call again with the last seq to tail."""
        rid = self.resolve_run_id(run_id)
        rows = q.run_events(self._conn, rid, since, limit, types)
        return [
            Event(type=r["type"], event_id=r["event_id"], ts=r["ts"], seq=r["seq"], run_id=r["run_id"],
                  turn_id=r["turn_id"], span_id=r["span_id"], parent_span_id=r["parent_span_id"],
                  payload=orjson.loads(r["payload"]))
            for r in rows
        ]

    def search(
        self,
        text: str,
        *,
        run_id: str | None = None,
        kinds: list[str] | None = None,
        limit: int = 20,
        raw: bool = False,
    ) -> list[SearchHit]:
        """Full-text search, best match first, with ``[highlighted]`` snippets.

        Plain words must all match; ``raw=True`` takes SQLite FTS5 syntax
        (``"exact phrase"``, ``OR``, ``NOT``, ``prefix*``, ``NEAR(a b)``).
        """
        match = text if raw else _fts_query(text)
        if not match.strip():
            raise QueryError("Empty search query: give at least one word")
        rid = self.resolve_run_id(run_id) if run_id else None
        try:
            rows = q.search(self._conn, match, rid, kinds, limit)
        except sqlite3.OperationalError as exc:
            raise QueryError(
                f"Invalid search query {text!r}: {exc}. Quote phrases and special characters, "
                "or search without raw=True to match plain words."
            ) from None
        return [SearchHit(r["run_id"], r["span_id"], r["event_id"], r["kind"], r["snippet"], r["rank"])
                for r in rows]

    def stats(self, group_by: str = "model") -> list[dict[str, Any]]:
        """Totals grouped by ``model``, ``provider``, ``run``, ``day`` (LLM calls) or ``tool``."""
        if group_by not in q.GROUPINGS:
            raise ValueError(f"group_by must be one of {', '.join(q.GROUPINGS)}; got {group_by!r}")
        rows = [dict(r) for r in q.stats(self._conn, group_by)]
        if group_by == "tool":
            for r in rows:
                r["p95_duration_ms"] = _p95(q.tool_durations(self._conn, r["key"]))
        return rows

    def writers(self) -> list[dict[str, Any]]:
        """Each recorder that wrote here, with its counters of written and dropped events."""
        return [_row(r) for r in self._conn.execute("SELECT * FROM writers ORDER BY started_at")]


def _p95(sorted_values: list[float]) -> float | None:
    if not sorted_values:
        return None
    idx = max(0, math.ceil(0.95 * len(sorted_values)) - 1)
    return sorted_values[idx]


def _tree(spans: list[dict[str, Any]], links: dict[str, list[dict[str, Any]]]) -> list[SpanNode]:
    """Nodes from depth-first rows: every parent comes before its children."""
    nodes = {s["span_id"]: SpanNode(s, links=links.get(s["span_id"], [])) for s in spans}
    roots: list[SpanNode] = []
    for s in spans:
        parent = nodes.get(s["parent_span_id"]) if s["depth"] else None
        (parent.children if parent is not None else roots).append(nodes[s["span_id"]])
    return roots


def open_store(path_or_url: str | os.PathLike[str] | None = None) -> Store:
    """Open a store for reading (default: ``$AGENTLOG_DB`` or ``./agentlog.db``)."""
    target = os.fspath(path_or_url) if path_or_url is not None else os.environ.get("AGENTLOG_DB", "agentlog.db")
    try:
        path = resolve_db_path(target)
    except StoreError:
        raise
    return Store(path)
