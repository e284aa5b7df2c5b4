"""The recorder: stamps events on the caller's thread and hands them to the writer.

``publish()`` does the minimum a caller must pay for: one ContextVar read for
the correlation, a clock read, the run's next sequence number, a tuple, and a
``deque.append`` (atomic under the GIL, no lock). Ids, JSON, processors and SQL
all happen on the writer thread (:mod:`agentlog._batch`).

Guarantees, in short (``docs/guarantees.md`` has the exact conditions):

* ``publish()`` never raises into the host program; it returns False when the
  event was not accepted, and the reason is counted.
* Memory is bounded by ``max_queue``; when full, ``on_full`` says drop (count it)
  or block up to ``block_timeout`` and then drop.
* ``durability="async"``: an accepted event's commit starts within
  ``flush_interval``. ``durability="sync"``: ``publish()`` returns after the commit.
* ``flush(timeout)`` and ``close()`` honour their timeouts; ``close()`` is
  idempotent and runs at interpreter exit and on SIGTERM (chained to the host's
  own handler); what it could not write in time is counted, not silently lost.
  After ``os.fork()`` the child starts with an empty queue, a fresh writer and
  its own store connection.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import _batch, _ids, _sigwatch
from ._batch import FlushMarker, SinkSlot, Waiter, Worker
from ._frame import Frame, RunState, frame_var
from ._procwriter import ProcessWriter, merge_stats
from ._wake import Wake, keep_signals_off_this_thread
from .config import Settings, resolve_db_path
from .processors import Processor
from .sinks.base import Sink

__all__ = ["Recorder", "configure", "get_recorder", "publish", "shutdown"]

log = logging.getLogger("agentlog")

_DROP_REASONS = (
    "queue_full",
    "too_large",
    "unserialisable",
    "sink_failed",
    "sink_rejected",
    "closed",
    "shutdown_timeout",
    "internal_error",
)
_NO_WRITES = {"written": 0, "failed": 0, "pending": 0, "errors": 0, "last_error": None, "healthy": True,
              "fallback": None}


class Recorder:
    """Accepts events from any thread and writes them through its sinks.

    Most programs use the process-wide recorder made by :func:`configure`; a
    Recorder can also be built directly (tests, several stores at once).
    ``clock`` returns unix nanoseconds and ``ids`` mints an id from such a time;
    inject them for deterministic output (see :mod:`agentlog.testing`).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        sinks: Sequence[Sink] | None = None,
        processors: Iterable[Processor] = (),
        clock: Callable[[], int] = time.time_ns,
        ids: Callable[[int | None], str] = _ids.new_id,
    ) -> None:
        self.settings = settings or Settings.resolve()
        # The default store alone, without processors (host callables), may be written by a
        # child process (see agentlog._procwriter); anything else keeps the in-process writer.
        self._process = sinks is None and not processors and self.settings.writer == "process"
        if sinks is None:
            sinks = [_default_sink(self.settings)]
        self._clock = clock
        self._ids = ids
        self._processors: tuple[Processor, ...] = tuple(processors)
        self._sinks = list(sinks)
        self._max_queue = self.settings.max_queue
        self._wake_at = self.settings.batch_size
        self._flush_interval_ns = int(self.settings.flush_interval * 1e9)
        self._sync = self.settings.durability == "sync"
        self._last_pushed_stats: dict[str, Any] | None = None
        self._init_runtime()
        if not self.settings.redact_secrets:
            log.warning("agentlog: redact_secrets=False: credentials in payloads are recorded as they are")
        _live.add(self)
        if self.settings.handle_sigterm:
            _install_sigterm_handler()

    def _init_runtime(self) -> None:
        """(Re)create everything a process owns alone: queue, locks, writer, counters."""
        self._queue: deque[Any] = deque()
        self._wake = Wake()  # lock-free: SIGTERM's handler may interrupt a set() (see _wake.py)
        # Re-entrant: the implicit run is started under it, and that publish may count a drop.
        self._lock = threading.RLock()
        self._dropped = dict.fromkeys(_DROP_REASONS, 0)
        self._streams: set[Any] = set()
        self._streams_lock = threading.Lock()
        self._internal_errors = 0
        self._closed = False
        self._close_deadline: float | None = None
        self._implicit: RunState | None = None
        self._uncaught: BaseException | None = None  # set by the excepthook: how the implicit run ends
        # In process mode the store's slot lives in the writer process (none here, unless it fails).
        self._slots = [] if self._process else [SinkSlot(s, self._max_queue, self._count_drop) for s in self._sinks]
        self._extra: dict[int, SinkSlot] = {}
        self._writer_id = _ids.new_id()
        self._started_at = time.time_ns() // 1000
        self._pid = os.getpid()
        self._worker: Worker | ProcessWriter
        if self._process:
            self._worker = ProcessWriter(self)
        else:
            self._worker = Worker(self)
        self._worker.start()

    # -- the hot path ------------------------------------------------------------------
    def publish(self, type: str, payload: dict[str, Any] | None = None) -> bool:
        """Record an event in the current run / turn / span. Never raises.

        The payload is encoded later, on the writer thread: do not mutate it
        (or containers inside it) after publishing; pass a copy if you will.
        Returns True if the event was accepted (queued, or committed in ``sync`` mode).
        """
        f = frame_var.get()
        run = f.run or self._implicit or self._implicit_run()
        item = (type, payload, self._clock(), next(run.seq), run.run_id, f.turn_id, f.span_id,
                f.parent_span_id, f.sinks, None)
        # _put() inlined: this is the hot path, and a call costs ~10% of it.
        q = self._queue
        if self._sync or self._closed or len(q) >= self._max_queue:
            return self._put(item)
        q.append(item)
        if len(q) >= self._wake_at and not self._wake.is_set():
            self._wake.set()
        return True

    def emit(
        self,
        type: str,
        payload: dict[str, Any] | None,
        frame: Frame,
        span_id: str | None,
        parent_span_id: str | None,
        ns: int | None = None,
    ) -> bool:
        """Publish with an explicit frame and span (span handles, streams). Never raises.

        ``ns`` stamps the event with an earlier time (gathered stream chunks keep the first's).
        """
        run = frame.run
        if run is None:
            run = self._implicit or self._implicit_run()
        return self._put(
            (type, payload, self._clock() if ns is None else ns, next(run.seq), run.run_id, frame.turn_id,
             span_id, parent_span_id, frame.sinks, None)
        )

    def _track_stream(self, inference: Any) -> None:
        """An inference holds stream chunks: the writer publishes them at its next drain."""
        with self._streams_lock:
            self._streams.add(inference)

    def _flush_streams(self) -> None:
        with self._streams_lock:
            streams, self._streams = self._streams, set()
        for inference in streams:
            inference.flush_chunks()

    def _put(self, item: tuple[Any, ...]) -> bool:
        if self._sync:
            return self._put_sync(item)
        if self._closed:
            self._count_drop("closed")
            return False
        q = self._queue
        if len(q) >= self._max_queue and not self._wait_for_room():
            return False
        q.append(item)
        if len(q) >= self._wake_at and not self._wake.is_set():
            self._wake.set()
        return True

    # -- slow paths ----------------------------------------------------------------------
    def _wait_for_room(self) -> bool:
        if self.settings.on_full == "block":
            deadline = time.monotonic() + self.settings.block_timeout
            self._wake.set()
            while len(self._queue) >= self._max_queue and time.monotonic() < deadline:
                time.sleep(0.0005)
            if len(self._queue) < self._max_queue:
                return True
        self._count_drop("queue_full")
        return False

    def _put_sync(self, item: tuple[Any, ...]) -> bool:
        if self._closed:
            self._count_drop("closed")
            return False
        if len(self._queue) >= self._max_queue and not self._wait_for_room():
            return False
        waiter = Waiter()
        self._queue.append((*item[:9], waiter))
        self._wake.set()
        return waiter.done.wait(self.settings.sync_timeout) and waiter.ok

    def _implicit_run(self) -> RunState:
        """The run that collects events published outside any ``agentlog.run()``."""
        with self._lock:
            if self._closed:  # nothing will be written: don't start a run that never ends
                return RunState(_ids.new_id(), None)
            if self._implicit is not None:
                return self._implicit
            _install_excepthook()
            name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
            run = self._implicit = RunState(_ids.new_id(), name)
            item = ("run.started", {"name": name, "implicit": True, "pid": os.getpid()},
                    self._clock(), next(run.seq), run.run_id, None, None, None, (), None)
        # Outside the lock: a sync publish waits for the writer, which takes the lock for stats.
        self._put(item)
        return run

    def _count_drop(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self._dropped[reason] = self._dropped.get(reason, 0) + n

    def _note_internal_error(self) -> None:
        with self._lock:
            self._internal_errors += 1

    def _all_slots(self) -> list[SinkSlot]:
        return self._slots + list(self._extra.values())

    def _extra_slot(self, sink: Sink) -> SinkSlot:
        """The slot of a sink attached with ``agentlog.sinks(...)`` (made on first use)."""
        slot = self._extra.get(id(sink))
        if slot is None:
            slot = self._extra[id(sink)] = SinkSlot(sink, self._max_queue, self._count_drop)
        return slot

    # -- control -------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event accepted so far is written; False on timeout or failure."""
        if self._closed and not self._worker.thread.is_alive():
            return not self._queue and bool(self.stats()["healthy"])
        marker = FlushMarker()
        self._queue.append(marker)  # markers bypass the bound: they carry no data
        self._wake.set()
        return marker.done.wait(timeout) and marker.ok

    def close(self, timeout: float | None = None) -> bool:
        """Write what is queued, stop the writer and close the sinks. Idempotent.

        Waits at most ``timeout`` (default: ``shutdown_timeout``); returns True
        if everything accepted was written. When the writer does not finish in
        time (a hanging sink), what it still holds is counted as dropped
        (``shutdown_timeout``) and logged.
        """
        with _closing_on_main():
            return self._close(timeout)

    def _close(self, timeout: float | None) -> bool:
        with self._lock:
            already = self._closed
            implicit, self._implicit = self._implicit, None
        if not already and implicit is not None:
            # Bypasses the bound (one item): a full queue must not leave the run "running".
            self._queue.append(
                ("run.finished", _ending(self._uncaught), self._clock(), next(implicit.seq),
                 implicit.run_id, None, None, None, (), None)
            )
        limit = self.settings.shutdown_timeout if timeout is None else timeout
        if self._close_deadline is None:
            self._close_deadline = time.monotonic() + limit
        self._closed = True
        worker = self._worker
        worker.stop.set()
        self._wake.set()
        if worker.thread is not threading.current_thread():
            worker.thread.join(limit)
            if worker.thread.is_alive() and not already:
                self._count_unsent()
        _live.discard(self)
        dropped = self.stats()["dropped"] if self._process else self._dropped
        return not worker.thread.is_alive() and not any(
            dropped.get(r) for r in ("sink_failed", "closed")
        ) and not self._queue

    def _count_unsent(self) -> None:
        """The writer is stuck past the deadline: count what it holds, release waiters."""
        worker = self._worker
        n = len(worker.in_flight) + sum(s.pending_count for s in self._slots)
        if isinstance(worker, ProcessWriter):
            n += worker.take_unconfirmed()
        q = self._queue
        while q:
            it = q.popleft()
            if type(it) is FlushMarker:
                it.done.set()
                continue
            n += 1
            if it[9] is not None:
                it[9].done.set()
        if n:
            self._count_drop("shutdown_timeout", n)
            log.error("agentlog: the writer did not finish within shutdown_timeout=%ss; %d event(s) were"
                      " not written (counted as dropped: shutdown_timeout)", self.settings.shutdown_timeout, n)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def sinks(self) -> list[Sink]:
        return list(self._sinks)

    def stats(self) -> dict[str, Any]:
        """Counters: written per sink, dropped per reason, queued, health."""
        with self._lock:
            dropped = dict(self._dropped)
            internal = self._internal_errors
        worker = self._worker
        own: dict[str, Any] = {
            "writer_id": self._writer_id,
            "pid": self._pid,
            "started_at": self._started_at,
            "queued": len(self._queue) + len(worker.held) + getattr(worker, "unconfirmed", 0),
            "dropped": dropped,
            "redacted": self._worker.redacted,
            "masked": self._worker.masked,
            "internal_errors": internal,
            "sinks": {
                s.name: {
                    "written": s.written,
                    "failed": s.failed,
                    "pending": s.pending_count,
                    "errors": s.errors,
                    "last_error": s.last_error,
                    "healthy": s.healthy,
                    "fallback": str(getattr(s.sink, "fallback", None) or "") or None,
                }
                for s in self._all_slots()
            },
            "healthy": all(s.healthy for s in self._all_slots()),
            "closed": self._closed,
        }
        if self._process and isinstance(worker, ProcessWriter):
            if not worker.failed:  # the store's sink is there before the child's first report
                for sink in self._sinks:
                    own["sinks"].setdefault(getattr(sink, "name", type(sink).__name__), dict(_NO_WRITES))
            # The writer process's counters as of its last answer (exact after flush()).
            return merge_stats(own, worker.snapshot)
        return own

    def _after_fork_child(self) -> None:
        # Inherited sink handles (an SQLite connection) are dropped, never closed:
        # closing would disturb the parent's use of the same file descriptors.
        for sink in self._sinks:
            hook = getattr(sink, "after_fork", None)
            if callable(hook):
                try:
                    hook()
                except Exception:
                    log.exception("agentlog: sink %s failed to reset after fork", sink.name)
        drop = getattr(self._worker, "after_fork", None)
        if callable(drop):
            drop()  # the parent's writer process and pipe are not ours
        self._wake.close()  # our copies of the parent's wake-up pipe
        closed = self._closed
        self._last_pushed_stats = None
        self._init_runtime()
        if closed:
            self._closed = True
            self._worker.stop.set()
            self._wake.set()


def _ending(exc: BaseException | None) -> dict[str, Any]:
    """The run.finished payload of an implicit run that the program ended with ``exc``."""
    if exc is None:
        return {"status": "ok"}
    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "error"
    return {"status": status, "error": {"type": type(exc).__name__, "message": str(exc)}}


_hook_installed = False


def _install_excepthook() -> None:
    """Let an uncaught exception end the implicit run as ``error`` (``interrupted`` for Ctrl-C).

    Runs opened with ``agentlog.run()`` see the exception pass through them; the
    implicit run has no block to see it in, and would otherwise end ``ok`` at exit.
    The previous hook is called as before.
    """
    global _hook_installed
    if _hook_installed:
        return
    _hook_installed = True
    previous = sys.excepthook

    def hook(et: type[BaseException], exc: BaseException, tb: Any) -> None:
        for r in list(_live):
            r._uncaught = exc
        previous(et, exc, tb)

    sys.excepthook = hook


_live: weakref.WeakSet[Recorder] = weakref.WeakSet()
_default: Recorder | None = None
_default_lock = threading.Lock()


def _default_sink(settings: Settings) -> Sink:
    """The SQLite store named by ``settings.db``; opened later, on the writer thread."""
    from .sinks.sqlite import SQLiteSink

    # No checks here: this also runs lazily inside publish(), which never raises.
    # A directory or an unusable file is handled by the sink (a fallback file).
    return SQLiteSink(resolve_db_path(settings.db), fsync=settings.fsync)


def configure(
    db: str | os.PathLike[str] | None = None,
    *,
    durability: str | None = None,
    flush_interval: float | None = None,
    batch_size: int | None = None,
    max_queue: int | None = None,
    on_full: str | None = None,
    block_timeout: float | None = None,
    sync_timeout: float | None = None,
    shutdown_timeout: float | None = None,
    keep_deltas: bool | None = None,
    max_event_bytes: int | None = None,
    max_string_bytes: int | None = None,
    fsync: bool | None = None,
    keep_media: bool | None = None,
    secret_names: Sequence[str] | None = None,
    handle_sigterm: bool | None = None,
    redact_secrets: bool | None = None,
    writer: str | None = None,
    sinks: Sequence[Sink] | None = None,
    extra_sinks: Sequence[Sink] = (),
    processors: Iterable[Processor] = (),
) -> Recorder:
    """Set up the process-wide recorder (closing any previous one) and return it.

    ``db`` is a file path or ``sqlite:///path`` (default ``./agentlog.db`` or
    ``$AGENTLOG_DB``). ``sinks`` replaces the default SQLite store entirely;
    ``extra_sinks`` adds to it (and, like ``processors``, keeps the writer in this
    process: see ``writer``). Other settings: see :mod:`agentlog.config`.
    """
    global _default
    settings = Settings.resolve(
        db=db,
        durability=durability,
        flush_interval=flush_interval,
        batch_size=batch_size,
        max_queue=max_queue,
        on_full=on_full,
        block_timeout=block_timeout,
        sync_timeout=sync_timeout,
        shutdown_timeout=shutdown_timeout,
        keep_deltas=keep_deltas,
        max_event_bytes=max_event_bytes,
        max_string_bytes=max_string_bytes,
        fsync=fsync,
        keep_media=keep_media,
        secret_names=secret_names,
        handle_sigterm=handle_sigterm,
        redact_secrets=redact_secrets,
        writer=writer,
    )
    default_only = sinks is None and not extra_sinks
    if sinks is None:
        path = resolve_db_path(settings.db)
        if path.is_dir():  # the one mistake worth catching before the writer starts
            from .errors import ConfigError

            raise ConfigError(f"db={settings.db!r} is a directory; give a file path such as {path / 'agentlog.db'}")
        sinks = [_default_sink(settings)]
    # The default store alone: the recorder makes its own sink (and may write it from a child process).
    recorder = Recorder(settings, sinks=None if default_only else [*sinks, *extra_sinks], processors=processors)
    with _default_lock:
        previous, _default = _default, recorder
    if previous is not None:
        previous.close()
    return recorder


def get_recorder() -> Recorder:
    """The process-wide recorder, configured from the environment on first use."""
    global _default
    r = _default
    if r is None:
        with _default_lock:
            if _default is None:
                _default = Recorder()
            r = _default
    return r


def publish(type: str, payload: dict[str, Any] | None = None) -> bool:
    """Publish an event through the process-wide recorder. Never raises."""
    r = _default or get_recorder()
    return r.publish(type, payload)


def shutdown(timeout: float | None = None) -> bool:
    """Close the process-wide recorder (also done automatically at exit)."""
    global _default
    with _default_lock:
        r, _default = _default, None
    return r.close(timeout) if r is not None else True


@atexit.register
def _close_all_at_exit() -> None:
    with _closing_on_main():
        for r in list(_live):
            try:
                r.close()
            except Exception:  # never turn a clean exit into a traceback
                log.exception("agentlog: error while closing the recorder at exit")


#: Closes under way on the main thread, and a SIGTERM that arrived during one of them.
_main_closes = 0
_sigterm_pending = False


@contextmanager
def _closing_on_main() -> Iterator[None]:
    """Mark a close running on the main thread, where SIGTERM's handler would interrupt it.

    The handler must not start a second close then (the first may hold a lock the second
    needs: each would wait for the other until the bound, and the process die with its
    queue unwritten, as a ``multiprocessing`` pool's workers did when ``terminate()`` came
    during their own exit). It lets the interrupted close finish, and the process ends of
    SIGTERM as it would have when the outermost close returns.
    """
    global _main_closes, _sigterm_pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _main_closes += 1
    try:
        yield
    finally:
        _main_closes -= 1
        if not _main_closes and _sigterm_pending:
            _sigterm_pending = False
            _end_of_sigterm(signal.SIGTERM, None)


_previous_sigterm: Any = None
_sigterm_installed = False


def _install_sigterm_handler() -> None:
    """Make SIGTERM write what is queued first (once per process, main thread only).

    A handler the host set earlier is chained (called after a bounded flush);
    an ignored SIGTERM stays ignored; a handler set later by the host replaces
    ours, and exiting through ``sys.exit`` from it still writes everything (atexit).
    """
    global _previous_sigterm, _sigterm_installed
    if _sigterm_installed or threading.current_thread() is not threading.main_thread():
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous is signal.SIG_IGN or previous is None:  # ignored on purpose, or set from C
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main interpreter, or no signals here
        return
    _previous_sigterm = previous
    _sigterm_installed = True
    _sigwatch.start(_ours_is_installed)


def _ours_is_installed() -> bool:
    return signal.getsignal(signal.SIGTERM) is _on_sigterm


def _on_sigterm(signum: int, frame: Any) -> None:
    global _sigterm_pending
    _sigwatch.handled()
    if _main_closes:  # interrupting a close: let it finish, then end (see _closing_on_main)
        _sigterm_pending = True
        return
    if callable(_previous_sigterm):
        # The host decides what SIGTERM means; make sure the record is written first.
        _off_the_signal(_flush_all)
    else:
        _off_the_signal(_close_all_at_exit)
    _end_of_sigterm(signum, frame)


def _end_of_sigterm(signum: int, frame: Any) -> None:
    """What SIGTERM does once the record is written: the host's handler, or the default."""
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
        return
    # Die of SIGTERM as the program would have without us (exit status -15).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _flush_all() -> None:
    for r in list(_live):
        r.flush(r.settings.shutdown_timeout)


def _off_the_signal(work: Callable[[], None]) -> None:
    """Run ``work`` on another thread and wait for it, at most the longest shutdown_timeout + 1 s.

    A signal handler runs on the main thread between two bytecodes, possibly inside
    ``publish()`` while it holds a lock that flushing needs again (a ``threading.Event``'s
    condition is not reentrant): done in the handler itself, the flush would wait on the
    interrupted code forever (seen: a pool's workers hanging in ``terminate()``). On another
    thread it waits at worst for the bound, while the writer, which wakes every
    ``flush_interval`` on its own, goes on writing.
    """
    limit = max((r.settings.shutdown_timeout for r in list(_live)), default=0.0) + 1.0
    def run() -> None:
        keep_signals_off_this_thread()  # a second SIGTERM goes to the main thread, as the first
        work()

    worker = threading.Thread(target=run, name="agentlog-sigterm", daemon=True)
    worker.start()
    worker.join(limit)


_fork_holds_io = False
_mp_hooked = False


def _before_fork() -> None:
    """Let the writer finish the SQLite call it is in (at most FORK_WAIT s) before forking."""
    global _fork_holds_io
    _hook_multiprocessing()
    if any(r._worker.thread is threading.current_thread() for r in list(_live)):
        return  # a sink forking from the writer itself: it already holds the lock
    _fork_holds_io = _batch.io_lock.acquire(timeout=_batch.FORK_WAIT)


def _hook_multiprocessing() -> None:
    """Make multiprocessing's children write what they queued before they exit.

    A multiprocessing child ends with ``os._exit()`` after its own exit function, so
    atexit never runs there: events published by a pool task in its last
    ``flush_interval`` would be lost. multiprocessing clears the finalizers a child
    inherits, then runs its after-fork callbacks; ours registers the close there.
    """
    global _mp_hooked
    util = sys.modules.get("multiprocessing.util")
    if _mp_hooked or util is None:
        return
    _mp_hooked = True
    util.register_after_fork(_MP_ANCHOR, _register_mp_finalizer)


class _Anchor:
    """multiprocessing keys its after-fork callbacks by a live, weak-referenceable object."""


_MP_ANCHOR = _Anchor()


def _register_mp_finalizer(_: object) -> None:
    import multiprocessing.util

    multiprocessing.util.Finalize(None, _close_all_at_exit, exitpriority=-1000)


def _after_fork_in_parent() -> None:
    global _fork_holds_io
    if _fork_holds_io:
        _fork_holds_io = False
        _batch.io_lock.release()


def _after_fork_in_child() -> None:
    global _fork_holds_io
    _fork_holds_io = False
    _batch.io_lock = threading.Lock()  # the parent's writer may hold the inherited one
    _sigwatch.after_fork_in_child()
    for r in list(_live):
        r._after_fork_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
