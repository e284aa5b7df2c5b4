"""The recorder: bounded queue, durability modes, flush/close, sink failures, fork and exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import agentlog
from agentlog import MemorySink, Recorder, Settings

from helpers import BrokenSink, FlakySink, GateSink, query


def _rec(sinks: list[agentlog.Sink], **settings: object) -> Recorder:
    return Recorder(Settings.resolve(**settings), sinks=sinks)


def test_publish_returns_at_once_and_the_writer_batches(db: Path) -> None:
    rec = _rec([agentlog.SQLiteSink(db)], flush_interval=0.05)
    try:
        for i in range(5000):
            assert rec.publish("log", {"message": f"m{i}"})
        assert rec.flush(10)
    finally:
        rec.close()
    assert query(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 5000
    # One implicit run holds them, with a dense per-run sequence.
    seqs = [r[0] for r in query(db, "SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(1, 5003))  # run.started, 5000 logs, run.finished


def test_full_queue_drops_new_events_and_counts_them() -> None:
    sink = GateSink()
    rec = _rec([sink], max_queue=100, batch_size=10, flush_interval=0.01)
    try:
        rec.publish("log", {"n": -1})
        assert sink.entered.wait(5)  # the writer is now stuck in write()
        accepted = sum(rec.publish("log", {"n": i}) for i in range(300))
        assert accepted == 100
        assert rec.stats()["dropped"]["queue_full"] == 200
        sink.gate.set()
        assert rec.flush(10)
    finally:
        sink.gate.set()
        rec.close()
    stored = [e.payload.get("n") for e in sink.events if e.type == "log"]
    assert stored == [-1, *range(100)]  # the oldest are kept, in order


def test_block_policy_waits_for_room_then_drops_after_the_timeout() -> None:
    sink = GateSink()
    rec = _rec([sink], max_queue=5, batch_size=5, on_full="block", block_timeout=0.2, flush_interval=0.01)
    try:
        rec.publish("log")
        assert sink.entered.wait(5)
        for _ in range(5):
            assert rec.publish("log")
        t0 = time.monotonic()
        assert rec.publish("log") is False
        assert 0.15 <= time.monotonic() - t0 < 2.0
        assert rec.stats()["dropped"]["queue_full"] == 1
        sink.gate.set()  # room again: a blocked publish now gets through
        assert rec.publish("log")
    finally:
        sink.gate.set()
        rec.close()


def test_sync_durability_returns_after_the_commit(db: Path) -> None:
    rec = _rec([agentlog.SQLiteSink(db)], durability="sync", flush_interval=5.0)
    try:
        assert rec.publish("log", {"message": "durable"})
        # Visible to another connection immediately, long before the flush interval.
        assert query(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 1
    finally:
        rec.close()


def test_sync_publish_reports_false_when_the_store_fails() -> None:
    rec = _rec([BrokenSink()], durability="sync", sync_timeout=2.0, shutdown_timeout=0.1)
    try:
        assert rec.publish("log") is False
    finally:
        rec.close()


def test_flush_honours_its_timeout_when_the_store_stalls() -> None:
    sink = GateSink()
    rec = _rec([sink], flush_interval=0.01)
    try:
        rec.publish("log")
        assert sink.entered.wait(5)
        t0 = time.monotonic()
        assert rec.flush(0.2) is False
        assert time.monotonic() - t0 < 1.0
        sink.gate.set()
        assert rec.flush(5) is True
    finally:
        sink.gate.set()
        rec.close()


def test_close_is_idempotent_and_later_publishes_are_counted() -> None:
    sink = MemorySink()
    rec = _rec([sink])
    rec.publish("log")
    assert rec.close() is True
    assert rec.close() is True
    assert sink.closed
    assert rec.publish("log") is False
    assert rec.stats()["dropped"]["closed"] == 1
    assert rec.flush(1) is True


def test_a_failing_sink_is_retried_in_order_until_it_recovers() -> None:
    flaky = FlakySink(failures=3)
    healthy = MemorySink("healthy")
    rec = _rec([flaky, healthy], flush_interval=0.01, batch_size=2)
    try:
        for i in range(10):
            rec.publish("log", {"n": i})
        deadline = time.monotonic() + 10
        while len(flaky.events) < 11 and time.monotonic() < deadline:  # run.started + 10
            time.sleep(0.02)
        assert rec.flush(5)
    finally:
        rec.close()
    assert [e.payload.get("n") for e in flaky.events if e.type == "log"] == list(range(10))
    assert [e.payload.get("n") for e in healthy.events if e.type == "log"] == list(range(10))
    stats = rec.stats()["sinks"]["flaky"]
    assert stats["errors"] == 3 and stats["failed"] == 0 and stats["healthy"]


def test_a_dead_sink_loses_only_what_it_could_not_hold_and_counts_it(caplog: pytest.LogCaptureFixture) -> None:
    broken = BrokenSink("broken")
    healthy = MemorySink("healthy")
    rec = _rec([broken, healthy], flush_interval=0.01, max_queue=50, shutdown_timeout=0.2)
    for i in range(120):
        rec.publish("log", {"n": i})
        if i % 10 == 0:
            time.sleep(0.01)
    assert rec.flush(5) is False  # not everything could be written
    rec.close()
    s = rec.stats()
    assert len([e for e in healthy.events if e.type == "log"]) == 120
    assert s["sinks"]["broken"]["written"] == 0
    # Every event ended up counted: none was silently lost.
    assert s["sinks"]["broken"]["failed"] == s["sinks"]["healthy"]["written"] == 122
    assert s["dropped"]["sink_failed"] == 122
    assert sum("no space left on device" in r.getMessage() for r in caplog.records) == 1  # logged once


def test_processors_transform_and_filter_and_a_failing_one_masks_the_payload() -> None:
    def redact(ev: agentlog.Event) -> agentlog.Event | None:
        if ev.payload.get("secret"):
            ev.payload["secret"] = "[REDACTED]"
        return ev

    def drop_debug(ev: agentlog.Event) -> agentlog.Event | None:
        return None if ev.payload.get("level") == "debug" else ev

    def explode(ev: agentlog.Event) -> agentlog.Event | None:
        if ev.payload.get("boom"):
            raise RuntimeError("hook bug")
        return ev

    sink = MemorySink()
    rec = Recorder(Settings.resolve(), sinks=[sink], processors=[redact, drop_debug, explode])
    rec.publish("log", {"secret": "sk-123", "level": "info"})
    rec.publish("log", {"level": "debug"})
    rec.publish("log", {"boom": True, "message": "the hook never saw this", "status": "ok", "duration_ms": 3})
    rec.close()
    logs = [e.payload for e in sink.events if e.type == "log"]
    # Fail closed: the event stays (a span still closes), its text does not.
    assert logs == [{"secret": "[REDACTED]", "level": "info"},
                    {"status": "ok", "duration_ms": 3, "$redacted": "processor_failed",
                     "processor": "test_processors_transform_and_filter_and_a_failing_one_masks_the_payload.<locals>.explode"}]
    assert rec.stats()["masked"] == 1 and sum(rec.stats()["dropped"].values()) == 0


def test_context_sinks_receive_only_events_published_inside(db: Path) -> None:
    agentlog.configure(db)
    extra = MemorySink("extra")
    with agentlog.run("r"):
        agentlog.log("before")
        with agentlog.sinks(extra):
            agentlog.log("inside")
        agentlog.log("after")
    assert agentlog.flush(5)
    assert [e.payload["message"] for e in extra.events] == ["inside"]
    assert query(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 3


def test_recorder_counters_are_written_into_the_database(db: Path) -> None:
    rec = _rec([agentlog.SQLiteSink(db)], max_queue=10, flush_interval=0.5)
    for _ in range(50):
        rec.publish("log")
    rec.close()
    (w,) = query(db, "SELECT * FROM writers")
    # The queue held run.started and 9 logs; the implicit run's end is always kept.
    assert w["pid"] == os.getpid() and w["dropped"] == 41 and w["written"] == 11
    assert json.loads(w["stats"])["dropped"]["queue_full"] == 41
    assert query(db, "SELECT status FROM runs")[0][0] == "ok"


def test_bad_arguments_are_refused_with_the_setting_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(agentlog.ConfigError, match="durability"):
        agentlog.configure(durability="sometimes")
    with pytest.raises(agentlog.ConfigError, match="batch_size"):
        agentlog.configure(batch_size=0)
    with pytest.raises(agentlog.ConfigError, match="flush_interval"):
        agentlog.configure(flush_interval=float("nan"))
    monkeypatch.setenv("AGENTLOG_KEEP_DELTAS", "maybe")  # the environment's mistakes are not raised
    assert Settings.resolve().keep_deltas is False
    monkeypatch.setenv("AGENTLOG_KEEP_DELTAS", "yes")
    monkeypatch.setenv("AGENTLOG_FLUSH_INTERVAL", "0.25")
    s = Settings.resolve(flush_interval=0.5)
    assert s.keep_deltas is True and s.flush_interval == 0.5  # explicit beats env
    with pytest.raises(agentlog.ConfigError, match="postgres"):
        agentlog.configure("postgresql://localhost/test")


def _run_script(code: str, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTLOG_DB": str(db)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("ending", ["return", "exception", "sys.exit"])
def test_everything_queued_is_written_at_interpreter_exit(db: Path, ending: str) -> None:
    code = f"""
        import sys, agentlog
        agentlog.configure(flush_interval=30)  # nothing would be written before exit otherwise
        with agentlog.run("exit-test"):
            for i in range(2000):
                agentlog.log("m", i=i)
        if "{ending}" == "exception":
            raise RuntimeError("crash")
        if "{ending}" == "sys.exit":
            sys.exit(3)
    """
    proc = _run_script(code, db)
    assert proc.returncode == {"return": 0, "exception": 1, "sys.exit": 3}[ending], proc.stderr
    assert query(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 2000
    assert query(db, "SELECT status FROM runs")[0][0] == "ok"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_gets_an_empty_queue_and_its_own_writer(db: Path) -> None:
    code = """
        import os, sys, agentlog
        agentlog.configure(flush_interval=30)
        with agentlog.run("parent"):
            for i in range(500):
                agentlog.log("parent", i=i)   # still queued at fork time
            pid = os.fork()
            if pid == 0:
                agentlog.log("child")
                ok = agentlog.flush(10)
                agentlog.shutdown()
                os._exit(0 if ok else 1)
            _, status = os.waitpid(pid, 0)
        sys.exit(os.waitstatus_to_exitcode(status))
    """
    proc = _run_script(code, db)
    assert proc.returncode == 0, proc.stderr
    counts = dict(query(db, "SELECT json_extract(payload, '$.message') AS m, count(*) FROM events"
                            " WHERE type = 'log' GROUP BY m"))
    assert counts == {"parent": 500, "child": 1}  # no copy of the parent's queue in the child
    assert query(db, "SELECT count(DISTINCT pid) FROM writers")[0][0] == 2


def test_a_directory_as_the_database_is_refused_at_configure(tmp_path: Path) -> None:
    with pytest.raises(agentlog.ConfigError, match="is a directory"):
        agentlog.configure(tmp_path)


def test_fsync_mode_uses_full_synchronous_commits(db: Path) -> None:
    rec = agentlog.configure(db, fsync=True, writer="thread")  # the sink's connection is inspected here
    rec.publish("log")
    assert rec.flush(5)
    sink = rec.sinks[0]
    assert isinstance(sink, agentlog.SQLiteSink) and sink._conn is not None
    assert sink._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


class _SlowSink(MemorySink):
    """Takes 20 ms per batch: a writer that stays behind its producer."""

    def write(self, events):  # type: ignore[no-untyped-def]
        time.sleep(0.02)
        super().write(events)


def test_a_writer_that_stays_behind_lets_go_of_finished_streams() -> None:
    """Gathered stream chunks are collected before every batch, not only once the queue is empty.

    Otherwise every streamed call (holding its whole request) stays alive for as long as
    the writer is behind: unbounded memory for an agent that keeps it busy.
    """
    import gc
    import weakref

    sink = _SlowSink()
    agentlog.configure(sinks=[sink], batch_size=10, max_queue=100_000)
    for i in range(400):  # a backlog of 40 batches, 0.8 s
        agentlog.log(f"busy {i}")
    time.sleep(0.05)  # the writer is inside its drain and will stay there
    calls = []
    for i in range(200):
        call = agentlog.inference("openai", "m", {"messages": [{"role": "user", "content": "x" * 1000}]})
        call.start()
        call.delta(f"answer {i}")
        call.finish()
        calls.append(weakref.ref(call))
        del call
    time.sleep(0.3)  # 15 more batches; some 90 remain to write
    assert agentlog.get_recorder().stats()["queued"] > 0
    gc.collect()
    assert sum(ref() is not None for ref in calls) == 0
    assert agentlog.flush(30)
    assert sum(e.type == "llm.delta" for e in sink.events) == 200
