"""Run the benchmark suite, print a table per benchmark, write ``bench/results/latest.json``.

    python -m bench                        # full: 3 repetitions of every benchmark
    python -m bench --quick                # smoke run for CI: smaller samples, < 1 minute
    python -m bench --only peers,queries   # some benchmarks only

Speed targets are checked and printed but never fail the run (a shared CI
runner is no place to assert timings); only a correctness problem does, e.g.
the store not holding every event that was published.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .ingest import run_ingest
from .latency import QUANTILES, run_latency
from .memory import print_memory, run_memory
from .peers import print_peers, run_peers
from .queries import SIZE_RATIO_MAX, TARGETS_MS, print_queries, run_queries
from .sdk import run_sdk
from .workload import TextPool, typical_payloads

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results"
P50_MAX_NS = 1_000
P50_MAX_RATIO = 2.0
P99_MAX_NS = 10_000
INGEST_MIN_RATIO = 0.8
SDK_CALL_MAX_PCT = 5.0
SDK_CHUNK_MAX_US = 10.0
OTEL_MIN_RATIO = 10.0
PERSIST_MIN_RATIO = 5.0
#: Every benchmark, in the order they run (``--only`` picks some).
BENCHMARKS = ("latency", "ingest", "sdk", "peers", "memory", "queries")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    reps = args.reps or (2 if args.quick else 3)
    mode = "quick" if args.quick else "full"
    started = time.perf_counter()
    _warm_cpu()
    pool = TextPool()
    print(f"agentlog benchmarks ({mode}, {reps} repetition{'s' if reps > 1 else ''})\n")
    only = args.only
    out: dict[str, Any] = {}
    if "latency" in only:
        out["latency"] = run_latency(typical_payloads(pool), args.quick, reps)
        print_latency(out["latency"])
    if "ingest" in only:
        out["ingest"] = run_ingest(pool, args.quick, reps)
        print_ingest(out["ingest"])
    if "sdk" in only:
        out["sdk"] = run_sdk(args.quick, reps)
        print_sdk(out["sdk"])
    if "peers" in only:
        out["peers"] = run_peers(args.quick, reps)
        print_peers(out["peers"], _fig, _table)
    generated = None
    if "queries" in only:  # before memory: a store made now is also the memory benchmark's flow
        out["queries"] = run_queries(args.quick, reps)
        generated = out["queries"]["generated"]
    if "memory" in only:
        out["memory"] = run_memory(args.quick, reps, generated)
        print_memory(out["memory"], _fig, _table)
    if "queries" in only:
        print_queries(out["queries"], _fig, _table)
    targets = check_targets(out)
    print_targets(targets)
    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)]),
        "mode": mode,
        "repetitions": reps,
        "benchmarks": list(only),
        "machine": machine_info(),
        **out,
        "targets": targets,
        "duration_s": round(time.perf_counter() - started, 1),
    }
    path = args.out or RESULTS / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {path} in {result['duration_s']} s")
    return _failures(out)


def _failures(out: dict[str, Any]) -> int:
    """Exit status: 1 if any benchmark found a correctness problem (never for speed)."""
    checks = (
        ("ingest", "all_rows_ok", "the store did not hold every published event"),
        ("sdk", "all_recorded_ok", "some instrumented SDK call was not recorded in full"),
        ("peers", "all_ok", "a peer or agentlog did not store every event it was given"),
        ("memory", "ok", "memory: an event was neither stored nor counted as dropped"),
        ("queries", "ok", "queries: the store holds fewer events than generated"),
    )
    failed = [why for key, flag, why in checks if key in out and not out[key][flag]]
    for why in failed:
        print(f"FAILED: {why}", file=sys.stderr)
    return 1 if failed else 0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small samples, for a CI smoke run")
    parser.add_argument(
        "--reps", type=int, default=0, help="repetitions per benchmark (default 3, quick 2)"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON file (default bench/results/latest.json)"
    )
    parser.add_argument(
        "--only",
        type=_benchmarks,
        default=BENCHMARKS,
        help=f"comma-separated benchmarks to run (default all: {','.join(BENCHMARKS)})",
    )
    return parser.parse_args(argv)


def _benchmarks(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark {', '.join(unknown) or '(none)'}; choose from {','.join(BENCHMARKS)}"
        )
    return names


def _warm_cpu(seconds: float = 0.3) -> None:
    """Spin briefly so the first benchmark does not run at an idle clock frequency."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


