"""Benchmark 3: peers doing the same work in the same run.

* **Caller's cost**: the OpenTelemetry Python SDK starting and ending one span per
  event (``BatchSpanProcessor``, an exporter that does nothing) against agentlog's
  ``publish()`` of the same typical event, both timed call by call in a burst.
* **Events persisted per second**: MLflow tracing to a local SQLite tracking store
  (traces of 10 spans) and ``llm``'s ``Response.log_to_db()``, against agentlog
  publishing the same typical events into its SQLite store until the last commit.

The peers never come from the project's dependencies: they are installed from
PyPI into a throwaway virtual environment (``bench/.peers-venv``, git-ignored,
reused while :data:`PEERS` is unchanged) and run in a subprocess
(:mod:`bench._peer_worker`). A peer that cannot be installed (no network, no
wheel for this Python) is skipped with the reason; quick mode only uses a
virtual environment that already exists, because creating one takes minutes.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import agentlog

from .latency import Scenario, measure_agentlog
from .stats import spread
from .workload import TextPool, typical_payloads

__all__ = ["PEERS", "print_peers", "run_peers"]

HERE = Path(__file__).resolve().parent
VENV = HERE / ".peers-venv"
WORKER = HERE / "_peer_worker.py"
#: peer -> what pip installs for it (one pip call each, so one failure skips one peer).
PEERS: dict[str, list[str]] = {
    "otel": ["opentelemetry-sdk==1.45.2"],
    "mlflow": ["mlflow-skinny==3.17.2", "sqlalchemy>=2", "alembic"],
    "llm": ["llm==0.36"],
}
_SIZES = {  # events per repetition: (quick, full)
    "otel": (20_000, 100_000),
    "mlflow": (100, 1_000),
    "llm": (200, 3_000),
    "agentlog_persist": (20_000, 100_000),
}


# -- the throwaway environment ---------------------------------------------------------------
def _python() -> Path:
    return VENV / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _marker() -> Path:
    return VENV / "agentlog-bench-peers.json"


def ensure_venv(create: bool) -> tuple[dict[str, str], dict[str, str]]:
    """(installed peers -> version, skipped peers -> reason), creating the venv if allowed."""
    wanted = json.dumps(PEERS, sort_keys=True)
    state: dict[str, Any] = {}
    if _marker().exists():
        state = json.loads(_marker().read_text())
        if state.get("wanted") != wanted:
            state = {}
    if not state:
        if not create:
            why = f"no peers environment yet (quick mode never creates one): run `python -m bench --only peers` once to build {VENV}"
            return {}, dict.fromkeys(PEERS, why)
        state = _create(wanted)
    return state["installed"], state["skipped"]


def _create(wanted: str) -> dict[str, Any]:
    print(f"   creating the peers' virtual environment in {VENV} (once; takes a few minutes)")
    installed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    made = _run([sys.executable, "-m", "venv", "--clear", str(VENV)], 300)
    if made is not None:
        skipped = dict.fromkeys(PEERS, f"could not create a virtual environment: {made}")
    else:
        for peer, specs in PEERS.items():
            failed = _run([str(_python()), "-m", "pip", "install", "--quiet", *specs], 900)
            if failed is None:
                installed[peer] = " ".join(specs)
            else:
                skipped[peer] = f"pip install {' '.join(specs)} failed (offline?): {failed}"
    state = {"wanted": wanted, "installed": installed, "skipped": skipped}
    if VENV.exists():
        _marker().write_text(json.dumps(state))
    return state


def _run(cmd: list[str], timeout: float) -> str | None:
    """None if ``cmd`` succeeded, else the last line of what it said."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    lines = [ln for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


