"""The child processes of the memory and queries benchmarks: ``python -m bench.flow '<json>'``.

Each measurement runs in a fresh interpreter so that its resident set size is
its own (a parent that has already run other benchmarks keeps their memory),
and prints one JSON object on its last line of output. Modes:

* ``flow``: publish the conversation workload (:mod:`bench.conversation`) through
  the public producers until the store holds ``events`` rows, with default
  settings. Like an agent that waits on its model, the producer pauses after a
  run while more than ``backlog`` events are queued, so nothing is dropped and the
  store can be queried afterwards.
* ``blocked``: the same workload while another connection holds the write lock
  (``BEGIN EXCLUSIVE``), so no batch commits, until the queue bound (``max_queue``)
  and the sink's pending bound are both full, then ``after_s`` seconds more: what
  the bounds hold, whether memory still grows, and what is dropped.
* ``hold``: the reference for ``blocked``: the same events as the queue holds them
  (the producers' tuples and payloads), ``count`` of them in a deque, no agentlog.

RSS is sampled every 20 ms by a thread reading ``/proc/self/statm``, and the
kernel's high-water mark (``VmHWM``) is read at the end.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

__all__ = ["rss_bytes"]

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_of(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


def writer_pids() -> list[int]:
    """This process's agentlog writer processes (``writer="process"``, the default)."""
    pids: list[int] = []
    try:
        for task in Path("/proc/self/task").iterdir():
            for pid in (task / "children").read_text().split():
                try:
                    if b"agentlog._writer_process" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        pids.append(int(pid))
                except OSError:
                    continue
    except OSError:
        pass
    return pids


def rss_bytes() -> int:
    """The resident set size of this process and of its writer process (Linux; 0 elsewhere).

    With the default writer process, what agentlog holds is split between the two: the
    host's queue, and the child's queue and pending batches.
    """
    return _rss_of("self") + sum(_rss_of(str(pid)) for pid in writer_pids())


