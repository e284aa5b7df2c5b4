"""The public surface: explicit, sorted, complete, and cheap to import."""

from __future__ import annotations

import subprocess
import sys

import agentlog
from agentlog import Event


def test_all_is_sorted_and_complete() -> None:
    assert agentlog.__all__ == sorted(agentlog.__all__)
    public = {n for n in dir(agentlog) if not n.startswith("_")}
    assert public == set(agentlog.__all__) - {"__version__"}
    for name in agentlog.__all__:
        assert getattr(agentlog, name) is not None, name  # lazy names resolve too


def test_import_loads_no_sdk_and_starts_no_thread() -> None:
    code = ("import sys, threading, agentlog; "
            "bad = [m for m in ('openai', 'anthropic', 'google.genai', 'httpx', 'asyncio', 'sqlite3', 'orjson')"
            " if m in sys.modules]; "
            "print(bad, threading.active_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] 1"


def test_event_round_trips_through_dicts() -> None:
    ev = Event("llm.finished", "id1", ts=123, seq=4, run_id="r", turn_id="t", span_id="s",
               parent_span_id="p", payload={"model": "m", "usage": {"input_tokens": 3}, "cost_usd": 0.5})
    again = Event.from_dict(ev.to_dict())
    assert again == ev
    assert again.model == "m" and again.cost_usd == 0.5 and again.usage()["input_tokens"] == 3
    assert again.usage()["output_tokens"] is None


def test_ids_are_time_ordered_unique_uuid7() -> None:
    from agentlog._ids import id_time_ms, new_id

    ids = [new_id() for _ in range(10_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i[12] == "7" and i[16] in "89ab" for i in ids[:100])
    import time

    assert abs(id_time_ms(new_id()) - time.time_ns() // 1_000_000) < 1000
