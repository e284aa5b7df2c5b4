"""Benchmark 7: resident memory while events flow, and its bound when the store is blocked.

Each measurement runs in a fresh interpreter (:mod:`bench.flow`), so the RSS is
the recorder's and the workload's alone.

* **Flowing**: the conversation workload through the public producers with
  default settings (``max_queue`` 100,000) until the store holds 1,000,000 events
  (quick: 50,000). The producer pauses while more than 20,000 events are queued,
  as an agent waiting on its model would: nothing is dropped. Reference: the
  same process's RSS before the first event (interpreter, agentlog, the workload's
  text pool). Full mode runs this once (about 1M events take minutes); when the
  queries benchmark's cached store had to be made in the same run, that flow is
  the one reported. RSS is the host's plus its writer process's.
* **Blocked**: another connection holds ``BEGIN EXCLUSIVE`` on the store while
  the workload is published (an agent pausing 1 ms per run), so no batch can
  commit, until both bounds below are full and then ``after_s`` seconds more. The recorder may hold at most ``max_queue``
  queued events plus ``max_queue`` events pending in the sink slot (plus the batch
  being tried); with the writer process (the default) the child has its own queue
  bounded by ``max_queue`` too, so three bounds. The rest must be counted as dropped,
  and RSS (the host's plus its writer process's) must stop growing once the bounds
  are full. Reference: the same number of events (2 x
  ``max_queue``) held as the queue holds them (the producers' tuples and payload
  dicts) in a deque in another fresh interpreter: what holding them costs at least.
  After the lock is released every event is either in the store or counted as
  dropped (exit status 1 otherwise).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .queries import run_flow
from .stats import spread

__all__ = ["print_memory", "run_memory"]

MiB = 2**20
#: Once both bounds are full, an event published may add at most this share of what an event held costs.
GROWTH_AFTER_SATURATION_MAX = 0.10  # per event published once full / per event held


def run_memory(quick: bool, reps: int, generated: dict[str, Any] | None) -> dict[str, Any]:
    events = 50_000 if quick else 1_000_000
    max_queue = 10_000 if quick else 100_000
    # A commit attempt waits busy_timeout for the lock: agentlog's 10 s in full mode; in quick
    # mode 0.25 s, so that batches reach the pending bound within the few seconds it has. The
    # patch reaches only the benchmark's interpreter, so quick mode blocks the thread writer;
    # full mode the default writer process (tests/test_writer_modes.py checks both bounded).
    busy_ms, after_s = (250, 1.5) if quick else (10_000, 10.0)
    writer = "thread" if quick else None
    with tempfile.TemporaryDirectory(prefix="agentlog-bench-") as tmp:
        if generated is not None and generated["rows"] >= events:
            flows = [generated]
        else:
            n = reps if quick else 1
            flows = [
                run_flow(
                    {
                        "mode": "flow",
                        "events": events,
                        "db": f"{tmp}/flow-{i}.db",
                        "backlog": 20_000,
                    }
                )
                for i in range(n)
            ]
        blocked = []
        holds = []
        for i in range(1 if quick else reps):  # quick: one, to stay within the minute
            blocked.append(
                run_flow(
                    {
                        "mode": "blocked",
                        "db": f"{tmp}/blocked-{i}.db",
                        "max_queue": max_queue,
                        "after_s": after_s,
                        "busy_timeout_ms": busy_ms,
                        "writer": writer,
                    }
                )
            )
            holds.append(run_flow({"mode": "hold", "count": 2 * max_queue}))
            for f in Path(tmp).glob(f"blocked-{i}.db*"):
                f.unlink()
    return summarise(flows, blocked, holds)


def summarise(
    flows: list[dict[str, Any]], blocked: list[dict[str, Any]], holds: list[dict[str, Any]]
) -> dict[str, Any]:
    flow = {
        k: spread([float(f[k]) for f in flows])
        for k in (
            "rows",
            "seconds",
            "events_per_s",
            "baseline_rss",
            "peak_rss",
            "max_queued",
            "dropped",
        )
    }
    flow["growth"] = spread([float(f["peak_rss"] - f["baseline_rss"]) for f in flows])
    b: dict[str, Any] = {
        k: spread([float(x[k]) for x in blocked])
        for k in (
            "published",
            "written",
            "dropped",
            "held_max",
            "baseline_rss",
            "peak_rss",
            "saturated_rss",
            "end_rss",
        )
    }
    b["seconds_to_saturate"] = spread([float(x["seconds_to_saturate"] or 0) for x in blocked])
    b["growth"] = spread([float(x["peak_rss"] - x["baseline_rss"]) for x in blocked])
    # Once both bounds are full, each further event must cost (almost) no memory: RSS
    # growth per event published after saturation, relative to RSS growth per event held.
    after = [
        (
            (x["end_rss"] - x["saturated_rss"])
            / max(1, x["published"] - x["published_at_saturation"])
        )
        / max(1.0, (x["saturated_rss"] - x["baseline_rss"]) / max(1, x["held_at_saturation"]))
        for x in blocked
        if x["saturated_rss"]
    ]
    b["growth_after_saturation"] = spread(after) if after else None
    hold = {"growth": spread([float(h["peak_rss"] - h["baseline_rss"]) for h in holds])}
    hold["count"] = holds[0]["count"]
    ratio = b["growth"]["median"] / max(1.0, hold["growth"]["median"])
    saturated = bool(after)
    bounded = saturated and b["growth_after_saturation"]["max"] <= GROWTH_AFTER_SATURATION_MAX
    return {
        "flow": flow,
        "flow_repetitions": len(flows),
        "blocked": b,
        "blocked_settings": {k: blocked[0][k] for k in ("max_queue", "after_s", "busy_timeout_ms", "bounds")},
        "dropped_by_reason": [x["dropped_by_reason"] for x in blocked],
        "hold_reference": hold,
        "blocked_growth_over_reference": ratio,
        "bounded": bounded,
        "saturated": saturated,
        "ok": all(f["ok"] for f in flows) and all(x["ok"] for x in blocked),
    }


def print_memory(m: dict[str, Any], fig: Callable[..., str], table: Callable[..., None]) -> None:
    f, b, h = m["flow"], m["blocked"], m["hold_reference"]
    s = m["blocked_settings"]

    def mib(x: dict[str, float]) -> dict[str, float]:
        return {k: v / MiB for k, v in x.items()}

    print("\n5. Memory (benchmark 7): RSS in a fresh interpreter, MiB, median [min-max]\n")
    rows = [
        [
            f"flowing: {f['rows']['median']:,.0f} events, default settings ({m['flow_repetitions']} x)",
            fig(mib(f["baseline_rss"])),
            fig(mib(f["peak_rss"])),
            fig(mib(f["growth"])),
        ],
        [
            f"blocked: max_queue {s['max_queue']:,}, then {s['after_s']:g} s more",
            fig(mib(b["baseline_rss"])),
            fig(mib(b["peak_rss"])),
            fig(mib(b["growth"])),
        ],
        [f"ref: {h['count']:,} queued events held in a deque", "", "", fig(mib(h["growth"]))],
    ]
    table(["case", "before", "peak", "growth"], rows)
    print(
        f"\n   flowing: {f['events_per_s']['median']:,.0f} events/s, at most "
        f"{f['max_queued']['median']:,.0f} queued, dropped {f['dropped']['max']:,.0f}"
    )
    after = b["growth_after_saturation"]
    after_text = (
        "n/a (never saturated)"
        if after is None
        else f"{after['median']:.1%} of what one held costs"
    )
    print(
        f"   blocked: published {b['published']['median']:,.0f}, written after the lock "
        f"{b['written']['median']:,.0f}, dropped {b['dropped']['median']:,.0f} "
        f"({', '.join(f'{k} {v:,}' for k, v in m['dropped_by_reason'][0].items())}); "
        f"held at most {b['held_max']['median']:,.0f} (bound {s['bounds']} x {s['max_queue']:,} + a batch)"
    )
    verdict = (
        "bounded" if m["bounded"]
        else "NOT bounded" if m.get("saturated", True)
        # The writer waits out its busy timeout inside BEGIN IMMEDIATE, so its pending
        # batches may not fill while the lock is held: then the test cannot decide.
        else "not shown: the queue and the pending batches did not both fill while blocked"
    )
    print(
        f"   blocked growth = {m['blocked_growth_over_reference']:.2f}x the reference; once both "
        f"bounds were full, each event published added {after_text} "
        f"-> {verdict}"
    )
