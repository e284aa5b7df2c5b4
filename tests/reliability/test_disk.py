"""Disk full (a real 4 MiB tmpfs) and read-only files and directories (as an unprivileged user).

Pass: no exception in the host; one clear error naming the path (then
rate-limited); every event written or counted; recovery within seconds once
space frees or the permission is fixed; the CLI still reads a read-only file.
Root ignores file modes, so the read-only cases run the writer as ``nobody``.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import agentlog
from agentlog import Recorder, Settings
from agentlog.cli import main

from harness import (
    as_unprivileged,
    give_to_unprivileged,
    integrity,
    run_py,
    shared_dir,
    start_py,
    stored,
    tmpfs,
)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_disk_full_is_survived_counted_and_recovered_from(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "agentlog")
    with tmpfs("4m") as mnt:
        db = mnt / "agentlog.db"
        rec = Recorder(Settings.resolve(flush_interval=0.01, batch_size=50, shutdown_timeout=2),
                       sinks=[agentlog.SQLiteSink(db)])
        try:
            rec.publish("log", {"message": "before"})
            assert rec.flush(10)
            filler = _fill(mnt)
            n = 400
            for i in range(n):
                assert rec.publish("log", {"message": "while full", "i": i, "pad": "p" * 4000}) is True
            assert rec.flush(2) is False
            sink = rec.stats()["sinks"][f"sqlite:{db}"]
            assert not rec.stats()["healthy"] and sink["errors"] >= 1 and "full" in sink["last_error"]
            failures = [r for r in caplog.records if "failed to write" in r.getMessage()]
            assert len(failures) == 1 and str(db) in failures[0].getMessage()  # once, naming the file
            filler.unlink()
            t0 = time.monotonic()
            assert rec.flush(15), rec.stats()
            recovered_in = time.monotonic() - t0
        finally:
            rec.close()
        published = n + 3
        assert stored(db, "SELECT count(*) FROM events")[0][0] + sum(rec.stats()["dropped"].values()) == published
        assert stored(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == n + 1  # nothing was dropped
        assert integrity(db) == "ok"
        assert any("recovered" in r.getMessage() for r in caplog.records)
        result = CliRunner().invoke(main, ["runs", "--db", str(db)])
        assert result.exit_code == 0, result.output
        print(f"\ndisk full: {n} events held while the disk was full, recovered {recovered_in:.2f} s after space freed")
        assert recovered_in < 5.0


WRITER = """
import json, sys, time, agentlog
db = sys.argv[1]
rec = agentlog.configure(db, flush_interval=0.01, shutdown_timeout=2)
with agentlog.run("read-only"):
    for i in range(50):
        assert agentlog.log("tick", i=i)
deadline = time.monotonic() + 10
while rec.stats()["healthy"] and time.monotonic() < deadline:
    time.sleep(0.01)
print("blocked", json.dumps(rec.stats()["sinks"][f"sqlite:{db}"]["last_error"]), flush=True)
sys.stdin.readline()   # the test fixes the permission
t0 = time.monotonic()
ok = rec.flush(15)
print("flushed", int(ok), round(time.monotonic() - t0, 3), flush=True)
"""


@pytest.mark.parametrize("what", ["file", "directory"])
def test_read_only_store_as_unprivileged_user_recovers_when_fixed(what: str) -> None:
    with shared_dir() as base:
        folder = base / "store"
        folder.mkdir(mode=0o755)
        db = folder / "agentlog.db"
        if what == "file":
            give_to_unprivileged(folder)
            agentlog.configure(db)
            agentlog.log("written by root")
            agentlog.shutdown()
            db.chmod(0o644)  # root's file: the writer may read but not write it
        proc = start_py(as_unprivileged(WRITER), str(db), stdin=subprocess.PIPE)
        assert proc.stdout is not None and proc.stdin is not None
        line = proc.stdout.readline().split(maxsplit=1)
        assert line and line[0] == "blocked", proc.communicate()[1]
        give_to_unprivileged(db if what == "file" else folder)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        _, ok, seconds = out.split()
        assert ok == "1"
        assert float(seconds) < 5.0
        errors = [ln for ln in err.splitlines() if "failed to write" in ln]
        assert len(errors) == 1 and str(db) in errors[0], err  # one clear error, naming the file
        assert stored(db, "SELECT count(*) FROM events WHERE type = 'log' AND"
                          " json_extract(payload, '$.message') = 'tick'")[0][0] == 50
        print(f"\nread-only {what}: first error {line[1].strip()}, recovered {seconds} s after the fix")


READER = """
import sys
from agentlog.cli import main
sys.argv = ["agentlog", "runs", "--db", sys.argv[1]]
main()
"""


def test_the_cli_reads_a_read_only_file_in_a_read_only_directory() -> None:
    with shared_dir() as base:
        folder = base / "ro"
        folder.mkdir(mode=0o755)
        db = folder / "agentlog.db"
        agentlog.configure(db)
        with agentlog.run("readable"):
            pass
        agentlog.shutdown()
        db.chmod(0o444)
        before = sorted(os.listdir(folder))
        proc = run_py(as_unprivileged(READER), str(db))
        assert proc.returncode == 0, proc.stderr
        assert "readable" in proc.stdout
        assert sorted(os.listdir(folder)) == before  # no -wal or -shm could be made, none was needed
        probe = run_py(as_unprivileged("sqlite3.connect(sys.argv[1]).execute('CREATE TABLE x (y)')"), str(db))
        assert "readonly" in probe.stderr  # the reader really was unprivileged
