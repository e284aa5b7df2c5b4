"""Reading requests back: what the writer was given, and what the store returns for it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

import agentlog
from agentlog import Event

from helpers import query


def _normal(value: Any) -> Any:
    """JSON normalisation: the value as it reads back from its JSON text."""
    return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))


def assert_requests_come_back(db: Path, events: Sequence[Event]) -> int:
    """Every llm.started payload in ``events`` that is in ``db`` reads back equal; how many were."""
    # By span: with the writer process, the store's copy of an event has its own event_id.
    started = {e.span_id: e for e in events if e.type == "llm.started" and e.span_id}
    if not started or not db.exists():
        return 0
    marks = ",".join("?" * len(started))
    views = {r["span_id"]: r for r in query(
        db, f"SELECT e.span_id, e.run_id, e.payload, l.request FROM events e"
            f" LEFT JOIN llm_calls l ON l.span_id = e.span_id"
            f" WHERE e.type = 'llm.started' AND e.span_id IN ({marks})", *started)}
    with agentlog.open(db) as store:
        read = {e.span_id: e for rid in {r["run_id"] for r in views.values()}
                for e in store.events(rid, types=["llm.started"])}
    for span_id, row in views.items():
        expected = _normal(started[span_id].payload)
        assert orjson.loads(row["payload"]) == expected, f"events.payload of llm span {span_id}"
        assert read[span_id].payload == expected, f"Store.events() payload of llm span {span_id}"
        if "request" in expected:
            assert orjson.loads(row["request"]) == expected["request"], f"llm_calls.request of {span_id}"
    return len(views)
