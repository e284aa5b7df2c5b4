"""Benchmark 4: reading a store of 1,000,000 events through the public reader API.

The store is made by the real pipeline (public producers -> recorder -> SQLite
sink) from the conversation workload (:mod:`bench.conversation`), in a child
process (:mod:`bench.flow`), into ``bench/.cache/<size>-s<schema>-w<workload>.db``
(git-ignored). It is reused by later runs and made again when the schema or the
workload changes, because then its name changes. Quick mode uses 50,000 events.

Each figure is timed through ``agentlog.open()`` (:mod:`agentlog.reader`) and
beside it a **reference**: the least SQL that returns the same information,
written by hand against the internal tables, on the same connection, in the
same run. The ratio says how much the public views and the reader add.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import agentlog
from agentlog.store.migrate import latest_version

from .conversation import WORKLOAD_VERSION, raw_bytes, runs_for
from .stats import spread
from .workload import TextPool

__all__ = ["TARGETS_MS", "cache_path", "ensure_store", "print_queries", "run_queries"]

CACHE = Path(__file__).resolve().parent / ".cache"
TARGETS_MS = {"run_detail": 20.0, "fts_hit": 50.0, "usage_by_model": 500.0, "runs_page": 20.0}
SIZE_RATIO_MAX = 1.5
_CALLS = 15  # timed calls per figure and repetition (the median is kept)


def cache_path(events: int) -> Path:
    size = f"{events // 1_000_000}m" if events % 1_000_000 == 0 else f"{events // 1000}k"
    return CACHE / f"{size}-s{latest_version()}-w{WORKLOAD_VERSION}.db"


def run_flow(args: dict[str, Any]) -> dict[str, Any]:
    """Run :mod:`bench.flow` in a fresh interpreter; its JSON result."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.flow", json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench.flow {args['mode']} failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def ensure_store(events: int) -> tuple[Path, dict[str, Any] | None]:
    """The cached store of ``events`` events, made now if missing (then also its flow figures)."""
    path = cache_path(events)
    if path.exists():
        return path, None
    CACHE.mkdir(parents=True, exist_ok=True)
    for old in CACHE.glob(f"{path.name.split('-')[0]}-*.db*"):  # an older schema or workload
        old.unlink()
    tmp = path.with_name(path.name + ".partial")
    for f in tmp.parent.glob(tmp.name + "*"):
        f.unlink()
    print(f"   generating {events:,} events into {path} (cached for later runs)")
    flow = run_flow({"mode": "flow", "events": events, "db": str(tmp), "backlog": 20_000})
    if not flow["ok"]:
        raise RuntimeError(f"generating {path} dropped events: {flow}")
    os.replace(tmp, path)
    return path, flow


# -- what is timed ------------------------------------------------------------------------------
_REQUEST_ITEMS = """
WITH RECURSIVE walk (hash, parent, item) AS (
    SELECT m.hash, m.parent, m.item
    FROM al_events e, json_each(e.refs) r JOIN al_request_items m ON m.hash = r.value ->> 1
    WHERE e.run_id = ? AND e.type = 'llm.started' AND e.refs IS NOT NULL
    UNION
    SELECT m.hash, m.parent, m.item FROM walk w JOIN al_request_items m ON m.hash = w.parent
)
SELECT item FROM walk
"""


def _subjects(
    store: agentlog.Store, picks: dict[str, Any]
) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    """figure -> (through the reader API, the hand-written reference)."""
    c = store.connection
    rid, rare, common = picks["run_id"], picks["rare"], picks["common"]

    def run_detail_ref() -> object:
        return (
            c.execute("SELECT * FROM al_runs WHERE run_id = ?", (rid,)).fetchall(),
            c.execute("SELECT * FROM al_turns WHERE run_id = ? ORDER BY idx", (rid,)).fetchall(),
            c.execute("SELECT * FROM al_spans WHERE run_id = ?", (rid,)).fetchall(),
            c.execute(
                "SELECT * FROM al_messages WHERE run_id = ? ORDER BY position", (rid,)
            ).fetchall(),
            c.execute("SELECT * FROM al_tool_requests WHERE run_id = ?", (rid,)).fetchall(),
            c.execute(
                "SELECT payload, refs FROM al_events WHERE run_id = ? AND type = 'llm.started'", (rid,)
            ).fetchall(),
            # the requests' items, each once (requests are stored by reference: migration 0003)
            c.execute(_REQUEST_ITEMS, (rid,)).fetchall(),
        )

    return {
        "run_detail": (lambda: store.run(rid), run_detail_ref),
        "fts_hit": (
            lambda: store.search(rare),
            lambda: c.execute(
                "SELECT rowid FROM search WHERE search MATCH ? LIMIT 20", (f'"{rare}"',)
            ).fetchall(),
        ),
        "fts_common_ranked": (
            lambda: store.search(common),
            lambda: c.execute(
                "SELECT rowid FROM search WHERE search MATCH ? ORDER BY rank LIMIT 20",
                (f'"{common}"',),
            ).fetchall(),
        ),
        "usage_by_model": (
            lambda: store.stats("model"),
            lambda: c.execute(
                "SELECT model, count(*), sum(input_tokens), sum(output_tokens), sum(cost_usd)"
                " FROM al_spans WHERE kind = 'llm' GROUP BY model"
            ).fetchall(),
        ),
        "runs_page": (
            lambda: store.runs(limit=50),
            lambda: c.execute(
                "SELECT * FROM al_runs ORDER BY started_at DESC, run_id DESC LIMIT 50"
            ).fetchall(),
        ),
    }


