"""A watchdog for a SIGTERM the interpreter noted but never handled.

agentlog's SIGTERM handler (:mod:`agentlog.recorder`) writes what is queued before the
process dies. CPython runs a Python-level handler on the main thread, the next time that
thread runs bytecode; a signal that arrives while the main thread is in C *on its way
into* a blocking call (a ``multiprocessing`` pool worker going back to wait for its next
task on a semaphore, just when ``Pool.terminate()`` sends SIGTERM) is noted, nothing
interrupts the wait, and the handler never runs: the worker, which would have died of
SIGTERM without agentlog, outlives it, and the pool's exit waits for it forever (about 1
run in 15 of ``tests/reliability/test_fork.py``'s pool on a 2-core machine).

The interpreter also writes each signal's number into the *wakeup fd*
(``signal.set_wakeup_fd``) from its C handler, in whichever thread took the signal. When
no one else uses that slot (asyncio takes it for its own signal handlers; then agentlog
stays out of the way), agentlog points it at a pipe read by a daemon thread. On a SIGTERM
byte, if agentlog's handler has not run within a grace period while it is still the
installed one, the thread sends SIGWINCH to the main thread: a no-op handler is installed
for it (only where SIGWINCH had its default, ignored, disposition), so the blocking call
returns with EINTR, the interpreter runs the pending handlers, and the SIGTERM handler
with them. A spurious wake-up (a byte written by a child forked without Python's fork
hooks, say) costs the main thread one interrupted, retried system call.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from ._wake import keep_signals_off_this_thread

__all__ = ["after_fork_in_child", "handled", "start"]

_POKE = getattr(signal, "SIGWINCH", None)
#: How long agentlog's handler has to run on its own before the main thread is woken,
#: how often it is woken again, and for how long at most.
GRACE = 0.25
RETRY = 0.25
GIVE_UP = 5.0

_runs = 0  # agentlog's SIGTERM handler has started this many times
_fds: tuple[int, int] | None = None  # our wakeup pipe (read end, write end)


def _never() -> bool:
    return False


_is_ours: Callable[[], bool] = _never


def handled() -> None:
    """Called first thing by agentlog's SIGTERM handler."""
    global _runs
    _runs += 1


def _noop(signum: int, frame: Any) -> None:
    pass


def start(is_ours: Callable[[], bool]) -> None:
    """Take the wakeup fd and start the watchdog, if the slot is free (main thread only).

    ``is_ours()`` tells whether agentlog's SIGTERM handler is still the installed one.
    """
    global _fds, _is_ours
    if _fds is not None or _POKE is None or not hasattr(signal, "pthread_kill"):
        return
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(_POKE) is not signal.SIG_DFL:
            return  # the host handles SIGWINCH itself: a poke would call its handler
        r, w = os.pipe()
        os.set_blocking(w, False)
        old = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    except (ValueError, OSError, AttributeError):
        return
    if old != -1:  # someone else's (asyncio's): leave it to them
        signal.set_wakeup_fd(old)
        os.close(r)
        os.close(w)
        return
    try:
        signal.signal(_POKE, _noop)
    except (ValueError, OSError):
        signal.set_wakeup_fd(-1)
        os.close(r)
        os.close(w)
        return
    _fds, _is_ours = (r, w), is_ours
    main = threading.get_ident()  # this is the main thread (checked above)
    threading.Thread(target=_watch, args=(r, main), name="agentlog-signals", daemon=True).start()


def _watch(r: int, main: int) -> None:
    keep_signals_off_this_thread()
    while True:
        try:
            data = os.read(r, 512)
        except OSError:
            return
        if not data:
            return
        if signal.SIGTERM not in data:
            continue
        before = _runs
        end = time.monotonic() + GIVE_UP
        time.sleep(GRACE)
        while _runs == before and _is_ours() and time.monotonic() < end:
            try:
                signal.pthread_kill(main, _POKE)  # type: ignore[arg-type]
            except (OSError, ValueError):
                break
            time.sleep(RETRY)


def after_fork_in_child() -> None:
    """A forked child: its copy of our pipe is the parent's; take a pipe of its own."""
    global _fds
    if _fds is None:
        return
    inherited, _fds = _fds, None
    try:
        current = signal.set_wakeup_fd(-1)
    except (ValueError, OSError):  # forked from a thread that is not the child's main one
        return
    ours = current == inherited[1]
    if not ours:
        signal.set_wakeup_fd(current)  # taken over by someone else meanwhile: theirs
    for fd in inherited:
        try:
            os.close(fd)
        except OSError:
            pass
    if not ours:
        return
    try:
        signal.signal(_POKE, signal.SIG_DFL)  # type: ignore[arg-type]
    except (ValueError, OSError):
        return
    start(_is_ours)
