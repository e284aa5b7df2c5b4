"""The WAL stays bounded while other processes read.

Two readers in another process: one that keeps opening short read transactions
from two connections whose transactions always overlap (without help, SQLite's
passive checkpoints never find a moment to rewind the WAL, and it grows without
end), and one that holds a single read transaction open for seconds (the WAL must
keep everything written since it began; once it ends, the WAL must shrink back).
The writer records ~4 KB events at a steady rate meanwhile.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import agentlog
from agentlog.store.sqlite import JOURNAL_SIZE_LIMIT, WAL_RESTART_BYTES

from harness import start_py

MiB = 1024 * 1024

OVERLAPPING_READERS = """
    import sqlite3, sys, threading, time
    db, seconds = sys.argv[1], float(sys.argv[2])
    end = time.monotonic() + seconds
    def reader(offset):
        conn = sqlite3.connect(db, isolation_level=None)
        time.sleep(offset)
        while time.monotonic() < end:
            conn.execute("BEGIN")
            conn.execute("SELECT count(*) FROM al_events").fetchone()
            time.sleep(0.02)                    # a short transaction; the other one overlaps it
            conn.execute("COMMIT")
    threads = [threading.Thread(target=reader, args=(o,)) for o in (0, 0.01)]
    for t in threads: t.start()
    print("reading", flush=True)
    for t in threads: t.join()
"""

LONG_READER = """
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM al_events").fetchone()   # the snapshot is held from here
    print("reading", flush=True)
    time.sleep(float(sys.argv[2]))
    conn.execute("COMMIT")
    print("done", flush=True)
"""


class Load:
    """Publishes ~4 KB events at ``rate`` per second and samples the WAL's size."""

    def __init__(self, db: Path, rate: int) -> None:
        self.db, self.rate = db, rate
        self.stop = threading.Event()
        self.samples: list[tuple[float, int]] = []
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        pad = "w" * 4000
        t0 = time.monotonic()
        n = 0
        while not self.stop.is_set():
            agentlog.log("load", n=n, pad=pad)
            n += 1
            if n % 20 == 0:
                try:
                    self.samples.append((time.monotonic() - t0, os.stat(f"{self.db}-wal").st_size))
                except FileNotFoundError:
                    pass
                time.sleep(max(0.0, n / self.rate - (time.monotonic() - t0)))

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def wal_max(self, since: float = 0.0, until: float = float("inf")) -> int:
        return max((size for t, size in self.samples if since <= t <= until), default=0)

    def elapsed(self) -> float:
        return self.samples[-1][0] if self.samples else 0.0


def _overlapping_readers(db: Path, seconds: float, rate: int) -> int:
    agentlog.configure(db)
    agentlog.log("create")
    assert agentlog.flush(10)
    with Load(db, rate) as load:
        readers = start_py(OVERLAPPING_READERS, str(db), str(seconds))
        assert readers.stdout is not None and readers.stdout.readline().strip() == "reading"
        readers.wait(seconds + 30)
    agentlog.shutdown()
    assert readers.returncode == 0, readers.stderr.read() if readers.stderr else ""
    written = sum(1 for _ in load.samples) * 20 * 4000
    peak = load.wal_max()
    print(f"\noverlapping readers for {seconds:.0f} s, ~{written / MiB:.0f} MiB of events written:"
          f" WAL peak {peak / MiB:.1f} MiB (restart threshold {WAL_RESTART_BYTES / MiB:.0f} MiB)")
    return peak


def test_readers_that_always_overlap_do_not_grow_the_wal_without_bound(tmp_path: Path) -> None:
    peak = _overlapping_readers(tmp_path / "wal.db", seconds=6, rate=1500)
    assert peak <= WAL_RESTART_BYTES + 16 * MiB  # the threshold plus what a second of writing can add (unfixed: 50 MiB)


@pytest.mark.slow
def test_thirty_seconds_of_overlapping_readers_keep_the_wal_bounded(tmp_path: Path) -> None:
    peak = _overlapping_readers(tmp_path / "wal.db", seconds=30, rate=1500)
    assert peak <= WAL_RESTART_BYTES + 16 * MiB


def test_a_long_read_transaction_holds_the_wal_only_while_it_lasts(tmp_path: Path) -> None:
    db = tmp_path / "wal.db"
    agentlog.configure(db)
    agentlog.log("create")
    assert agentlog.flush(10)
    hold = 3.0
    with Load(db, rate=1500) as load:
        reader = start_py(LONG_READER, str(db), str(hold))
        assert reader.stdout is not None and reader.stdout.readline().strip() == "reading"
        began = load.elapsed()
        assert reader.stdout.readline().strip() == "done"
        ended = load.elapsed()
        time.sleep(3.0)  # the writer goes on: it must rewind and truncate the WAL by itself
        after = load.elapsed()
    agentlog.shutdown()
    during = load.wal_max(began, ended)
    final = load.wal_max(after - 0.5, after)
    print(f"\nlong reader {hold:.0f} s: WAL peak {during / MiB:.1f} MiB while it read;"
          f" {final / MiB:.1f} MiB 2.5-3 s after it ended (journal_size_limit {JOURNAL_SIZE_LIMIT / MiB:.0f} MiB)")
    assert during > WAL_RESTART_BYTES / 4  # it did grow while the snapshot was held (sanity of the load)
    assert final <= JOURNAL_SIZE_LIMIT
