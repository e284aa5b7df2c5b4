"""Let the host's threads in while the writer thread works.

CPython hands the GIL from a busy thread to a waiting one only every switch
interval (5 ms): a writer thread encoding and indexing a batch would make an
asyncio loop or a request handler wait up to that long each time it wants to run.
The writer's loops call :func:`share_gil`, which gives the GIL away (``sleep(0)``
releases it, and a waiting thread takes it) after each ~0.5 ms of work.

A hand-over is not free: ``sleep(0)`` returns after the kernel's timer slack,
~80 µs on the reference machine, during which the writer does nothing if no other
thread wanted the GIL (a writer catching up alone spent ~10 % of its time there).
So each hand-over also looks at whether another thread of this process ran while
the GIL was free (the process's CPU time minus the writer thread's, two clock
reads): when none did, the next slice is twice as long, up to :data:`MAX_SLICE`;
as soon as one does, slices are back to :data:`SLICE`. A thread that starts
wanting the GIL after a quiet stretch waits at most ``MAX_SLICE`` once.
"""

from __future__ import annotations

import time

__all__ = ["MAX_SLICE", "SLICE", "share_gil", "stop_sharing"]

#: Seconds of writer work between two hand-overs while other threads want the GIL.
SLICE = 0.0005
#: The longest slice, reached after a few hand-overs that nobody took.
MAX_SLICE = 0.002
#: CPU seconds another thread must have used during a hand-over to count as having taken it.
_TAKEN = 2e-6
_next = 0.0
_slice = SLICE
_off = False


def stop_sharing() -> None:
    """Make :func:`share_gil` a no-op: for a process whose only other thread can wait.

    The writer process (:mod:`agentlog._writer_process`) has no agent threads to let in;
    its pipe reader gets the GIL whenever SQLite releases it, and every hand-over would
    only cost the writer the kernel's timer slack.
    """
    global _off
    _off = True


def share_gil() -> None:
    global _next, _slice
    if _off:
        return
    now = time.perf_counter()
    if now >= _next:
        others = time.process_time() - time.thread_time()
        time.sleep(0)
        if time.process_time() - time.thread_time() - others > _TAKEN:
            _slice = SLICE
        else:
            _slice = min(_slice * 2, MAX_SLICE)
        _next = time.perf_counter() + _slice
