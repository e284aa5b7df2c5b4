"""Eight processes start writing one file that does not exist yet, at the same instant.

A driver (a fresh interpreter) runs rounds: each round forks 8 children that
wait on one pipe, then all ``configure()`` the same new path and publish in
``sync`` mode, so an accepted publish is a committed row. Creating the file,
the switch to WAL (which can itself meet "database is locked") and the
migration all race. Pass: no exception and no error log in any child, rows =
acknowledged events, no duplicates, one set of migrations, integrity ok.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentlog.store.migrate import latest_version

from harness import integrity, run_py, stored

DRIVER = """
import json, logging, os, sys
import agentlog
rounds, procs, n, base = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
results = open(os.path.join(base, "results.txt"), "a")
for r in range(rounds):
    db = os.path.join(base, f"cold-{r}.db")
    rd, wr = os.pipe()
    pids = []
    for p in range(procs):
        pid = os.fork()
        if pid == 0:
            os.close(wr)
            os.read(rd, 1)  # everyone starts together
            line = ""
            try:
                agentlog.configure(db, durability="sync", flush_interval=0.01)
                acked = sum(bool(agentlog.log("tick", p=p, i=i)) for i in range(n))
                closed = agentlog.shutdown(timeout=60)
                line = f"{r} {p} {acked} {int(closed)}\\n"
            except BaseException as exc:
                line = f"{r} {p} EXC {exc!r}\\n"
            results.write(line)
            results.flush()
            os._exit(0)
        pids.append(pid)
    os.close(rd)
    os.write(wr, b"x" * procs)
    os.close(wr)
    for pid in pids:
        os.waitpid(pid, 0)
"""


def _cold_starts(tmp_path: Path, rounds: int, procs: int = 8, n: int = 20) -> None:
    proc = run_py(DRIVER, str(rounds), str(procs), str(n), str(tmp_path), timeout=900)
    assert proc.returncode == 0, proc.stderr
    # Nothing reached the host, and the recorder had nothing to complain about.
    assert "locked" not in proc.stderr and "ERROR" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    lines = (tmp_path / "results.txt").read_text().splitlines()
    assert len(lines) == rounds * procs
    assert not [ln for ln in lines if "EXC" in ln], lines
    acked: dict[int, int] = {}
    for ln in lines:
        r, _p, n_acked, closed = ln.split()
        assert closed == "1"
        acked[int(r)] = acked.get(int(r), 0) + int(n_acked)
    for r in range(rounds):
        db = tmp_path / f"cold-{r}.db"
        assert integrity(db) == "ok"
        rows = stored(db, "SELECT count(*), count(DISTINCT event_id) FROM events WHERE type = 'log'")[0]
        assert rows[0] == rows[1] == acked[r] == procs * n, (r, rows, acked[r])
        assert stored(db, "SELECT count(*) FROM al_migrations")[0][0] == latest_version()
        assert stored(db, "SELECT count(*), sum(dropped) FROM writers")[0] == (procs, 0)
    print(f"\n{rounds * procs} process cold starts in {rounds} rounds of {procs}: "
          f"{sum(acked.values())} events acknowledged and stored, 0 errors")


def test_eight_processes_cold_start_one_file_without_any_error(tmp_path: Path) -> None:
    _cold_starts(tmp_path, rounds=4)


@pytest.mark.slow
def test_a_hundred_rounds_of_eight_cold_starts(tmp_path: Path) -> None:
    _cold_starts(tmp_path, rounds=100)  # 800 processes; 100 files born under contention
