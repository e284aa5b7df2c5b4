"""A thread that runs a batch's INSERTs while the writer thread builds the next rows.

Python's ``sqlite3`` releases the GIL inside every ``sqlite3_step``, and a multi-row
INSERT steps once for all its rows: while SQLite inserts one part of a batch (and
updates its indexes and full-text pending terms), the writer thread can hold the
GIL and build the parameter rows of the next part. :class:`StatementThread` is the
other half of that overlap: the SQLite sink hands it ``(connection, statement,
rows)`` jobs, in order, and :meth:`StatementThread.drain` waits until all of them
have run, raising the first error. The transaction stays the sink's: it begins,
commits and rolls back on its own thread, only ever when the statement thread is
idle (after a drain), so ``write()`` still returns only once its batch is committed.

Rows go out in statements of up to :data:`ROWS_PER_STATEMENT` rows: each statement
costs the statement thread one wait for the GIL (to bind its parameters and to
return), so fewer, longer statements keep it busy while the writer holds the GIL.
"""

from __future__ import annotations

import sqlite3
import threading
from queue import SimpleQueue
from typing import Any

from ..store.sqlite import insert_rows

__all__ = ["ROWS_PER_STATEMENT", "StatementThread"]

#: Rows per multi-row INSERT on the statement thread (al_events: 19 x 256 parameters).
ROWS_PER_STATEMENT = 256

Job = tuple[sqlite3.Connection, str, list[tuple[Any, ...]]]
_STOP = "stop"  # in the job queue: end the thread (None: acknowledge a drain)


class StatementThread:
    """Runs INSERT jobs in order on a daemon thread; see the module docstring."""

    def __init__(self, name: str) -> None:
        self._jobs: SimpleQueue[Job | str | None] = SimpleQueue()
        self._acks: SimpleQueue[BaseException | None] = SimpleQueue()
        self._busy = False  # jobs submitted since the last drain
        self._thread = threading.Thread(target=self._run, name=f"agentlog-sqlite {name}", daemon=True)
        self._thread.start()

    def submit(self, conn: sqlite3.Connection, stmt: str, rows: list[tuple[Any, ...]]) -> None:
        """Queue ``rows`` for ``stmt``; they run after everything submitted before."""
        self._busy = True
        self._jobs.put((conn, stmt, rows))

    def drain(self) -> None:
        """Wait until every job submitted so far has run; raise the first error among them.

        After a failed job the jobs behind it, up to this drain, are skipped: the
        transaction they belong to is rolled back by the caller.
        """
        if not self._busy:
            return
        self._jobs.put(None)
        error = self._acks.get()
        self._busy = False
        if error is not None:
            raise error

    def stop(self) -> None:
        """End the thread once its queued jobs are done (idempotent)."""
        self._jobs.put(_STOP)

    def _run(self) -> None:
        jobs, acks = self._jobs, self._acks
        error: BaseException | None = None
        while True:
            job = jobs.get()
            if job is None:
                acks.put(error)
                error = None
                continue
            if not isinstance(job, tuple):  # _STOP
                return
            if error is not None:
                continue
            conn, stmt, rows = job
            try:
                insert_rows(conn, stmt, rows, ROWS_PER_STATEMENT)
            except BaseException as exc:  # handed to the writer thread by drain()
                error = exc
