"""How runs end: ok, error with the message, interrupted, or visibly unfinished when the process dies."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import agentlog
from agentlog.cli import main

from helpers import query


def runs(db: Path) -> dict[str, dict[str, object]]:
    assert agentlog.flush(5)
    return {r["name"]: dict(r) for r in query(db, "SELECT * FROM runs")}


def test_an_exception_ends_the_run_as_error_with_its_message(db: Path, recorder: agentlog.Recorder) -> None:
    @agentlog.run("nightly")
    def job() -> None:
        with agentlog.turn(), agentlog.span("step", kind="task"):
            raise ValueError("the plan was wrong")

    with pytest.raises(ValueError, match="the plan was wrong"):
        job()
    run = runs(db)["nightly"]
    assert run["status"] == "error" and run["error"] == "ValueError: the plan was wrong"
    assert run["ended_at"] is not None
    (turn,) = query(db, "SELECT status, error FROM turns")
    (span,) = query(db, "SELECT status, error FROM spans")
    assert tuple(turn) == tuple(span) == ("error", "ValueError: the plan was wrong")


def test_keyboard_interrupt_and_cancellation_end_the_run_as_interrupted(
    db: Path, recorder: agentlog.Recorder
) -> None:
    with pytest.raises(KeyboardInterrupt), agentlog.run("ctrl-c"):
        raise KeyboardInterrupt

    async def cancelled() -> None:
        async with agentlog.run("cancelled"):
            await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.ensure_future(cancelled())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    found = runs(db)
    assert found["ctrl-c"]["status"] == "interrupted" and found["cancelled"]["status"] == "interrupted"


def test_sys_exit_zero_is_a_normal_end_and_another_code_an_error(db: Path, recorder: agentlog.Recorder) -> None:
    with pytest.raises(SystemExit), agentlog.run("clean-exit"):
        sys.exit(0)
    with pytest.raises(SystemExit), agentlog.run("exit-3"):
        sys.exit(3)
    found = runs(db)
    assert found["clean-exit"]["status"] == "ok" and found["clean-exit"]["error"] is None
    assert found["exit-3"]["status"] == "error" and found["exit-3"]["error"] == "SystemExit: 3"


def _script(db: Path, body: str, settings: str = "") -> subprocess.CompletedProcess[str]:
    code = f"import os, agentlog\nagentlog.configure({str(db)!r}{settings})\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("ending", "status", "error"), [
    ("pass", "ok", None),
    ("raise ValueError('bad input')", "error", "ValueError: bad input"),
    ("raise KeyboardInterrupt", "interrupted", "KeyboardInterrupt: "),
])
def test_the_implicit_run_ends_the_way_the_program_ended(
    db: Path, ending: str, status: str, error: str | None
) -> None:
    proc = _script(db, f"agentlog.log('working outside any run')\n{ending}\n")
    assert (proc.returncode == 0) == (status == "ok"), proc.stderr
    (run,) = query(db, "SELECT status, error, implicit FROM runs")
    assert tuple(run) == (status, error, 1)
    if error:
        assert "Traceback" in proc.stderr  # the previous excepthook still reports it


def test_a_killed_process_leaves_its_run_running_with_the_last_event_time(db: Path) -> None:
    proc = _script(db, """
        agentlog.run("doomed").__enter__()
        agentlog.turn().__enter__()
        agentlog.span("planner", kind="agent").__enter__()
        agentlog.log("last words")
        os._exit(9)   # like SIGKILL: no exit handlers run
    """, settings=", durability='sync'")
    assert proc.returncode == 9, proc.stderr
    (run,) = query(db, "SELECT * FROM runs WHERE name = 'doomed'")
    assert run["status"] == "running" and run["ended_at"] is None
    (last,) = query(db, "SELECT max(ts) AS ts FROM events WHERE run_id = ?", run["run_id"])
    assert run["last_event_at"] == last["ts"]
    assert [r[0] for r in query(db, "SELECT status FROM turns UNION ALL SELECT status FROM spans")] == [
        "running", "running"]
    out = CliRunner().invoke(main, ["show", "--db", str(db)]).output
    assert "[running]" in out and f"last event {last['ts'][:19].replace('T', ' ')} UTC (not finished)" in out
