"""Benchmark 2: sustained ingest into SQLite, end to end, against SQLite alone.

agentlog side: simulated agent runs (turns with a streamed model call that asks
for a tool, the tool, a log line) are published through the public producers
as fast as the caller can go, into a store whose schema was created before the
timer started. The figure is events / (time of the last commit - start), so it
includes the producers, the writer thread's work and every transaction. Deltas
are kept one row per event (``keep_deltas=True``) so that the row count can be
checked against the number published and the reference writes as many rows.

The references (:mod:`bench.reference`) insert the very rows agentlog wrote.
"""

from __future__ import annotations

import gc
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import agentlog
from agentlog.store.sqlite import connect_writer

from . import reference
from .stats import spread
from .workload import MODEL, SYSTEM_MESSAGE, USAGE, TextPool, Turn, build_runs, events_per_run

__all__ = ["run_ingest"]

TURNS_PER_RUN = 20


class TimedSQLiteSink(agentlog.SQLiteSink):
    """The default sink, plus when its last batch committed and how much it has written.

    Measuring at the sink keeps the benchmark on public API: no timer inside the recorder.
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.batches = 0
        self.events = 0
        self.last_commit = 0.0

    def write(self, events: Sequence[agentlog.Event]) -> None:
        super().write(events)
        if events:  # an empty write only stores the final counters
            self.batches += 1
            self.events += len(events)
            self.last_commit = time.perf_counter()


def publish_runs(runs: list[list[Turn]]) -> int:
    """Publish the workload through the public API; return how many publishes were refused."""
    refused = 0
    for r, turns in enumerate(runs):
        with agentlog.run(f"bench-{r}", metadata={"suite": "bench.ingest"}):
            for i, t in enumerate(turns):
                with agentlog.turn():
                    refused += publish_turn(t, i)
    return refused


def publish_turn(t: Turn, index: int) -> int:
    """One turn: 10 events between turn.started and turn.finished."""
    request = {"messages": [SYSTEM_MESSAGE, {"role": "user", "content": t.user}]}
    call = agentlog.inference("openai", MODEL, request).start()
    accepted = [call.delta(d) for d in t.deltas]
    accepted.append(call.tool_call(t.call_id, "search_docs", t.arguments))
    accepted.append(call.finish(stop_reason="tool_calls", usage=USAGE, cost_usd=0.00042))
    with agentlog.tool_call("search_docs", t.arguments, tool_call_id=t.call_id) as tool:
        tool.result = t.result
    accepted.append(agentlog.log(t.log, step=index))
    return accepted.count(False)


def agentlog_once(runs: list[list[Turn]], path: Path) -> dict[str, Any]:
    """One repetition into a fresh store at ``path`` (left in place for the references)."""
    expected = len(runs) * events_per_run(len(runs[0]))
    connect_writer(path).close()  # the schema is not part of the figure
    sink = TimedSQLiteSink(path)
    rec = agentlog.configure(str(path), sinks=[sink], keep_deltas=True, max_queue=2 * expected)
    gc.collect()
    t0 = time.perf_counter()
    refused = publish_runs(runs)
    published = time.perf_counter()
    written_while_publishing = sink.events
    flushed = rec.flush(600)
    stats = rec.stats()
    agentlog.shutdown()
    rows = _count(path)
    elapsed = sink.last_commit - t0
    drain = sink.last_commit - published
    return {
        "events": expected,
        "rows": rows,
        "events_per_s": expected / elapsed,
        "seconds": elapsed,
        "publish_s": published - t0,
        "drain_s": drain,
        # The writer's own pace once the producer is done and it has the GIL to itself.
        "writer_events_per_s": (expected - written_while_publishing) / drain,
        "written_while_publishing": written_while_publishing,
        "batches": sink.batches,
        "mean_batch": expected / max(1, sink.batches),
        "dropped": sum(stats["dropped"].values()) + refused,
        "ok": flushed and rows == expected and not refused,
    }


def agentlog_process_once(runs: list[list[Turn]], path: Path) -> dict[str, Any]:
    """One repetition through the default writer process (``writer="process"``).

    Its sink lives in the child, so the clock stops when ``flush()`` returns: the child
    answers a flush only after the commit that holds everything before it.
    """
    expected = len(runs) * events_per_run(len(runs[0]))
    connect_writer(path).close()
    rec = agentlog.configure(str(path), keep_deltas=True, max_queue=2 * expected, writer="process")
    # The child starts with the first event (configure() never waits for it): events
    # before the clock (a run of three), so that starting it and opening the store are not part
    # of the figure.
    with agentlog.run("bench: start the writer process"):
        agentlog.log("started")
    rec.flush(60)
    before = _count(path)
    gc.collect()
    t0 = time.perf_counter()
    refused = publish_runs(runs)
    published = time.perf_counter()
    flushed = rec.flush(600)
    done = time.perf_counter()
    stats = rec.stats()
    agentlog.shutdown()
    rows = _count(path) - before
    return {
        "events_per_s": expected / (done - t0),
        "publish_s": published - t0,
        "drain_s": done - published,
        "dropped": sum(stats["dropped"].values()) + refused,
        "rows": rows,
        "ok": flushed and rows == expected and not refused,
    }


REFERENCE_LEVELS = ("plain", "events_only", "full")


def reference_once(chunks: list[reference.Chunk], tmp: Path, like: Path) -> dict[str, float]:
    """Each reference level into a fresh file; its events/s."""
    only_events = list(reference.events_only(chunks))
    expected = sum(len(rows) for chunk in only_events for _, rows in chunk)
    out: dict[str, float] = {}
    for level in REFERENCE_LEVELS:
        path = tmp / f"reference-{level}.db"
        conn = reference.open_plain(path, like) if level == "plain" else reference.open_schema(path)
        try:
            gc.collect()
            seconds = reference.insert_chunks(conn, chunks if level == "full" else only_events)
            written = reference.count_events(conn)
        finally:
            conn.close()
            _remove_store(path)
        if written != expected:
            raise RuntimeError(f"reference {level} wrote {written} of {expected} events")
        out[level] = expected / seconds
    return out


def run_ingest(pool: TextPool, quick: bool, reps: int) -> dict[str, Any]:
    """agentlog and the references, interleaved rep by rep (so drift hits both alike)."""
    n_runs = (20_000 if quick else 200_000) // events_per_run(TURNS_PER_RUN)
    runs = build_runs(pool, n_runs, TURNS_PER_RUN)
    agentlog_reps: list[dict[str, Any]] = []
    process_reps: list[dict[str, Any]] = []
    ref_reps: list[dict[str, float]] = []
    chunks: list[reference.Chunk] = []
    with tempfile.TemporaryDirectory(prefix="agentlog-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for rep in range(reps):
            db = tmp / f"agentlog-{rep}.db"
            agentlog_reps.append(agentlog_once(runs, db))
            if not chunks:
                chunks = reference.load_chunks(db)
            ref_reps.append(reference_once(chunks, tmp, db))
            _remove_store(db)
            db = tmp / f"agentlog-process-{rep}.db"
            process_reps.append(agentlog_process_once(runs, db))
            _remove_store(db)
    return summarise(agentlog_reps, ref_reps, chunks, process_reps)


_FIGURES = (
    "events_per_s",
    "seconds",
    "publish_s",
    "drain_s",
    "writer_events_per_s",
    "written_while_publishing",
    "batches",
    "mean_batch",
    "dropped",
)


def summarise(
    agentlog_reps: list[dict[str, Any]],
    ref_reps: list[dict[str, float]],
    chunks: list[reference.Chunk],
    process_reps: list[dict[str, Any]],
) -> dict[str, Any]:
    """Median and min-max of every figure; ratios of the medians."""
    a = {k: spread([float(r[k]) for r in agentlog_reps]) for k in _FIGURES}
    p = {k: spread([float(r[k]) for r in process_reps]) for k in ("events_per_s", "publish_s", "drain_s", "dropped")}
    refs = {
        level: {"events_per_s": spread([r[level] for r in ref_reps])} for level in REFERENCE_LEVELS
    }
    full = refs["full"]["events_per_s"]["median"]
    return {
        "events": agentlog_reps[0]["events"],
        "turns_per_run": TURNS_PER_RUN,
        "all_rows_ok": all(r["ok"] for r in agentlog_reps + process_reps),
        "rows": [r["rows"] for r in agentlog_reps + process_reps],
        "agentlog": a,
        "process": p,
        "process_ratio_to_full_reference": p["events_per_s"]["median"] / full,
        "reference": refs,
        "reference_rows": reference.rows_per_statement(chunks),
        "ratio_to_full_reference": a["events_per_s"]["median"] / full,
        "writer_ratio_to_full_reference": a["writer_events_per_s"]["median"] / full,
    }


def _count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return reference.count_events(conn)
    finally:
        conn.close()


def _remove_store(db: Path) -> None:
    for f in db.parent.glob(db.name + "*"):
        f.unlink()
