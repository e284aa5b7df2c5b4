"""The two writers of the default store: ``writer="process"`` (a child process) and ``"thread"``.

Key behaviours run under both; the ones only a writer process has (surviving the host's
SIGKILL, falling back when it dies, never starting for nothing) run in process mode.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import agentlog
from agentlog import MemorySink

from helpers import query

MODES = ["process", "thread"]
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _children(pid: int) -> list[int]:
    """The pids of ``pid``'s children (Linux /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(p) for p in (task / "children").read_text().split()]
    return out


def _writers(pid: int) -> set[int]:
    """``pid``'s children that are agentlog writer processes."""
    out = set()
    for child in _children(pid):
        try:
            if b"agentlog._writer_process" in Path(f"/proc/{child}/cmdline").read_bytes():
                out.add(child)
        except OSError:
            pass  # it has just exited
    return out


def _run(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AGENTLOG_STRICT"}
    env["PYTHONPATH"] = SRC
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("writer", MODES)
def test_every_event_is_stored_and_the_counters_are_exact_after_flush(db: Path, writer: str) -> None:
    rec = agentlog.configure(db, writer=writer, max_queue=500, flush_interval=5)
    with agentlog.run("r"):
        for i in range(700):  # the queue holds 500: the rest is dropped and counted
            agentlog.log("tick", i=i, note="sk-" + "a1B2" * 12)
    assert rec.flush(10)
    s = rec.stats()
    stored = query(db, "SELECT count(*) FROM events")[0][0]
    assert s["sinks"][f"sqlite:{db}"]["written"] == stored == 500
    # Accepted: run.started and 499 logs (each with a key to redact); dropped: 201 logs and run.finished.
    assert s["dropped"]["queue_full"] == 202
    assert s["redacted"] == 499 and s["queued"] == 0 and s["healthy"] and s["pid"] == os.getpid()
    agentlog.shutdown()
    (w,) = query(db, "SELECT pid, written, dropped, stats FROM writers")
    assert (w["pid"], w["written"], w["dropped"]) == (os.getpid(), 500, 202)
    assert json.loads(w["stats"])["closed"] is True


@pytest.mark.parametrize("writer", MODES)
def test_sync_publish_returns_after_the_commit(db: Path, writer: str) -> None:
    rec = agentlog.configure(db, writer=writer, durability="sync", flush_interval=5)
    for i in range(5):
        assert rec.publish("log", {"message": "committed", "i": i})
        assert query(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == i + 1


@pytest.mark.parametrize("writer", MODES)
def test_the_writers_log_records_reach_the_hosts_logger(db: Path, writer: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    db.write_bytes(b"not a database, but someone's file" * 100)
    with caplog.at_level(logging.WARNING, logger="agentlog"):
        rec = agentlog.configure(db, writer=writer)
        agentlog.log("hello")
        assert rec.flush(10)
    fallback = db.with_name("agentlog.fallback.db")
    assert any(str(fallback) in r.getMessage() and r.name == "agentlog" for r in caplog.records), caplog.text
    assert rec.stats()["sinks"][f"sqlite:{db}"]["fallback"] == str(fallback)
    assert query(fallback, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 1


@pytest.mark.parametrize("writer", MODES)
def test_processors_and_extra_sinks_see_the_events_in_either_mode(db: Path, writer: str) -> None:
    extra = MemorySink("extra")
    agentlog.configure(db, writer=writer)
    with agentlog.run("r"):
        agentlog.log("outside")
        with agentlog.sinks(extra):
            agentlog.log("inside", token="ghp_" + "A1b2C3d4" * 5)
    assert agentlog.flush(10)
    assert [e.payload["message"] for e in extra.events] == ["inside"]
    assert extra.events[0].payload["fields"]["token"].startswith("[REDACTED")
    assert query(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 2

    seen: list[str] = []

    def note(ev: agentlog.Event) -> agentlog.Event:
        seen.append(ev.type)
        return ev

    rec = agentlog.configure(db, writer=writer, processors=[note])
    rec.publish("log", {"message": "processed"})
    assert rec.flush(10) and "log" in seen  # host callables: this recorder writes in-process


def test_the_writer_process_starts_on_the_first_drain_not_at_import_or_configure(tmp_path: Path) -> None:
    out = _run("""
        import json, os, sys, time
        from pathlib import Path
        def children():
            return [int(p) for t in Path(f"/proc/{os.getpid()}/task").iterdir()
                    for p in (t / "children").read_text().split()]
        import agentlog
        rec = agentlog.configure(sys.argv[1], writer="process", flush_interval=0.05)
        time.sleep(0.3)
        before = children()
        agentlog.log("first")
        assert rec.flush(20)
        print(json.dumps([before, children()]))
    """, str(tmp_path / "a.db"))
    before, after = json.loads(out.stdout)
    assert before == [] and len(after) == 1, out.stderr


def test_events_the_writer_holds_while_its_process_starts_are_counted_as_queued(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the first drain and the child's "ready", the batch is in the forwarder's hands:
    neither in the queue nor in the pipe. ``stats()["queued"]`` must still count it."""
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text("import time\ntime.sleep(1.5)\n")
    monkeypatch.setenv("PYTHONPATH", str(slow))  # read by the writer process only: it starts after this
    rec = agentlog.configure(tmp_path / "a.db", writer="process", flush_interval=0.02)
    for i in range(5):
        agentlog.log(f"event {i}")
    time.sleep(0.5)  # the forwarder has taken the batch and waits for the child
    queued = rec.stats()["queued"]
    assert rec.flush(30)
    assert rec.stats()["queued"] == 0
    (stored,) = query(tmp_path / "a.db", "SELECT count(*) FROM events")[0]
    assert queued == stored >= 5  # the logs and their implicit run's events


def test_a_host_killed_with_sigkill_loses_nothing_the_writer_process_had(tmp_path: Path) -> None:
    """The store is locked while the host publishes: its writer process holds the events
    (the host's queue is empty), the host is killed, the lock goes, and they are all written."""
    db = tmp_path / "k.db"
    agentlog.configure(db).publish("log", {"message": "schema"})
    agentlog.shutdown()
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    env = {k: v for k, v in os.environ.items() if k != "AGENTLOG_STRICT"}
    env["PYTHONPATH"] = SRC
    host = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, time, agentlog
        rec = agentlog.configure(sys.argv[1], writer="process", flush_interval=0.02, shutdown_timeout=20)
        with agentlog.run("killed"):
            for i in range(300):
                agentlog.log("held", i=i)
            while rec.stats()["queued"] or rec.stats()["healthy"]:  # all handed over, none written
                time.sleep(0.02)
            print("handed", flush=True)
            time.sleep(60)
    """), str(db)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None and host.stdout.readline().strip() == "handed"
        (writer,) = _children(host.pid)
        os.kill(host.pid, signal.SIGKILL)
        host.wait(10)
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    deadline = time.monotonic() + 30
    while Path(f"/proc/{writer}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{writer}").exists(), "the writer process outlived its host"
    assert query(db, "SELECT count(*) FROM events WHERE type = 'log' AND"
                     " json_extract(payload, '$.message') = 'held'")[0][0] == 300
    (w,) = query(db, "SELECT pid, stats FROM writers WHERE pid = ?", host.pid)
    assert json.loads(w["stats"])["closed"] is False  # doctor reports the host's crash


def test_a_dead_writer_process_is_replaced_by_the_in_process_writer(db: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    earlier = _writers(os.getpid())  # other tests' writers may still be finishing
    rec = agentlog.configure(db, writer="process", flush_interval=0.02)
    agentlog.log("before")
    assert rec.flush(10)
    (child,) = _writers(os.getpid()) - earlier
    with caplog.at_level(logging.ERROR, logger="agentlog"):
        os.kill(child, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not any("writer process" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline:
            time.sleep(0.01)
        for i in range(50):
            agentlog.log("after", i=i)
        assert rec.flush(10)
    errors = [r for r in caplog.records if "writer process" in r.getMessage()]
    assert len(errors) == 1 and "exited unexpectedly" in errors[0].getMessage()
    assert query(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 51
    assert rec.stats()["dropped"]["internal_error"] == 0  # everything sent had been confirmed


def test_a_forked_child_starts_its_own_writer_process(tmp_path: Path) -> None:
    out = _run("""
        import json, os, sys, agentlog
        rec = agentlog.configure(sys.argv[1], writer="process")
        agentlog.log("parent")
        assert rec.flush(20)
        pid = os.fork()
        if pid == 0:
            agentlog.log("child")
            ok = agentlog.flush(20)
            agentlog.shutdown()
            os._exit(0 if ok else 3)
        _, status = os.waitpid(pid, 0)
        agentlog.log("parent again")
        print(json.dumps([os.waitstatus_to_exitcode(status), agentlog.flush(20)]))
    """, str(tmp_path / "f.db"))
    assert json.loads(out.stdout) == [0, True], out.stderr
    rows = query(tmp_path / "f.db", "SELECT json_extract(payload, '$.message') AS m, count(*) AS n FROM events"
                                    " WHERE type = 'log' GROUP BY m ORDER BY m")
    assert [(r["m"], r["n"]) for r in rows] == [("child", 1), ("parent", 1), ("parent again", 1)]


@pytest.mark.parametrize("writer", MODES)
def test_memory_stays_bounded_while_the_store_is_locked(db: Path, writer: str) -> None:
    rec = agentlog.configure(db, writer=writer, max_queue=200, flush_interval=0.01)
    rec.publish("log", {"message": "schema"})
    assert rec.flush(10)
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(3000):
            rec.publish("log", {"message": "while locked", "i": i, "pad": "x" * 200})
            if i % 100 == 0:
                time.sleep(0.01)  # the writer (and the forwarder) get to run
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert rec.flush(30)
    stored = query(db, "SELECT count(*) FROM events WHERE json_extract(payload, '$.message') = 'while locked'")[0][0]
    s = rec.stats()
    lost = s["dropped"]["queue_full"] + s["dropped"]["sink_failed"]
    # Every event is stored or counted; what was held is bounded (thread: the queue and the slot's
    # retries; process: that in each process, plus what the pipe and one read hold).
    assert stored + lost == 3000 and stored <= 8 * 200, (stored, s["dropped"])


def test_a_host_whose_executable_is_not_python_writes_in_process_and_says_why(tmp_path: Path) -> None:
    """An embedding application (uWSGI, a frozen bundle) names itself in sys.executable:
    running it with the writer's arguments would start another copy of it."""
    out = _run("""
        import sys, agentlog
        sys.executable = "/bin/true"
        rec = agentlog.configure(sys.argv[1], writer="process", flush_interval=0.02)
        for i in range(20):
            agentlog.log("kept", i=i)
        assert rec.flush(10)
        print(rec.stats()["dropped"]["internal_error"])
    """, str(tmp_path / "e.db"))
    assert out.stdout.strip() == "0"
    assert "does not look like a Python interpreter" in out.stderr
    assert query(tmp_path / "e.db", "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 20
