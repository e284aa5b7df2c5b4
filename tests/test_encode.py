"""Payload encoding on the writer thread: never raises, always valid UTF-8 JSON."""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import agentlog
from agentlog._encode import encode_payload

from helpers import query


class HostileRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def _roundtrip(payload: object, max_bytes: int = 1 << 20, max_string: int = 1 << 16) -> object:
    data, _ = encode_payload(payload, max_bytes, max_string)
    data.decode("utf-8")  # valid UTF-8
    return json.loads(data)


def test_nan_and_infinity_become_null() -> None:
    assert _roundtrip({"a": math.nan, "b": math.inf, "c": [1.5]}) == {"a": None, "b": None, "c": [1.5]}


def test_unserialisable_values_become_visible_markers() -> None:
    cyclic: dict[str, object] = {"name": "loop"}
    cyclic["self"] = cyclic
    out = _roundtrip({"obj": object(), "bad": HostileRepr(), "cycle": cyclic, "big": 10**40,
                      "surrogate": "a\ud800b", "nul": "x\x00y", "bytes": b"\xff\xfe", "set": {1}})
    assert isinstance(out, dict)
    assert out["obj"].startswith("<object object")
    assert out["bad"] == "<HostileRepr (repr failed: RuntimeError)>"
    assert out["cycle"] == {"name": "loop", "self": {"$cycle": True}}
    assert out["big"] == str(10**40)
    assert out["surrogate"] == "a?b" and out["nul"] == "x\x00y"
    assert out["bytes"]["$bytes"] == 2 and out["set"] == [1]


def test_deep_nesting_is_cut_with_a_marker() -> None:
    deep: list[object] = []
    node = deep
    for _ in range(1000):
        child: list[object] = []
        node.append(child)
        node = child
    text = json.dumps(_roundtrip({"deep": deep}))
    assert '"$truncated": "too deep"' in text


def test_oversized_strings_are_truncated_keeping_size_and_hash() -> None:
    big = "x" * 3_000_000
    out = _roundtrip({"text": big, "small": "ok"}, max_bytes=1_000_000, max_string=1000)
    assert isinstance(out, dict) and out["small"] == "ok"
    marker = out["text"]
    assert marker["$truncated"] is True and marker["size"] == 3_000_000
    assert marker["sha256"] == hashlib.sha256(big.encode()).hexdigest()
    assert marker["head"] == "x" * 1000


def test_hostile_payloads_never_reach_the_host_and_normal_events_still_land(db: Path) -> None:
    agentlog.configure(db, max_event_bytes=2_000_000, max_string_bytes=100_000)
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with agentlog.run("hostile"):
        assert agentlog.log("weird", value=HostileRepr(), cyc=cyclic, nan=math.nan)
        assert agentlog.log("huge", blob="y" * 5_000_000)
        assert agentlog.log("normal")
    assert agentlog.flush(10)
    rows = {r["m"]: json.loads(r["payload"]) for r in query(
        db, "SELECT json_extract(payload, '$.message') AS m, payload FROM events WHERE type = 'log'")}
    assert set(rows) == {"weird", "huge", "normal"}
    assert rows["weird"]["fields"]["nan"] is None
    assert rows["huge"]["fields"]["blob"]["size"] == 5_000_000


def test_one_long_string_under_many_keys_is_bounded_before_it_is_encoded() -> None:
    # 20,000 keys naming the same 100 KB string: 2 GB of JSON if encoded as it is.
    text = "y" * 100_000
    payload = {f"k{i}": text for i in range(20_000)}
    start = time.perf_counter()
    data, _ = encode_payload(payload, 1_000_000, 1000)
    assert len(data) <= 1_000_000
    assert time.perf_counter() - start < 1.0  # bounded before encoding, not after


def test_one_long_key_in_a_dict_referenced_many_times_is_bounded_before_it_is_encoded() -> None:
    # The same dict 2,000 times, its one key 100 KB long: 200 MB of JSON if encoded as it is.
    import tracemalloc

    shared = {"k" * 100_000: 1}
    payload = {"calls": [shared] * 2_000}
    tracemalloc.start()
    try:
        data, _ = encode_payload(payload, 1_000_000, 1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(data) <= 1_000_000
    assert peak < 20_000_000  # 268 MB when keys were not counted before encoding
