"""Let the host's threads in while the writer thread works.

CPython hands the GIL from a busy thread to a waiting one only every switch
interval (5 ms): a writer thread encoding and indexing a batch would make an
asyncio loop or a request handler wait up to that long each time it wants to run.
The writer's loops call :func:`share_gil`, which gives the GIL away (``sleep(0)``
releases it, and a waiting thread takes it) after each ~0.5 ms of work. It costs a
clock read per call and one system call per slice.
"""

from __future__ import annotations

import time

__all__ = ["SLICE", "share_gil"]

#: Seconds of writer work between two hand-overs.
SLICE = 0.0005
_next = 0.0


def share_gil() -> None:
    global _next
    now = time.perf_counter()
    if now >= _next:
        time.sleep(0)
        _next = time.perf_counter() + SLICE