def _peer(peer: str, events: int, text: str) -> dict[str, Any]:
    args = json.dumps({"peer": peer, "events": events, "text": text})
    done = subprocess.run(
        [str(_python()), str(WORKER), args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"peer {peer} failed: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- agentlog's side ----------------------------------------------------------------------------
def agentlog_persist(payloads: list[dict[str, Any]], events: int) -> dict[str, Any]:
    """Publish ``events`` typical events into a fresh store; events/s until all are committed."""
    with tempfile.TemporaryDirectory(prefix="agentlog-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        rec = agentlog.Recorder(agentlog.Settings.resolve(db=str(path), max_queue=2 * events))
        try:
            rec.publish("log", {"message": "warm-up"})
            rec.flush(30)
            warm = sum(s["written"] for s in rec.stats()["sinks"].values())  # and the run's start
            gc.collect()
            n = len(payloads)
            t0 = time.perf_counter()
            for i in range(events):
                rec.publish("llm.finished", payloads[i % n])
            ok = rec.flush(600)
            seconds = time.perf_counter() - t0
            written = rec.stats()["sinks"]
            dropped = sum(rec.stats()["dropped"].values())
        finally:
            rec.close()
    stored = sum(s["written"] for s in written.values()) - warm
    return {
        "events": events,
        "stored": stored,
        "seconds": seconds,
        "events_per_s": stored / seconds,
        "ok": ok and not dropped and stored == events,
    }


# -- the benchmark -----------------------------------------------------------------------------
def run_peers(quick: bool, reps: int) -> dict[str, Any]:
    installed, skipped = ensure_venv(create=not quick)
    size = {k: v[0 if quick else 1] for k, v in _SIZES.items()}
    pool = TextPool()
    payloads = typical_payloads(pool)
    text = pool.get(200, 1)
    burst = [("llm.finished", p) for p in payloads]
    reps_of: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("agentlog", "otel", "agentlog_persist", "mlflow", "llm")
    }
    for _ in range(reps):  # subjects interleaved, so drift hits all of them alike
        reps_of["agentlog"].append(measure_agentlog(burst, Scenario("burst", size["otel"])))
        for peer in ("otel", "mlflow", "llm"):
            if peer in installed and not (quick and peer == "mlflow"):
                reps_of[peer].append(_peer(peer, size[peer], text))
        if "mlflow" in installed or "llm" in installed:
            reps_of["agentlog_persist"].append(agentlog_persist(payloads, size["agentlog_persist"]))
    if quick and "mlflow" in installed:
        skipped["mlflow"] = "quick mode: importing MLflow and creating its store alone take ~5 s"
    return summarise(reps_of, installed, skipped, size)


def summarise(
    reps_of: dict[str, list[dict[str, Any]]],
    installed: dict[str, str],
    skipped: dict[str, str],
    size: dict[str, int],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "installed": installed,
        "skipped": skipped,
        "events": size,
        "subjects": {},
    }
    for name, runs in reps_of.items():
        if not runs:
            continue
        keys = [
            k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        out["subjects"][name] = {k: spread([float(r[k]) for r in runs]) for k in keys}
    s = out["subjects"]
    ratios: dict[str, float] = {}
    if "otel" in s:
        ratios["otel_over_agentlog_p50"] = s["otel"]["p50"]["median"] / max(
            1.0, s["agentlog"]["p50"]["median"]
        )
        ratios["otel_over_agentlog_p99"] = s["otel"]["p99"]["median"] / max(
            1.0, s["agentlog"]["p99"]["median"]
        )
    for peer in ("mlflow", "llm"):
        if peer in s:
            ratios[f"agentlog_over_{peer}_events_per_s"] = (
                s["agentlog_persist"]["events_per_s"]["median"] / s[peer]["events_per_s"]["median"]
            )
    out["ratios"] = ratios
    out["all_ok"] = all(r["ok"] for r in reps_of["agentlog_persist"]) and all(
        r["stored"] == r["events"] for p in ("mlflow", "llm") for r in reps_of[p]
    )
    return out


def print_peers(peers: dict[str, Any], fig: Any, table: Any) -> None:
    s, r = peers["subjects"], peers["ratios"]
    print("\n4. Peers, same run (benchmark 3): the OpenTelemetry SDK, MLflow tracing, llm,")
    print("   from a throwaway virtual environment; median [min-max] over repetitions\n")
    rows = [
        ["agentlog publish() (burst)", fig(s["agentlog"]["p50"]), fig(s["agentlog"]["p99"]), ""]
    ]
    if "otel" in s:
        o = s["otel"]
        rows.append(
            [
                "OpenTelemetry span start+end",
                fig(o["p50"]),
                fig(o["p99"]),
                f"{r['otel_over_agentlog_p50']:.1f}x",
            ]
        )
    table(["caller's cost (ns per event)", "p50", "p99", "peer / agentlog (p50)"], rows)
    if "agentlog_persist" in s:
        rows = [
            [
                "agentlog (typical events, until committed)",
                fig(s["agentlog_persist"]["events_per_s"]),
                "",
            ]
        ]
        for peer, label in (
            ("mlflow", "MLflow tracing -> SQLite (10-span traces)"),
            ("llm", "llm Response.log_to_db()"),
        ):
            if peer in s:
                rows.append(
                    [
                        label,
                        fig(s[peer]["events_per_s"]),
                        f"{r[f'agentlog_over_{peer}_events_per_s']:.0f}x",
                    ]
                )
        print()
        table(["events persisted per second", "events/s", "agentlog / peer"], rows)
    if "otel" in s and s["otel"]["exported"]["min"] < s["otel"]["events"]["min"]:
        print(
            f"\n   OpenTelemetry's no-op exporter received {s['otel']['exported']['median']:,.0f} of "
            f"{s['otel']['events']['median']:,.0f} spans (the rest were dropped by its bounded queue)"
        )
    for peer, why in peers["skipped"].items():
        print(f"   {peer}: skipped ({why})")
