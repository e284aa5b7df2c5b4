"""Hostile payloads as message content, metadata and tool arguments.

``tests/test_encode.py`` pins the encoder's markers one by one; this runs the
whole list through the real recorder and store. Pass: ``publish()`` never
raises and returns at once (nothing is encoded on the caller's thread); the
writer finishes within seconds even for structures that would serialise to
gigabytes (encoding is bounded by output size); every stored payload is valid
UTF-8 JSON; a normal event published afterwards is stored.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import agentlog

from harness import stored


class RaisingRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class HugeRepr:
    def __repr__(self) -> str:
        return "r" * 50_000_000


class RaisingDump:
    def model_dump(self) -> Any:
        raise ValueError("broken model")


def _explosive() -> Any:
    x: Any = ["leaf" * 10]
    for _ in range(40):  # 2**40 leaves once serialised
        x = [x, x]
    return x


def _hostile() -> dict[str, Any]:
    cyclic: dict[str, Any] = {"name": "loop"}
    cyclic["self"] = cyclic
    deep: list[Any] = []
    node = deep
    for _ in range(10_000):
        node.append([])
        node = node[0]
    shared = "s" * 1_000_000
    return {
        "object": object(), "raising_repr": RaisingRepr(), "huge_repr": HugeRepr(), "raising_dump": RaisingDump(),
        "nan": math.nan, "inf": math.inf, "-inf": -math.inf, "huge_int": 10**4000,
        "surrogate": "lone \ud800 surrogate", "nul": "a\x00b", "escapes": "\x1b]0;pwned\x07\x1b[2J\x1b[31mred",
        "cyclic": cyclic, "deep": deep, "explosive": _explosive(), "shared_strings": [shared] * 100_000,
        "big_str": "b" * 50_000_000, "big_bytes": b"\xff" * 50_000_000, "set": {1, 2}, "bytes_key": {b"k": 1},
    }


def test_hostile_payloads_never_raise_or_hang_and_store_valid_json(db: Path) -> None:
    rec = agentlog.configure(db)
    hostile = _hostile()
    t0 = time.perf_counter()
    with agentlog.run("hostile", metadata={"m": hostile["surrogate"], "cyc": hostile["cyclic"]}):
        for name, value in hostile.items():
            assert agentlog.log(f"content {name}", value=value) is True
            with agentlog.tool_call("tool", {"arg": value}) as tool:
                tool.result = value
            with agentlog.inference("openai", "gpt-4o", request={"messages": [{"role": "user", "content": value}]}) as c:
                c.finish(stop_reason="stop", usage={"input_tokens": 10**30, "output_tokens": math.nan})
    on_caller = time.perf_counter() - t0
    agentlog.log("normal afterwards")
    t1 = time.perf_counter()
    assert rec.flush(120)
    in_writer = time.perf_counter() - t1
    agentlog.shutdown()

    payloads = [r[0] for r in stored(db, "SELECT CAST(payload AS BLOB) FROM al_events")]
    for raw in payloads:
        json.loads(raw.decode("utf-8"))  # valid UTF-8, valid JSON (no NaN, no lone surrogate)
    assert stored(db, "SELECT count(*) FROM events WHERE json_extract(payload, '$.message') = 'normal afterwards'")[0][0] == 1
    assert sum(rec.stats()["dropped"].values()) == 0
    assert max(len(p) for p in payloads) <= rec.settings.max_event_bytes
    print(f"\n{len(hostile)} hostile values x 3 places: {on_caller * 1000:.1f} ms on the caller, "
          f"{in_writer:.1f} s in the writer, largest payload {max(len(p) for p in payloads) / 2**20:.1f} MiB")
    assert on_caller < 1.0
