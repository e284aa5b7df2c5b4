"""Correlation: scopes nest, flow into asyncio tasks, cross threads only when bound."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import agentlog

from helpers import query


def test_nested_scopes_set_run_turn_span_and_parent(recorder: agentlog.Recorder) -> None:
    assert agentlog.current_ids() == {"run_id": None, "turn_id": None, "span_id": None, "parent_span_id": None}
    with agentlog.run("r", run_id="run-1"), agentlog.turn(turn_id="t-1"):
        with agentlog.span("outer") as outer, agentlog.span("inner") as inner:
            ids = agentlog.current_ids()
            assert ids == {"run_id": "run-1", "turn_id": "t-1", "span_id": inner.span_id,
                           "parent_span_id": outer.span_id}
        assert agentlog.current_ids()["span_id"] is None
    assert agentlog.current_ids()["run_id"] is None


def test_context_flows_into_asyncio_tasks(db: Path, recorder: agentlog.Recorder) -> None:
    async def worker(i: int) -> str | None:
        async with agentlog.span(f"task-{i}") as s:
            await asyncio.sleep(0.01)
            agentlog.log("working", i=i)
            return s.parent_span_id

    async def main() -> list[str | None]:
        async with agentlog.run("async-run"), agentlog.span("fan-out") as root:
            parents = await asyncio.gather(*(worker(i) for i in range(5)))
            assert set(parents) == {root.span_id}
            return parents

    asyncio.run(main())
    assert agentlog.flush(5)
    rows = query(db, "SELECT DISTINCT run_id FROM events")
    assert len(rows) == 1
    logs = query(db, "SELECT e.span_id, s.name FROM events e JOIN spans s USING (span_id) WHERE e.type = 'log'")
    assert sorted(r["name"] for r in logs) == [f"task-{i}" for i in range(5)]


def test_threads_need_bind_context(db: Path, recorder: agentlog.Recorder) -> None:
    seen: dict[str, str | None] = {}

    def job(tag: str) -> None:
        seen[tag] = agentlog.current_ids()["run_id"]

    with agentlog.run("r", run_id="run-threads"):
        t = threading.Thread(target=job, args=("plain",))
        t.start()
        t.join()
        with ThreadPoolExecutor(2) as pool:
            pool.submit(agentlog.bind_context(job), "bound").result()
    assert seen == {"plain": None, "bound": "run-threads"}


def test_decorators_record_each_call(db: Path, recorder: agentlog.Recorder) -> None:
    @agentlog.trace
    def add(a: int, b: int) -> int:
        return a + b

    @agentlog.trace(name="fetch", kind="retrieval", capture=True)
    async def fetch(q: str, api_key: str = "") -> list[str]:
        return [q.upper()]

    @agentlog.run("decorated-run")
    def job() -> int:
        return add(1, 2) + len(asyncio.run(fetch("x", api_key="sk-secret")))

    assert job() == 4 and job() == 4
    assert agentlog.flush(5)
    runs = query(db, "SELECT run_id, status FROM runs WHERE name = 'decorated-run'")
    assert len(runs) == 2 and {r["status"] for r in runs} == {"ok"}  # a fresh run per call
    spans = query(db, "SELECT name, kind, attributes, result FROM spans ORDER BY started_at")
    assert [s["name"] for s in spans] == ["test_decorators_record_each_call.<locals>.add", "fetch"] * 2
    assert spans[1]["kind"] == "retrieval" and '"q":"x"' in spans[1]["attributes"]
    assert '"api_key":"[REDACTED]"' in spans[1]["attributes"]  # captured arguments are masked as for tools
    assert spans[1]["result"] == '["X"]'


def test_exceptions_close_scopes_with_error_and_propagate(db: Path, recorder: agentlog.Recorder) -> None:
    @agentlog.trace
    def broken() -> None:
        raise LookupError("missing key")

    with pytest.raises(LookupError), agentlog.run("r"):
        broken()
    assert agentlog.flush(5)
    (span,) = query(db, "SELECT status, error FROM spans")
    assert span["status"] == "error" and span["error"] == "LookupError: missing key"


def test_cancelled_task_marks_its_span_interrupted(db: Path, recorder: agentlog.Recorder) -> None:
    async def slow() -> None:
        async with agentlog.span("slow"):
            await asyncio.sleep(10)

    async def main() -> None:
        async with agentlog.run("r"):
            task = asyncio.create_task(slow())
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(main())
    assert agentlog.flush(5)
    assert query(db, "SELECT status FROM spans")[0][0] == "interrupted"


def test_a_scope_object_cannot_be_entered_twice_at_once(recorder: agentlog.Recorder) -> None:
    scope = agentlog.span("x")
    with scope, pytest.raises(RuntimeError, match="already active"), scope:
        pass


def test_async_generator_finalised_elsewhere_does_not_corrupt_context(recorder: agentlog.Recorder) -> None:
    async def agen():  # type: ignore[no-untyped-def]
        with agentlog.span("in-generator"):
            yield 1
            yield 2

    async def main() -> None:
        async with agentlog.run("r", run_id="outer"):
            g = agen()
            assert await g.__anext__() == 1
        # Closed from a different context than the one that entered the span.
        await asyncio.get_running_loop().create_task(g.aclose())
        assert agentlog.current_ids()["run_id"] is None

    asyncio.run(main())
