"""Benchmark 1: what ``Recorder.publish()`` costs the caller's thread, per call.

Each call is timed on its own with ``perf_counter_ns`` (the median cost of an
empty timer pair is subtracted), so p99 and p99.9 show the real stalls: GIL
hand-offs to the writer thread, a collection, a full queue. The recorder writes
to a real SQLite file and its writer drains concurrently.

Two references run through the same harness, in the same pacing, so the
ratios are fair: the "minimal publish" of PERF-NOTES (random id, two ContextVar
reads, a clock read, a 15-tuple, ``SimpleQueue.put``) and a bare
``SimpleQueue.put``. They have no writer thread: they show what enqueueing
alone costs on this machine.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from queue import SimpleQueue
from typing import Any

import agentlog

from .stats import percentile, spread

__all__ = ["QUANTILES", "Scenario", "run_latency", "scenarios"]

Call = Callable[[Any, Any], object]
QUANTILES = (("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9))
EVENT_TYPE = "llm.finished"


@dataclass(frozen=True)
class Scenario:
    """A load shape: ``rate`` events/s in groups of ``group`` (None = a burst)."""

    name: str
    events: int
    rate: int | None = None
    group: int = 1


def scenarios(quick: bool) -> list[Scenario]:
    """Burst, 10k/s and 50k/s; paced groups last 1 ms so the sleep granularity stays small."""
    scale = 5 if quick else 1
    return [
        Scenario("burst", 100_000 // scale),
        Scenario("paced 10k/s", 20_000 // scale, rate=10_000, group=10),
        Scenario("paced 50k/s", 100_000 // scale, rate=50_000, group=50),
    ]


# -- the harness ---------------------------------------------------------------------------
def timer_overhead_ns(samples: int = 50_000) -> int:
    """Median cost of ``t0 = perf_counter_ns(); t1 = perf_counter_ns()`` (subtracted from samples).

    Measured again right before each subject: it moves with the CPU clock
    (60 ns warm, 100 ns cold on the reference machine), which is several times
    the cost of a ``SimpleQueue.put``.
    """
    pc = time.perf_counter_ns
    out = [0] * samples
    for i in range(samples):
        t0 = pc()
        t1 = pc()
        out[i] = t1 - t0
    out.sort()
    return int(percentile(out, 50))


def time_calls(
    call: Call, args: Sequence[tuple[Any, Any]], sc: Scenario
) -> tuple[list[int], float]:
    """Call ``call(a, b)`` for ``sc.events`` argument pairs; return per-call ns and the achieved rate.

    Pacing sleeps (never spins) until each group's start time: a spinning
    producer holds the GIL and would starve the writer, which no real agent does.
    """
    pc = time.perf_counter_ns
    n_args = len(args)
    out = [0] * sc.events
    period = 0 if sc.rate is None else sc.group * 1_000_000_000 // sc.rate
    start = pc()
    i = 0
    while i < sc.events:
        if period:
            wait = start + (i // sc.group) * period - pc()
            if wait > 0:
                time.sleep(wait / 1e9)
        for _ in range(min(sc.group if period else sc.events, sc.events - i)):
            a, b = args[i % n_args]
            t0 = pc()
            call(a, b)
            t1 = pc()
            out[i] = t1 - t0
            i += 1
    elapsed = (pc() - start) / 1e9
    return out, sc.events / elapsed


def quantiles(samples: list[int], overhead: int, sc: Scenario) -> dict[str, float]:
    """p50 / p99 / p99.9, and for paced load the p50 of the first call after each sleep.

    That first call runs on cold caches and dominates a paced p99; it is shown
    apart so that a reader can tell it from a stall inside publish().
    """
    out: dict[str, float] = {}
    if sc.rate:
        out["after_sleep_p50"] = _net(sorted(samples[:: sc.group]), 50, overhead)
    samples.sort()
    out.update({name: _net(samples, q, overhead) for name, q in QUANTILES})
    return out


def _net(sorted_samples: list[int], q: float, overhead: int) -> float:
    return max(0.0, percentile(sorted_samples, q) - overhead)


# -- the subjects --------------------------------------------------------------------------
_run_var: ContextVar[str] = ContextVar("bench_run", default="0" * 32)
_span_var: ContextVar[str | None] = ContextVar("bench_span", default=None)


def make_minimal_publish(q: SimpleQueue[tuple[Any, ...]]) -> Call:
    """The PERF-NOTES "minimal publish": the least a correlated, stamped enqueue can cost."""
    urandom = os.urandom
    time_ns = time.time_ns
    put = q.put

    def minimal_publish(type: str, payload: dict[str, Any]) -> bool:
        # fmt: off
        put((urandom(16).hex(), type, payload, time_ns(), _run_var.get(), _span_var.get(),
             None, None, None, None, None, None, None, None, None))
        # fmt: on
        return True

    return minimal_publish


def measure_agentlog(args: Sequence[tuple[Any, Any]], sc: Scenario) -> dict[str, Any]:
    """One repetition against a fresh store; also reports drops and how long the writer lagged."""
    with tempfile.TemporaryDirectory(prefix="agentlog-bench-") as tmp:
        rec = agentlog.Recorder(agentlog.Settings.resolve(db=str(Path(tmp) / "bench.db")))
        try:
            rec.publish("log", {"message": "warm-up"})  # opens the store and the implicit run
            rec.flush(30)
            gc.collect()
            overhead = timer_overhead_ns()
            samples, rate = time_calls(rec.publish, args, sc)
            t0 = time.perf_counter()
            flushed = rec.flush(120)
            drain = time.perf_counter() - t0
            dropped = sum(rec.stats()["dropped"].values())
        finally:
            rec.close()
    # Everything published was written after events/rate + drain seconds: the writer's pace
    # under this load (it is the load itself when the writer keeps up).
    written_rate = sc.events / (sc.events / rate + drain)
    return {
        **quantiles(samples, overhead, sc),
        "timer_ns": overhead,
        "rate": rate,
        "drain_s": drain,
        "written_rate": written_rate,
        "dropped": dropped,
        "flushed": flushed,
    }


def measure_reference(
    call_for: Callable[[SimpleQueue[Any]], Call], args: Sequence[tuple[Any, Any]], sc: Scenario
) -> dict[str, Any]:
    q: SimpleQueue[Any] = SimpleQueue()
    gc.collect()
    overhead = timer_overhead_ns()
    samples, rate = time_calls(call_for(q), args, sc)
    return {**quantiles(samples, overhead, sc), "timer_ns": overhead, "rate": rate}


def _bare_put(q: SimpleQueue[Any]) -> Call:
    return q.put  # called as put(item, True): block=True is SimpleQueue's default anyway


# -- the benchmark -------------------------------------------------------------------------
def run_latency(payloads: list[dict[str, Any]], quick: bool, reps: int) -> dict[str, Any]:
    """Every scenario, ``reps`` times, subjects interleaved so drift hits all of them alike."""
    publish_args = [(EVENT_TYPE, p) for p in payloads]
    put_args = [((EVENT_TYPE, p, 0, 0, None, None), True) for p in payloads]
    results: dict[str, Any] = {"event_type": EVENT_TYPE, "scenarios": {}}
    for sc in scenarios(quick):
        reps_by_subject: dict[str, list[dict[str, Any]]] = {
            "agentlog": [],
            "minimal": [],
            "put": [],
        }
        for _ in range(reps):
            reps_by_subject["agentlog"].append(measure_agentlog(publish_args, sc))
            reps_by_subject["minimal"].append(
                measure_reference(make_minimal_publish, publish_args, sc)
            )
            reps_by_subject["put"].append(measure_reference(_bare_put, put_args, sc))
        results["scenarios"][sc.name] = summarise(sc, reps_by_subject)
    return results


def summarise(sc: Scenario, reps: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per subject and figure: median and min-max over repetitions; ratios of the medians."""
    out: dict[str, Any] = {"events": sc.events, "target_rate": sc.rate, "group": sc.group}
    for subject, runs in reps.items():
        figures = {
            k
            for r in runs
            for k, v in r.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        out[subject] = {k: spread([float(r[k]) for r in runs]) for k in sorted(figures)}
        if subject == "agentlog":
            out[subject]["all_flushed"] = all(r["flushed"] for r in runs)
    out["ratio_to_minimal"] = {
        name: _ratio(out["agentlog"][name]["median"], out["minimal"][name]["median"])
        for name, _ in QUANTILES
    }
    return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None
