"""The helpers agentlog ships for users' own tests."""

from __future__ import annotations

import agentlog
from agentlog.testing import FakeClock, capture_events, sequential_ids


def test_capture_events_collects_what_the_block_published(recorder: agentlog.Recorder) -> None:
    agentlog.log("outside")
    with capture_events() as sink, agentlog.run("captured"):
        agentlog.log("inside")
    assert sink.types() == ["run.started", "log", "run.finished"]


def test_fake_clock_and_sequential_ids_make_output_deterministic() -> None:
    sink = agentlog.MemorySink()
    clock = FakeClock(start_ns=1_000_000_000, step_ns=1_000)
    rec = agentlog.Recorder(agentlog.Settings.resolve(), sinks=[sink], clock=clock, ids=sequential_ids("ev-"))
    rec.publish("log", {"n": 1})
    rec.publish("log", {"n": 2})
    rec.close()
    logs = [e for e in sink.events if e.type == "log"]
    assert [(e.event_id, e.ts) for e in logs] == [("ev-000002", 1_000_001), ("ev-000003", 1_000_002)]
