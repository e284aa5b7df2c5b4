"""Runs inside the peers' throwaway virtual environment: one peer, one measurement, JSON out.

    <peers-venv>/bin/python bench/_peer_worker.py '{"peer": "otel", "events": 20000, ...}'

Self-contained on purpose: it imports neither agentlog nor the bench package,
only the peer under test, so what is measured is the peer alone. The last line
of output is one JSON object.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any


def _payloads(n: int, text: str) -> list[dict[str, Any]]:
    """The typical event of benchmark 1, flattened to what span attributes can hold."""
    return [
        {
            "response_text": text,
            "provider": "openai",
            "model": "gpt-4o-mini-2024-07-18",
            "status": "ok",
            "stop_reason": "stop",
            "usage.input_tokens": 1234,
            "usage.output_tokens": 40 + i % 50,
            "usage.cached_tokens": 1024,
            "cost_usd": 0.000123 + i * 1e-9,
            "ttft_ms": 312.5,
            "duration_ms": 1456.25 + i,
            "request_id": f"req_{i:024x}",
        }
        for i in range(min(n, 1024))
    ]


def _timer_overhead() -> int:
    pc = time.perf_counter_ns
    out = []
    for _ in range(50_000):
        t0 = pc()
        t1 = pc()
        out.append(t1 - t0)
    out.sort()
    return out[len(out) // 2]


def _pct(sorted_ns: list[int], q: float, overhead: int) -> float:
    rank = max(1, -(-len(sorted_ns) * q // 100))
    return float(max(0, sorted_ns[int(rank) - 1] - overhead))


def otel(events: int, text: str) -> dict[str, Any]:
    """One span started and ended per event, BatchSpanProcessor, an exporter that does nothing."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class NoOpExporter(SpanExporter):
        exported = 0

        def export(self, spans: Any) -> SpanExportResult:
            NoOpExporter.exported += len(spans)
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NoOpExporter()))
    tracer = provider.get_tracer("bench")
    payloads = _payloads(events, text)
    for p in payloads[:1000]:  # warm-up
        tracer.start_span("llm.finished", attributes=p).end()
    provider.force_flush()
    NoOpExporter.exported = 0
    overhead = _timer_overhead()
    pc = time.perf_counter_ns
    out = [0] * events
    n = len(payloads)
    start = pc()
    for i in range(events):
        p = payloads[i % n]
        t0 = pc()
        tracer.start_span("llm.finished", attributes=p).end()
        t1 = pc()
        out[i] = t1 - t0
    burst_s = (pc() - start) / 1e9
    provider.force_flush()
    provider.shutdown()
    out.sort()
    return {
        "p50": _pct(out, 50, overhead),
        "p99": _pct(out, 99, overhead),
        "p99.9": _pct(out, 99.9, overhead),
        "timer_ns": overhead,
        "events": events,
        "burst_s": burst_s,
        "exported": NoOpExporter.exported,
    }


def mlflow_tracing(events: int, text: str, tmp: str) -> dict[str, Any]:
    """Traces of 10 spans (a turn and 9 children) to a local SQLite tracking store."""
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    db = os.path.join(tmp, "mlflow.db")
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    mlflow.set_experiment("bench")
    payloads = _payloads(10, text)
    traces = max(1, events // 10)

    def one_trace(i: int) -> None:
        with mlflow.start_span(name="turn") as root:
            root.set_inputs({"question": text})
            for j in range(9):
                with mlflow.start_span(name=f"event-{j}", span_type="LLM") as span:
                    span.set_attributes(payloads[j])
                    span.set_outputs({"response_text": text})

    one_trace(-1)  # warm-up: the schema, the experiment, the exporter
    _flush_mlflow(mlflow)
    t0 = time.perf_counter()
    for i in range(traces):
        one_trace(i)
    _flush_mlflow(mlflow)
    seconds = time.perf_counter() - t0
    import sqlite3

    conn = sqlite3.connect(db)
    stored = int(conn.execute("SELECT count(*) FROM spans").fetchone()[0]) - 10
    conn.close()
    return {
        "events": traces * 10,
        "stored": stored,
        "seconds": seconds,
        "events_per_s": stored / seconds,
    }


def _flush_mlflow(mlflow: Any) -> None:
    flush = getattr(mlflow, "flush_trace_async_logging", None)
    if callable(flush):
        flush()


def llm_log_to_db(events: int, text: str, tmp: str) -> dict[str, Any]:
    """``Response.log_to_db()`` of a prompt and its 200 B answer, from a model that answers at once."""
    import llm
    import sqlite_utils
    from llm.migrations import migrate

    class Fake(llm.Model):  # type: ignore[misc]
        model_id = "bench-fake"
        can_stream = False

        def execute(self, prompt: Any, stream: Any, response: Any, conversation: Any) -> Any:
            yield text

    db = sqlite_utils.Database(os.path.join(tmp, "llm.db"))
    migrate(db)
    model = Fake()
    model.prompt("warm-up").log_to_db(db)
    t0 = time.perf_counter()
    for i in range(events):
        r = model.prompt(f"question {i}: {text}")
        r.text()
        r.log_to_db(db)
    seconds = time.perf_counter() - t0
    stored = db["turns"].count - 1 if "turns" in db.table_names() else db["responses"].count - 1
    return {
        "events": events,
        "stored": stored,
        "seconds": seconds,
        "events_per_s": stored / seconds,
    }


def main(argv: list[str]) -> int:
    args = json.loads(argv[0])
    peer, events, text = args["peer"], args["events"], args["text"]
    with tempfile.TemporaryDirectory(prefix="agentlog-peer-") as tmp:
        os.chdir(tmp)  # MLflow puts its artifact folder (mlruns/) in the working directory
        if peer == "otel":
            result = otel(events, text)
        elif peer == "mlflow":
            result = mlflow_tracing(events, text, tmp)
        else:
            result = llm_log_to_db(events, text, tmp)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