def _picks(store: agentlog.Store, pool: TextPool) -> dict[str, Any]:
    """A run in the middle of the store, a rare word pair and a common word, found in the data."""
    c = store.connection
    n = c.execute("SELECT count(*) FROM al_runs").fetchone()[0]
    rid = c.execute(
        "SELECT run_id FROM al_runs ORDER BY started_at LIMIT 1 OFFSET ?", (n // 2,)
    ).fetchone()[0]
    log = c.execute(
        "SELECT body FROM search WHERE kind = 'log' AND run_id = ? LIMIT 1", (rid,)
    ).fetchone()[0]
    words = log.split()
    return {"run_id": rid, "rare": f"{words[1]} {words[2]} {words[3]}", "common": "der"}


def _median_ms(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(_CALLS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2] * 1000


def _size(path: Path, events: int, pool: TextPool) -> dict[str, Any]:
    file_bytes = sum(f.stat().st_size for f in path.parent.glob(path.name + "*"))
    raw = raw_bytes(pool, runs_for(events))
    conn = agentlog.open(path).connection
    try:
        top = conn.execute(
            "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 8"
        ).fetchall()
        payload = dict(
            conn.execute(
                "SELECT type, sum(length(payload)) FROM al_events GROUP BY type"
            ).fetchall()
        )
        items = conn.execute(
            "SELECT count(*), coalesce(sum(length(item)), 0) FROM al_request_items"
        ).fetchone()
    except Exception:  # dbstat is a compile-time option of SQLite
        top, payload, items = [], {}, (0, 0)
    return {
        "file_bytes": file_bytes,
        "bytes_per_event": file_bytes / events,
        "raw_unique_bytes": raw.unique,
        "raw_as_sent_bytes": raw.as_sent,
        "ratio_to_raw_unique": file_bytes / raw.unique,
        "ratio_to_raw_as_sent": file_bytes / raw.as_sent,
        "largest": {name: size for name, size in top},
        "llm_started_payload_bytes": payload.get("llm.started", 0),
        "request_items": items[0],
        "request_item_bytes": items[1],
    }


def run_queries(quick: bool, reps: int) -> dict[str, Any]:
    events = 50_000 if quick else 1_000_000
    path, generated = ensure_store(events)
    pool = TextPool()
    store = agentlog.open(path)
    try:
        picks = _picks(store, pool)
        subjects = _subjects(store, picks)
        for api, ref in subjects.values():  # warm the page cache: a viewer's store is warm
            api()
            ref()
        reps_of: dict[str, dict[str, list[float]]] = {k: {"api": [], "ref": []} for k in subjects}
        for _ in range(reps):
            for name, (api, ref) in subjects.items():
                reps_of[name]["api"].append(_median_ms(api))
                reps_of[name]["ref"].append(_median_ms(ref))
        rows = store.connection.execute("SELECT count(*) FROM al_events").fetchone()[0]
        runs = store.connection.execute("SELECT count(*) FROM al_runs").fetchone()[0]
    finally:
        store.close()
    figures = {}
    for name, r in reps_of.items():
        api, ref = spread(r["api"]), spread(r["ref"])
        figures[name] = {
            "api_ms": api,
            "ref_ms": ref,
            "ratio": api["median"] / max(ref["median"], 1e-6),
        }
    return {
        "store": str(path),
        "events": rows,
        "runs": runs,
        "picks": picks,
        "generated": generated,
        "figures": figures,
        "size": _size(path, rows, pool),
        "ok": rows >= events,
    }


_LABELS = {
    "run_detail": "one run's full detail: Store.run()",
    "fts_hit": "FTS hit (3 words): Store.search()",
    "fts_common_ranked": "FTS common word, bm25 top 20",
    "usage_by_model": "tokens/cost by model: Store.stats('model')",
    "runs_page": "runs list page: Store.runs(limit=50)",
}


def print_queries(q: dict[str, Any], fig: Callable[..., str], table: Callable[..., None]) -> None:
    print(f"\n6. Queries at {q['events']:,} events ({q['runs']:,} runs; benchmark 4), ms per call,")
    print("   median [min-max] over repetitions; ref = hand-written SQL on the internal tables\n")
    rows = []
    for name, f in q["figures"].items():
        target = TARGETS_MS.get(name)
        rows.append(
            [
                _LABELS[name],
                fig(f["api_ms"]),
                fig(f["ref_ms"]),
                f"{f['ratio']:.1f}x",
                f"<= {target:g}" if target else "-",
            ]
        )
    table(["query", "agentlog API", "reference SQL", "ratio", "target"], rows)
    s = q["size"]
    print(
        f"\n   file {s['file_bytes'] / 1e6:,.1f} MB = {s['bytes_per_event']:,.0f} B per event; "
        f"{s['ratio_to_raw_unique']:.2f}x the raw payload bytes (each message once, "
        f"{s['raw_unique_bytes'] / 1e6:,.1f} MB), {s['ratio_to_raw_as_sent']:.2f}x the payloads as sent "
        f"(every request whole, {s['raw_as_sent_bytes'] / 1e6:,.1f} MB)"
    )
    big = ", ".join(f"{k} {v / 1e6:,.1f}" for k, v in s["largest"].items())
    print(f"   largest tables and indexes (MB): {big}")
    print(
        f"   requests: llm.started payloads {s['llm_started_payload_bytes'] / 1e6:,.1f} MB (long parts"
        f" by reference), their items {s.get('request_items', 0):,} in al_request_items"
        f" ({s.get('request_item_bytes', 0) / 1e6:,.1f} MB of JSON)"
    )
    if q["generated"]:
        g = q["generated"]
        print(
            f"   store generated now: {g['rows']:,} events in {g['seconds']:,.0f} s "
            f"({g['events_per_s']:,.0f} events/s), peak RSS {g['peak_rss'] / 2**20:,.0f} MiB"
        )
