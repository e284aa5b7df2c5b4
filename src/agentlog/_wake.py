"""Wake-ups and flags for the writer that take no lock: safe to set from a signal handler.

A ``threading.Event`` guards its flag with a lock. A signal handler runs on the main
thread between two bytecodes, possibly inside ``Event.set()`` with that lock held; if the
handler then needs the writer (SIGTERM writes what is queued before the process dies),
the writer waiting on the same event cannot take the lock back, and neither can a thread
that sets it: both wait for the interrupted code, which waits for them (seen: a
``multiprocessing`` pool's workers stuck for the whole shutdown bound in ``terminate()``,
then killed with their last events unwritten).

:class:`Wake` keeps its flag in a plain attribute and wakes the waiter through a pipe:
``set()`` is one ``os.write`` (atomic, no Python lock), ``wait()`` one ``select``.
:class:`Flag` is a bare boolean for the writer's stop request, read by the writer at every
wake-up. Both have the subset of ``threading.Event``'s interface the writer uses.
"""

from __future__ import annotations

import os
import select
import signal

__all__ = ["Flag", "Wake", "keep_signals_off_this_thread"]

#: Asynchronous signals a host may handle in Python. Blocked in agentlog's own threads so the
#: kernel delivers them to a thread of the host's (see keep_signals_off_this_thread).
_HOST_SIGNALS = frozenset(
    getattr(signal, name) for name in
    ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGWINCH")
    if hasattr(signal, name)
)


def keep_signals_off_this_thread() -> None:
    """Block the host's signals in the calling thread (one of agentlog's, at its start).

    The kernel hands a process-directed signal to any thread that does not block it.
    Python runs the handler on the main thread, but only once the main thread runs
    bytecode again; if the signal lands on our writer while the main thread waits in C (a
    ``multiprocessing`` pool worker waiting for its next task on a semaphore), nothing
    interrupts that wait and the handler never runs: SIGTERM's handler set by agentlog
    made such a worker unkillable by ``Pool.terminate()``, which then waited forever.
    """
    if not hasattr(signal, "pthread_sigmask"):
        return
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, _HOST_SIGNALS)
    except (OSError, ValueError):
        pass


class Flag:
    """A set-once boolean with ``threading.Event``'s ``set``/``is_set``."""

    __slots__ = ("_on",)

    def __init__(self) -> None:
        self._on = False

    def set(self) -> None:
        self._on = True

    def is_set(self) -> bool:
        return self._on


class Wake:
    """``set()`` from any thread or signal handler wakes ``wait()``; no lock is ever taken.

    A ``set()`` that races a ``clear()`` may leave the flag clear: as with
    ``threading.Event``, the waiter clears before it looks at the queue, so whatever the
    setter queued before calling ``set()`` is seen by that look.
    """

    __slots__ = ("_on", "_r", "_w")

    def __init__(self) -> None:
        self._on = False
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        os.set_blocking(self._w, False)

    def is_set(self) -> bool:
        return self._on

    def set(self) -> None:
        if self._on:
            return
        self._on = True
        try:
            os.write(self._w, b"\0")
        except OSError:  # full (a wake-up is pending anyway) or closed (nobody waits)
            pass

    def clear(self) -> None:
        self._on = False
        try:
            while os.read(self._r, 4096):
                pass
        except OSError:  # empty (BlockingIOError) or closed
            pass

    def wait(self, timeout: float | None = None) -> bool:
        """Until set or ``timeout`` seconds; returns the flag, as ``Event.wait`` does."""
        if self._on:
            return True
        try:
            select.select([self._r], [], [], timeout)
        except (OSError, ValueError):  # closed under us: nothing left to wait for
            return self._on
        return self._on

    def close(self) -> None:
        """Release the pipe: when nothing can use it any more (garbage collection), or in a
        forked child, whose copies of the parent's pipe no thread of the child uses."""
        fds, (self._r, self._w) = (self._r, self._w), (-1, -1)
        for fd in fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __del__(self) -> None:
        # Not at Recorder.close(): a producer may still call set() then, and a closed
        # descriptor's number can be reused by the program for a file of its own.
        try:
            self.close()
        except Exception:  # at interpreter exit, modules may already be torn down
            pass
