"""``os.fork()`` and a fork-based multiprocessing pool while the writer is busy.

``tests/test_recorder.py::test_forked_child_gets_an_empty_queue_and_its_own_writer``
pins the basics with an idle writer; here a producer thread keeps the writer inside
SQLite while the main thread forks. Pass: no child hangs (each ends within seconds),
each child starts with an empty queue and no inherited connection, and every event
of every process is stored exactly once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import run_py, stored

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

FORKS = """
    import os, sys, threading, time, agentlog
    forks, per_child = int(sys.argv[2]), int(sys.argv[3])
    rec = agentlog.configure(sys.argv[1], flush_interval=0.002, batch_size=50)
    stop = threading.Event()
    def produce():  # keeps the writer busy: batches of 1 KB events, all the time
        n = 0
        while not stop.is_set():
            agentlog.log("parent", n=n, pad="x" * 1000)
            n += 1
            if n % 50 == 0:
                time.sleep(0.001)
        print("parent-events", n, flush=True)
    producer = threading.Thread(target=produce)
    producer.start()
    time.sleep(0.2)
    pids = []
    for k in range(forks):
        pid = os.fork()
        if pid == 0:
            r = agentlog.get_recorder()
            fresh = len(r._queue) == 0 and r.sinks[0]._conn is None and not r._worker.held
            for i in range(per_child):
                agentlog.log("child", k=k, i=i)
            ok = agentlog.flush(20)
            agentlog.shutdown()
            os._exit(0 if ok and fresh else 3)
        pids.append(pid)
        time.sleep(0.01)
    deadline = time.monotonic() + 60
    failed = []
    while pids and time.monotonic() < deadline:
        for pid in list(pids):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                pids.remove(pid)
                if os.waitstatus_to_exitcode(status) != 0:
                    failed.append(os.waitstatus_to_exitcode(status))
        time.sleep(0.01)
    stop.set()
    producer.join()
    print("hung", len(pids), "failed", failed, flush=True)
    for pid in pids:
        os.kill(pid, 9)
"""


def _forks_while_busy(db: Path, forks: int, per_child: int) -> None:
    proc = run_py(FORKS, str(db), str(forks), str(per_child), timeout=180)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert lines["hung"] == "0 failed []", proc.stdout + proc.stderr
    parent = int(lines["parent-events"])
    children = stored(db, "SELECT json_extract(payload, '$.fields.k'), json_extract(payload, '$.fields.i'),"
                          " count(*) FROM events WHERE json_extract(payload, '$.message') = 'child' GROUP BY 1, 2")
    assert len(children) == forks * per_child and all(n == 1 for *_, n in children)  # each once
    counts = stored(db, "SELECT count(*), count(DISTINCT json_extract(payload, '$.fields.n')) FROM events"
                        " WHERE json_extract(payload, '$.message') = 'parent'")[0]
    assert counts == (parent, parent)  # the parent's events: all, once; none copied into a child
    assert stored(db, "SELECT count(DISTINCT pid) FROM writers")[0][0] == forks + 1


def test_forking_while_the_writer_is_busy_neither_hangs_nor_duplicates(tmp_path: Path) -> None:
    _forks_while_busy(tmp_path / "fork.db", forks=10, per_child=20)


@pytest.mark.slow
def test_a_hundred_forks_while_the_writer_is_busy(tmp_path: Path) -> None:
    _forks_while_busy(tmp_path / "fork.db", forks=100, per_child=20)


POOL = """
    import multiprocessing, os, sys, time, agentlog
    agentlog.configure(sys.argv[1], flush_interval=0.5)  # long: the pool's exit must write what is queued
    def task(t):
        for i in range(25):
            agentlog.log("task", t=t, i=i)
        return os.getpid()
    if __name__ == "__main__":
        for i in range(3000):
            agentlog.log("parent", i=i, pad="y" * 500)   # queued and being written at fork time
        ctx = multiprocessing.get_context("fork")
        if sys.argv[2] == "with":
            with ctx.Pool(4) as pool:                    # __exit__ terminates the workers (SIGTERM)
                pids = set(pool.map(task, range(40), chunksize=1))
        else:
            pool = ctx.Pool(4)
            pids = set(pool.map(task, range(40), chunksize=1))
            pool.close()
            pool.join()
        print(len(pids), flush=True)
"""


@pytest.mark.parametrize("ending", [
    "close-join",
    pytest.param("with", marks=pytest.mark.xfail(  # with: terminate() sends SIGTERM
        reason="known bug: about 1 pool in 40 ended by terminate() still loses task events (no hang);"
               " see docs/guarantees.md section 10", strict=False)),
])
def test_a_fork_pool_stores_each_task_event_exactly_once(tmp_path: Path, ending: str) -> None:
    db = tmp_path / "pool.db"
    proc = run_py(POOL, str(db), ending, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = stored(db, "SELECT json_extract(payload, '$.fields.t'), json_extract(payload, '$.fields.i'), count(*)"
                      " FROM events WHERE json_extract(payload, '$.message') = 'task' GROUP BY 1, 2")
    assert len(rows) == 40 * 25 and all(n == 1 for *_, n in rows)
    assert stored(db, "SELECT count(*) FROM events WHERE json_extract(payload, '$.message') = 'parent'")[0][0] == 3000
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_forty_pools_ended_by_terminate_never_hang(tmp_path: Path) -> None:
    """Before the SIGTERM safeguards (docs/guarantees.md section 3), about 1 pool in 15 hung
    for good in ``terminate()``. Lost task events are not asserted here: about 1 run in 40
    still loses some (section 10)."""
    for n in range(40):
        proc = run_py(POOL, str(tmp_path / f"pool{n}.db"), "with", timeout=60)
        assert proc.returncode == 0, (n, proc.stderr)