# -- machine --------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "sqlite": sqlite3.sqlite_version,
        "agentlog": _version("agentlog"),
        "orjson": _version("orjson"),
        "git_commit": _git_commit(),
        "switch_interval_s": sys.getswitchinterval(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


# -- targets --------------------------------------------------------------------------------
def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets against the medians over repetitions, for the benchmarks that ran."""
    out: list[dict[str, Any]] = []
    if "latency" in results:
        out += _latency_targets(results["latency"])
    if "ingest" in results:
        out += _ingest_targets(results["ingest"])
    if "sdk" in results:
        out += _sdk_targets(results["sdk"])
    if "peers" in results:
        out += _peer_targets(results["peers"])
    if "memory" in results:
        m = results["memory"]
        growth = m["blocked"]["growth_after_saturation"]
        out.append(
            _target(
                "blocked store: once queue and pending are full, an event adds <= 10% of a held one",
                None if growth is None else growth["max"] * 100,
                m["bounded"],
                "%",
            )
        )
    if "queries" in results:
        out += _query_targets(results["queries"])
    return out


def _latency_targets(latency: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, sc in latency["scenarios"].items():
        p50 = sc["agentlog"]["p50"]["median"]
        ratio = sc["ratio_to_minimal"]["p50"]
        p99 = sc["agentlog"]["p99"]["median"]
        out.append(_target(f"{name}: p50 <= {P50_MAX_NS} ns", p50, p50 <= P50_MAX_NS, "ns"))
        out.append(
            _target(
                f"{name}: p50 <= {P50_MAX_RATIO:g}x minimal publish",
                ratio,
                ratio is not None and ratio <= P50_MAX_RATIO,
                "x",
            )
        )
        out.append(_target(f"{name}: p99 <= {P99_MAX_NS} ns", p99, p99 <= P99_MAX_NS, "ns"))
    return out


def _ingest_targets(ingest: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, writer in (("process_ratio_to_full_reference", "writer process"),
                        ("ratio_to_full_reference", "writer thread")):
        ratio = ingest[key]
        out.append(_target(f"ingest ({writer}) >= {INGEST_MIN_RATIO:.0%} of the same-schema reference",
                           ratio, ratio >= INGEST_MIN_RATIO, "x"))
    return out


def _sdk_targets(sdk: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, case in sdk["cases"].items():
        pct = case["added_pct"]["median"]
        out.append(
            _target(
                f"{name}: added < {SDK_CALL_MAX_PCT:g}% of a call", pct, pct < SDK_CALL_MAX_PCT, "%"
            )
        )
        if case["stream"]:
            per_chunk = case["added_per_chunk_us"]["median"]
            out.append(
                _target(
                    f"{name}: added <= {SDK_CHUNK_MAX_US:g} us per chunk",
                    per_chunk,
                    per_chunk <= SDK_CHUNK_MAX_US,
                    "us",
                )
            )
    return out


def _peer_targets(peers: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    r = peers["ratios"]
    if "otel_over_agentlog_p50" in r:
        v = r["otel_over_agentlog_p50"]
        out.append(
            _target(
                f"publish >= {OTEL_MIN_RATIO:g}x cheaper than an OTel span (p50)",
                v,
                v >= OTEL_MIN_RATIO,
                "x",
            )
        )
    for peer in ("mlflow", "llm"):
        key = f"agentlog_over_{peer}_events_per_s"
        if key in r:
            out.append(
                _target(
                    f"persists >= {PERSIST_MIN_RATIO:g}x the events/s of {peer}",
                    r[key],
                    r[key] >= PERSIST_MIN_RATIO,
                    "x",
                )
            )
    return out


def _query_targets(q: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, limit in TARGETS_MS.items():
        ms = q["figures"][name]["api_ms"]["median"]
        out.append(
            _target(f"{name} at {q['events']:,} events <= {limit:g} ms", ms, ms <= limit, "ms")
        )
    ratio = q["size"]["ratio_to_raw_unique"]
    out.append(
        _target(
            f"file <= {SIZE_RATIO_MAX:g}x the raw payload bytes",
            ratio,
            ratio <= SIZE_RATIO_MAX,
            "x",
        )
    )
    return out


def _target(name: str, measured: float | None, met: bool, unit: str) -> dict[str, Any]:
    return {"target": name, "measured": measured, "unit": unit, "met": met}


# -- printing ---------------------------------------------------------------------------------
def _fig(s: dict[str, float], unit: str = "") -> str:
    """``median [min-max]`` in a compact form."""

    def f(v: float) -> str:
        return f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.2f}"

    return f"{f(s['median'])}{unit} [{f(s['min'])}-{f(s['max'])}]"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for i, r in enumerate([header, *rows]):
        print(
            "  ".join(
                str(c).ljust(w) if j == 0 else str(c).rjust(w)
                for j, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


_SUBJECTS = {
    "agentlog": "agentlog publish()",
    "minimal": "minimal publish (ref)",
    "put": "SimpleQueue.put (ref)",
}


def print_latency(latency: dict[str, Any]) -> None:
    print(f"1. Producer cost of Recorder.publish({latency['event_type']!r}, ~500 B payload),")
    print("   ns per call net of the timer, median [min-max] over repetitions;")
    print("   ratio = agentlog / minimal publish; 'after sleep' = first call of each paced group\n")
    rows: list[list[str]] = []
    for sc_name, sc in latency["scenarios"].items():
        for key, label in _SUBJECTS.items():
            s = sc[key]
            after = _fig(s["after_sleep_p50"]) if "after_sleep_p50" in s else "-"
            rows.append([f"{sc_name}: {label}", *(_fig(s[q]) for q, _ in QUANTILES), after])
        ratios = sc["ratio_to_minimal"]
        rows.append([f"{sc_name}: ratio", *(_ratio(ratios[q]) for q, _ in QUANTILES), ""])
    _table(["scenario / subject", "p50", "p99", "p99.9", "after sleep p50"], rows)
    print()
    for sc_name, sc in latency["scenarios"].items():
        a = sc["agentlog"]
        print(
            f"   {sc_name}: {a['rate']['median']:,.0f} events/s published; the writer was done "
            f"{a['drain_s']['median'] * 1000:,.0f} ms after the last publish "
            f"(written at {a['written_rate']['median']:,.0f} events/s); "
            f"dropped {a['dropped']['max']:,.0f}"
        )


def _ratio(r: float | None) -> str:
    return "n/a" if r is None else f"{r:.2f}x"


_LEVELS = {
    "full": "ref: same schema, same rows (full)",
    "events_only": "ref: al_events only (4 indexes)",
    "plain": "ref: plain table ceiling",
}


def print_ingest(ingest: dict[str, Any]) -> None:
    a, ref = ingest["agentlog"], ingest["reference"]
    turns = ingest["turns_per_run"]
    print(f"\n2. Sustained ingest of {ingest['events']:,} events (runs of {turns} turns),")
    print("   events/s until the last commit, median [min-max] over repetitions\n")
    full = ref["full"]["events_per_s"]["median"]
    rows = [
        ["agentlog end to end, writer process (default)", _fig(ingest["process"]["events_per_s"]),
         _ratio(ingest["process_ratio_to_full_reference"])],
        ["agentlog end to end, writer thread", _fig(a["events_per_s"]), _ratio(ingest["ratio_to_full_reference"])],
    ]
    rows.append(
        [
            "agentlog writer thread alone (after publishing)",
            _fig(a["writer_events_per_s"]),
            _ratio(ingest["writer_ratio_to_full_reference"]),
        ]
    )
    for level, label in _LEVELS.items():
        eps = ref[level]["events_per_s"]
        rows.append([label, _fig(eps), _ratio(eps["median"] / full)])
    _table(["subject", "events/s", "vs full ref"], rows)
    pr = ingest["process"]
    print(
        f"\n   writer process: publishing took {_fig(pr['publish_s'], ' s')}; flush() returned "
        f"{_fig(pr['drain_s'], ' s')} later; dropped {pr['dropped']['max']:,.0f}"
    )
    print(
        f"   writer thread: publishing took {_fig(a['publish_s'], ' s')}; the writer wrote "
        f"{a['written_while_publishing']['median']:,.0f} events meanwhile and finished "
        f"{_fig(a['drain_s'], ' s')} later"
    )
    print(
        f"   {a['batches']['median']:,.0f} batches (mean {a['mean_batch']['median']:,.0f} events); "
        f"dropped {a['dropped']['max']:,.0f}; rows in al_events "
        f"{'OK' if ingest['all_rows_ok'] else 'WRONG'} ({', '.join(map(str, ingest['rows']))})"
    )
    print("   rows written, by agentlog and again by the full reference:")
    items = [f"{k} {v:,}" for k, v in ingest["reference_rows"].items()]
    for i in range(0, len(items), 4):
        print("     " + ", ".join(items[i : i + 4]))


def print_sdk(sdk: dict[str, Any]) -> None:
    print("\n3. SDK instrumentation overhead: the same call, plain and instrumented, to a local")
    print(f"   fake provider (streams: {sdk['text_chunks']} text deltas). plain / instrumented:")
    print("   median call (us); added: median over neighbouring block pairs of the difference in")
    print("   mean call time, GC and the writer included (us, and % of the plain call);")
    print("   per chunk = added / chunks. Medians over repetitions [min-max]\n")
    rows = [
        [
            name,
            f"{c['plain_us']['median']:,.0f}",
            f"{c['instrumented_us']['median']:,.0f}",
            _fig(c["added_us"]),
            _fig(c["added_pct"], " %"),
            str(c["chunks"]) if c["stream"] else "",
            _fig(c["added_per_chunk_us"]) if c["stream"] else "",
        ]
        for name, c in sdk["cases"].items()
    ]
    _table(["call", "plain", "instrumented", "added", "added %", "chunks", "per chunk"], rows)
    for sdk_name, why in sdk["skipped"].items():
        print(f"   {sdk_name}: skipped ({why})")
    tails = ", ".join(f"{n} {c['writer_tail_us']['median']:,.0f}" for n, c in sdk["cases"].items())
    print(f"\n   of 'added', the writer's work left at the end of a block (us per call): {tails}")
    paused = [
        f"{n} {c['added_paused_us']['median']:,.0f} us = {c['added_paused_pct']['median']:.1f} %"
        for n, c in sdk["cases"].items() if "added_paused_us" in c
    ]
    if paused:
        print("   added with the writer process stopped (SIGSTOP) during the block, a diagnostic: what the")
        print("   agent's own process pays, apart from the CPU the writer process takes from the machine:")
        for i in range(0, len(paused), 3):
            print("     " + ", ".join(paused[i : i + 3]))
    calls = ", ".join(f"{n} {c['block_calls']}" for n, c in sdk["cases"].items())
    print(f"   {sdk['pairs']} pairs of blocks per repetition; calls per block: {calls}")
    print(
        f"   every instrumented call recorded in full: {'OK' if sdk['all_recorded_ok'] else 'NO'}"
    )


def print_targets(targets: list[dict[str, Any]]) -> None:
    print("\n7. Targets (medians)\n")
    rows = []
    for t in targets:
        rows.append(
            [t["target"], _measured(t["measured"], t["unit"]), "met" if t["met"] else "MISSED"]
        )
    _table(["target", "measured", ""], rows)


def _measured(m: float | None, unit: str) -> str:
    if m is None:
        return "n/a"
    if unit == "ns":
        return f"{m:,.0f} ns"
    if unit in ("%", "us", "ms"):
        return f"{m:,.1f} {unit}"
    return f"{m:.2f}x"