def _hwm_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Sampler:
    """Peak RSS, and what the recorder held when it was reached, every ``interval`` s."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak = 0
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._t0 = time.perf_counter()

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rss = rss_bytes()
            self.peak = max(self.peak, rss)
            self.samples.append((time.perf_counter() - self._t0, rss))


def _count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM al_events").fetchone()[0])
    finally:
        conn.close()


def flow(events: int, db: str, backlog: int) -> dict[str, Any]:
    import agentlog
    from agentlog.store.sqlite import connect_writer

    from .conversation import publish_run, runs_for
    from .workload import TextPool

    path = Path(db)
    connect_writer(path).close()
    pool = TextPool()
    rec = agentlog.configure(str(path))
    baseline = rss_bytes()
    n_runs = runs_for(events)
    refused = 0
    max_queued = 0
    waited = 0.0
    t0 = time.perf_counter()
    with Sampler() as sampler:
        for r in range(n_runs):
            refused += publish_run(pool, r)
            queued = rec.stats()["queued"]
            max_queued = max(max_queued, queued)
            while queued > backlog:
                time.sleep(0.005)
                waited += 0.005
                queued = rec.stats()["queued"]
        flushed = rec.flush(600)
    seconds = time.perf_counter() - t0
    stats = rec.stats()
    agentlog.shutdown()
    rows = _count(path)
    return {
        "runs": n_runs,
        "rows": rows,
        "seconds": seconds,
        "events_per_s": rows / seconds,
        "producer_waited_s": waited,
        "baseline_rss": baseline,
        "peak_rss": max(sampler.peak, baseline),
        "hwm_rss": _hwm_bytes(),
        "max_queued": max_queued,
        "max_queue": rec.settings.max_queue,
        "dropped": sum(stats["dropped"].values()) + refused,
        "ok": flushed and not refused and not sum(stats["dropped"].values()),
    }


def blocked(db: str, max_queue: int, after_s: float, busy_timeout_ms: int,
            writer: str | None = None) -> dict[str, Any]:
    import agentlog
    from agentlog.store import sqlite as store_sqlite

    from .conversation import EVENTS_PER_TURN, TURNS_PER_RUN, publish_run
    from .workload import TextPool

    # How long one commit attempt waits for the lock (agentlog's default is 10 s); a
    # shorter wait in quick mode fills the pending bound within a second or two.
    store_sqlite.BUSY_TIMEOUT_MS = busy_timeout_ms
    path = Path(db)
    store_sqlite.connect_writer(path).close()
    pool = TextPool()
    rec = agentlog.configure(str(path), max_queue=max_queue, writer=writer)
    # What can be held: the queue and the sink's pending batches, each bounded by max_queue;
    # with the writer process, the host's queue plus the child's queue and pending batches.
    bounds = 3 if rec.settings.writer == "process" else 2
    publish_run(pool, 0)  # opens the store; committed before the lock is taken
    rec.flush(60)
    before = _count(path)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    baseline = rss_bytes()
    per_run = 2 + EVENTS_PER_TURN * TURNS_PER_RUN
    published = 0
    saturated_rss = 0
    saturated_at = 0.0
    saturated = (0, 0)  # events published and held when both bounds were full
    held_max = 0
    t0 = time.perf_counter()
    with Sampler() as sampler:
        r = 1
        # Until the queue and the pending batches are both full (at most 120 s), then on for
        # after_s seconds: from there on, memory must not grow.
        while time.perf_counter() - (saturated_at or t0 + 120 - after_s) < after_s:
            publish_run(pool, r)
            published += per_run
            r += 1
            s = rec.stats()
            held = s["queued"] + sum(x["pending"] for x in s["sinks"].values())
            held_max = max(held_max, held)
            if not saturated_at and held >= 0.95 * bounds * max_queue:
                saturated_at = time.perf_counter()
                saturated_rss = rss_bytes()
                saturated = (published, held)
            time.sleep(0.001)  # an agent waits on its model; the writer gets the GIL
        end_rss = rss_bytes()
    locker.execute("ROLLBACK")
    locker.close()
    flushed = rec.flush(300)
    stats = rec.stats()
    agentlog.shutdown()
    written = _count(path) - before
    dropped = sum(stats["dropped"].values())
    return {
        "max_queue": max_queue,
        "after_s": after_s,
        "busy_timeout_ms": busy_timeout_ms,
        "seconds_to_saturate": (saturated_at - t0) if saturated_at else None,
        "published": published,
        "written": written,
        "dropped": dropped,
        "dropped_by_reason": {k: v for k, v in stats["dropped"].items() if v},
        "held_max": held_max,
        "baseline_rss": baseline,
        "peak_rss": max(sampler.peak, baseline),
        "saturated_rss": saturated_rss,
        "published_at_saturation": saturated[0],
        "held_at_saturation": saturated[1],
        "end_rss": end_rss,
        "flushed": flushed,
        # Every event is either in the store or counted as dropped; none vanish. (At least:
        # a stream's gathered chunks become two events when the writer collects them mid-stream.)
        # (Plus a batch on its way: the writer's, and with a writer process the forwarder's.)
        "ok": written + dropped >= published and held_max <= bounds * max_queue + (bounds - 1) * 1000,
        "bounds": bounds,
    }


def hold(count: int) -> dict[str, Any]:
    """``count`` queued events as the producers make them, in a deque: no writer, no agentlog."""
    from .conversation import turns
    from .workload import USAGE, TextPool

    pool = TextPool()
    q: deque[tuple[Any, ...]] = deque()
    baseline = rss_bytes()
    ns = time.time_ns()
    run = 0
    while len(q) < count:
        for t in turns(pool, run):
            payloads = [
                {"index": t.index, "metadata": None},
                {
                    "provider": "openai",
                    "model": t.request["model"],
                    "name": None,
                    "request": t.request,
                },
                {"text": "".join(t.deltas), "chunks": len(t.deltas), "first_ts": ns, "last_ts": ns},
                {"id": t.call_id, "name": "search_docs", "arguments": t.arguments},
                {"status": "ok", "stop_reason": "tool_calls", "usage": USAGE, "cost_usd": 0.00042},
                {"name": "search_docs", "arguments": t.arguments, "tool_call_id": t.call_id},
                {"status": "ok", "result": t.result, "duration_ms": 1.0},
                {"level": "info", "message": t.log, "fields": {"step": t.index}},
                {"status": "ok"},
            ]
            for i, p in enumerate(payloads):
                q.append(("log", p, ns, i, f"run{run:026d}", f"turn{i:026d}", None, None, (), None))
        run += 1
    return {"count": len(q), "baseline_rss": baseline, "peak_rss": rss_bytes()}


def main(argv: list[str]) -> int:
    args = json.loads(argv[0])
    mode = args.pop("mode")
    result = {"flow": flow, "blocked": blocked, "hold": hold}[mode](**args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
