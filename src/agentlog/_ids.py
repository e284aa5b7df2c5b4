"""Time-ordered, globally unique ids (UUIDv7 layout, 32 lowercase hex digits).

Why not ``uuid.uuid7()``/``uuid4()``: they cost ~1.8 µs each, and ids are minted
on the caller's thread for every run, turn and span. Here the 74 "random" bits
of the UUIDv7 layout are a per-process random tag (32 bits, drawn once and
redrawn after ``fork``) plus a 42-bit counter that starts at a random offset.
Within a process ids are strictly increasing; across processes and machines
they sort by millisecond and collide only if two processes draw the same 32-bit
tag *and* the same counter value in the same millisecond.

Layout (RFC 9562): ``unix_ms:48 | ver=7:4 | counter_hi:12 | var=0b10:2 | counter_lo:30 | tag:32``.
"""

from __future__ import annotations

import itertools
import os
import random
import time

__all__ = ["id_time_ms", "new_id"]

_COUNTER_BITS = 42
_COUNTER_MASK = (1 << _COUNTER_BITS) - 1


def _fresh_state() -> tuple[int, itertools.count[int]]:
    rng = random.SystemRandom()
    tag = rng.getrandbits(32)
    start = rng.getrandbits(_COUNTER_BITS - 2)  # room to count before wrapping
    return tag, itertools.count(start)


_tag, _counter = _fresh_state()


def _reseed_after_fork() -> None:
    global _tag, _counter
    _tag, _counter = _fresh_state()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reseed_after_fork)


def new_id(time_ns: int | None = None) -> str:
    """Return a new id; ``time_ns`` stamps it with that time instead of now."""
    ms = (time.time_ns() if time_ns is None else time_ns) // 1_000_000
    c = next(_counter) & _COUNTER_MASK
    value = (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | (c >> 30) << 64
        | 0b10 << 62
        | (c & 0x3FFF_FFFF) << 32
        | _tag
    )
    return value.to_bytes(16, "big").hex()  # 0.6 µs less than f"{value:032x}"


def id_time_ms(id_: str) -> int:
    """The millisecond timestamp embedded in an id made by :func:`new_id`."""
    return int(id_[:12], 16)
