"""A store that stops taking writes: another process holds the write lock, or a sink hangs.

While it is blocked the host keeps publishing. Pass: ``publish()`` stays fast
on the caller's thread (p99 under 1 ms, a generous bound measured in-process),
memory stays within the bound (``max_queue`` queued plus ``max_queue`` pending
per sink), every event ends written or dropped with its reason, and the exact
counts reach the file; after the block lifts, the backlog drains.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

import agentlog
from agentlog import Recorder, Settings

from harness import percentile, start_py, stored
from helpers import GateSink

MAX_QUEUE = 2_000
LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def _publish_while_blocked(rec: Recorder, n: int, seconds: float) -> tuple[list[float], int, int]:
    """Publish ``n`` events spread over ``seconds``; return latencies (s), peak queued, peak pending."""
    latencies, peak_q, peak_p = [], 0, 0
    per_tick = max(1, n // int(seconds * 100))
    for i in range(n):
        t0 = time.perf_counter()
        rec.publish("log", {"message": "blocked", "i": i})
        latencies.append(time.perf_counter() - t0)
        if i % per_tick == 0:
            s = rec.stats()
            peak_q = max(peak_q, s["queued"])
            peak_p = max(peak_p, max(x["pending"] for x in s["sinks"].values()))
            time.sleep(0.01)
    return latencies, peak_q, peak_p


def _assert_accounted(rec: Recorder, written: Callable[[], int], published: int) -> dict[str, int]:
    dropped = rec.stats()["dropped"]
    assert written() + sum(dropped.values()) == published, (written(), dropped, published)
    return {k: v for k, v in dropped.items() if v}


def _locked_file(tmp_path: Path, hold: float) -> None:
    db = tmp_path / "locked.db"
    rec = Recorder(Settings.resolve(max_queue=MAX_QUEUE, batch_size=200, flush_interval=0.01,
                                    shutdown_timeout=5), sinks=[agentlog.SQLiteSink(db)])
    rec.publish("log", {"message": "before"})
    assert rec.flush(10)
    locker = start_py(LOCKER, str(db), str(hold))
    assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
    n = 20_000
    latencies, peak_q, peak_p = _publish_while_blocked(rec, n, seconds=min(hold * 0.6, 10))
    assert locker.wait(hold + 30) == 0
    t0 = time.monotonic()
    assert rec.flush(60), rec.stats()
    drained_in = time.monotonic() - t0
    rec.close()
    published = n + 3  # the implicit run's start and end, and "before"
    dropped = _assert_accounted(rec, lambda: stored(db, "SELECT count(*) FROM events")[0][0], published)
    assert dropped and set(dropped) <= {"queue_full", "sink_failed"}
    (w,) = stored(db, "SELECT written, dropped FROM writers")
    assert w == (published - sum(dropped.values()), sum(dropped.values()))  # the exact counts, in the file
    _report("locked file", latencies, peak_q, peak_p, dropped, drained_in)


def _hanging_sink(hold: float) -> None:
    sink = GateSink("remote")
    rec = Recorder(Settings.resolve(max_queue=MAX_QUEUE, batch_size=200, flush_interval=0.01,
                                    shutdown_timeout=5), sinks=[sink])
    rec.publish("log")
    assert sink.entered.wait(5)
    n = 20_000
    t_end = time.monotonic() + hold
    latencies, peak_q, peak_p = _publish_while_blocked(rec, n, seconds=hold * 0.6)
    time.sleep(max(0.0, t_end - time.monotonic()))
    sink.gate.set()
    t0 = time.monotonic()
    assert rec.flush(60)
    drained_in = time.monotonic() - t0
    rec.close()
    dropped = _assert_accounted(rec, lambda: len(sink.events), n + 3)
    assert set(dropped) == {"queue_full"}  # a hanging (not failing) sink loses only what the queue can't hold
    _report("hanging sink", latencies, peak_q, peak_p, dropped, drained_in)


def _report(case: str, latencies: list[float], peak_q: int, peak_p: int, dropped: dict[str, int],
            drained_in: float) -> None:
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    print(f"\n{case}: publish p50 {p50 * 1e6:.1f} us, p99 {p99 * 1e6:.1f} us; peak queued {peak_q},"
          f" peak pending {peak_p} (bound {MAX_QUEUE} each); dropped {dropped}; drained in {drained_in:.2f} s")
    assert p99 < 0.001
    assert peak_q <= MAX_QUEUE and peak_p <= MAX_QUEUE


def test_a_locked_store_keeps_publish_fast_memory_bounded_and_counts_exact(tmp_path: Path) -> None:
    _locked_file(tmp_path, hold=3.0)


def test_a_hanging_sink_keeps_publish_fast_memory_bounded_and_drains_after(tmp_path: Path) -> None:
    _hanging_sink(hold=2.0)


@pytest.mark.slow
def test_a_store_locked_for_sixty_seconds(tmp_path: Path) -> None:
    _locked_file(tmp_path, hold=60.0)
