"""The default store's writer in a child process (``writer="process"``), host side.

The host keeps the recorder's queue and its hot path; its writer thread becomes a
*forwarder*: it drains the queue as :class:`agentlog._batch.Worker` does (stream chunks
collected before every batch, flush markers, sync waiters), pickles the items
(:mod:`agentlog._wire`) and writes them into a pipe. The child
(:mod:`agentlog._writer_process`) runs an ordinary thread-mode recorder with the SQLite
sink and does all the rest: events, ids, delta consolidation, secret redaction, JSON, SQL.
So the writer's Python no longer takes the host's GIL, and what reached the child is
written even if the host is killed.

Flush markers and sync waiters cross as ids; the child answers each after its commit,
with its counters, and reports its progress after every batch, on its stdout. A reader
thread here (blocked in ``os.read``, the GIL released) sets the markers and keeps the
child's latest counters, which :meth:`Recorder.stats` adds to the host's. The child's log
records come back the same way and are logged again on the host's ``agentlog`` logger.

If the child cannot be started or dies, one error is logged, what it had received but not
confirmed is counted as dropped (``internal_error``), and the recorder goes on with an
in-process writer (``self.local``, a plain :class:`Worker`) so nothing later is lost.
That worker also serves sinks attached with ``agentlog.sinks(...)`` meanwhile: they are
host objects, and their events are built here as in thread mode.

This module is imported when a recorder is built; ``subprocess`` and ``pickle`` only on
the writer thread, when the child is started.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ._batch import HOLD_SECONDS, FlushMarker, SinkSlot, Waiter, Worker, WriterLoop, take_batch
from ._gil import share_gil
from ._wake import Flag, keep_signals_off_this_thread

if TYPE_CHECKING:
    from .recorder import Recorder

__all__ = ["ProcessWriter", "merge_stats"]

log = logging.getLogger("agentlog")

#: Items per pickled frame: small enough that pickling one never holds the GIL for long.
CHUNK = 64
#: The longest the forwarder waits for a new writer process to be ready (items queue meanwhile).
START_TIMEOUT = 30.0
#: Drops the child counts for the same events: not counted again for context sinks here.
_ENCODING_DROPS = frozenset({"too_large", "unserialisable"})
_SUMMED = ("written", "failed", "pending", "errors")


def merge_stats(host: dict[str, Any], child: dict[str, Any] | None) -> dict[str, Any]:
    """The host's counters plus the writer process's (per reason, per sink).

    Identity (writer id, pid, start) and ``closed`` are the host's; ``queued`` is the host's
    (its queue, and what the child has not confirmed) plus the stream chunks the child holds.
    """
    if not child:
        return host
    out = dict(host)
    out["queued"] = host["queued"] + child.get("held", 0)
    hd, cd = host["dropped"], child.get("dropped", {})
    out["dropped"] = {k: hd.get(k, 0) + cd.get(k, 0) for k in {**hd, **cd}}
    for key in ("redacted", "masked", "internal_errors"):
        out[key] = host.get(key, 0) + child.get(key, 0)
    sinks = {name: dict(s) for name, s in child.get("sinks", {}).items()}
    for name, s in host.get("sinks", {}).items():
        mine = sinks.get(name)
        if mine is None:
            sinks[name] = s
            continue
        for key in _SUMMED:
            mine[key] = mine.get(key, 0) + s.get(key, 0)
        mine["last_error"] = s.get("last_error") or mine.get("last_error")
        mine["healthy"] = bool(s.get("healthy")) and bool(mine.get("healthy"))
        mine["fallback"] = s.get("fallback") or mine.get("fallback")
    out["sinks"] = sinks
    out["healthy"] = bool(host["healthy"]) and bool(child.get("healthy", True))
    return out


class _LocalHost:
    """What the in-process :class:`Worker` sees as its recorder.

    Everything is the recorder's, except that until the child fails it has no store slot
    (the child writes the store) and it does not count again the encoding drops the child
    counts for the same events.
    """

    def __init__(self, rec: Recorder, writer: ProcessWriter) -> None:
        self._rec = rec
        self._writer = writer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rec, name)

    def _count_drop(self, reason: str, n: int = 1) -> None:
        if self._writer.failed or reason not in _ENCODING_DROPS:
            self._rec._count_drop(reason, n)


class ProcessWriter(WriterLoop):
    """Stands in for :class:`Worker`: forwards the recorder's queue to a writer process."""

    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder
        s = recorder.settings
        self.batch_size = s.batch_size
        self.flush_interval = s.flush_interval
        self.stop = Flag()  # lock-free, as the wake-up (_wake.py)
        self.in_flight: list[Any] = []  # the recorder's interface; see unconfirmed instead
        self.thread = threading.Thread(target=self._run, name="agentlog-writer", daemon=True)
        self.local = Worker(_LocalHost(recorder, self))  # type: ignore[arg-type]
        self.local.stop = self.stop
        self.failed = False
        self.sent = 0  # items written into the pipe
        self.in_hand = 0  # items taken from the queue, not yet in the pipe (e.g. while the child starts)
        self.confirmed = 0  # items the child has handled (written, kept for retry, or counted)
        self.snapshot: dict[str, Any] | None = None  # the child's latest own counters
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[FlushMarker | Waiter, bool]] = {}
        self._ids = itertools.count()
        self._proc: Any = None
        self._wfd = -1
        self._host_sent: dict[str, Any] | None = None
        self._counted = False  # the unconfirmed items were counted (shutdown_timeout)
        self._over = threading.Event()  # the child said "closed", or failed
        self._ready = threading.Event()  # the child has built its recorder
        self._closed_ok = False
        self._base = (0, 0)  # the local worker's redacted/masked when it took over the store

    def start(self) -> None:
        self.thread.start()

    # -- what Recorder.stats() reads -------------------------------------------------
    @property
    def held(self) -> list[Any]:
        return self.local.held

    @property
    def redacted(self) -> int:
        return self.local.redacted - self._base[0] if self.failed else 0

    @property
    def masked(self) -> int:
        return self.local.masked - self._base[1] if self.failed else 0

    @property
    def unconfirmed(self) -> int:
        """Items out of the queue and not yet handled by the child: ``stats()["queued"]`` counts them."""
        in_pipe = 0 if self.failed or self._counted else max(0, self.sent - self.confirmed)
        return self.in_hand + in_pipe

    def take_unconfirmed(self) -> int:
        """Items sent but not confirmed, counted once (by whoever gives up first)."""
        with self._lock:
            if self.failed or self._counted:
                return 0
            self._counted = True
            pending = list(self._pending.values())
            self._pending.clear()
        for obj, _ in pending:
            obj.done.set()
        return max(0, self.sent - self.confirmed)

    # -- the loop (WriterLoop._run) ----------------------------------------------------
    def drain(self) -> None:
        if self.failed:
            self.local.drain()
            return
        rec, local = self.rec, self.local
        q = rec._queue
        size = self.batch_size
        sent = False
        while True:
            rec._flush_streams()  # as Worker.drain: before every batch
            if not q:
                break
            items, marker = take_batch(q, size)
            release = marker is not None or self.stop.is_set()
            if items or (release and local.held):
                self._forward(items, release)
                sent = True
            if marker is not None:
                self._send_marker(marker)
                sent = True
            if self.failed:
                local.drain()
                return
        if sent:
            self._end_drain()
        if local.held and (self.stop.is_set() or time.monotonic() - local.held_since >= HOLD_SECONDS):
            local._process_guarded([], release=True)
        local.retry_all()

    def _forward(self, items: list[Any], release: bool) -> None:
        extra = [(*it[:9], None) for it in items if it[8]]
        if extra or (release and self.local.held):
            # Sinks attached with agentlog.sinks(...) live here: their events are built here.
            self.local._process_guarded(extra, release)
        if not items:
            return
        self.in_hand = len(items)
        try:
            self._forward_items(items, release)
        finally:
            self.in_hand = 0

    def _forward_items(self, items: list[Any], release: bool) -> None:
        if not self._ensure_child():
            self.local._process_guarded(items, release)
            return
        chunk: list[Any] = []
        for it in items:
            if it[8] or it[9] is not None:
                chunk.append((*it[:8], (), None))
                if it[9] is not None:
                    self._send_chunk(chunk, it[9], release)
                    chunk = []
                    continue
            else:
                chunk.append(it)
            if len(chunk) >= CHUNK:
                self._send_chunk(chunk, None, release)
                chunk = []
                share_gil()
        if chunk:
            self._send_chunk(chunk, None, release)

    def _send_chunk(self, chunk: list[Any], waiter: Waiter | None, release: bool) -> None:
        from . import _wire

        taken = len(chunk)
        body, chunk = self._pickle(chunk)
        with self._lock:
            self.in_hand = max(0, self.in_hand - taken)
            if not self.failed:
                wid = -1
                if waiter is not None:
                    wid = next(self._ids)
                    self._pending[wid] = (waiter, True)
                self.sent += len(chunk)
        if self.failed:  # the child is gone: this chunk goes the in-process way
            if waiter is not None and chunk:
                chunk[-1] = (*chunk[-1][:9], waiter)
            self.local._process_guarded(chunk, release)
            return
        self._write(_wire.frame(_wire.ITEMS, body, len(chunk), wid))

    def _pickle(self, chunk: list[Any]) -> tuple[bytes, list[Any]]:
        """Pickle a chunk; a payload pickle refuses (nested too deep) goes as the encoder's form."""
        from . import _wire
        from ._encode import sanitize

        limit = self.rec.settings.max_event_bytes
        try:
            return _wire.dumps(chunk, limit), chunk
        except Exception:
            pass
        kept: list[Any] = []
        for it in chunk:
            try:
                _wire.dumps(it, limit)
                kept.append(it)
                continue
            except Exception:
                pass
            try:
                fixed = (it[0], sanitize(it[1], None, limit), *it[2:])
                _wire.dumps(fixed, limit)
                kept.append(fixed)
            except Exception:
                self.rec._count_drop("unserialisable")
                log.warning("agentlog: dropped a %s event: payload unserialisable", it[0])
        return _wire.dumps(kept, limit), kept

    def _send_marker(self, marker: FlushMarker) -> None:
        from . import _wire

        local_ok = self.local.retry_all(force=True)
        with self._lock:
            answer_here = self.failed or self._proc is None
            if not answer_here:
                wid = next(self._ids)
                self._pending[wid] = (marker, local_ok)
        if answer_here:  # nothing was ever sent to a child (or it is gone): nothing to wait for
            marker.ok = self.local.retry_all(force=True) if self.failed else local_ok
            marker.done.set()
            return
        self._write(_wire.frame(_wire.FLUSH, b"", 0, wid))

    def _end_drain(self) -> None:
        from . import _wire

        if self.failed or self._proc is None:
            return
        host = self._host_part()
        body = _wire.dumps(None if host == self._host_sent else host)
        self._host_sent = host
        self._write(_wire.frame(_wire.DRAIN_END, body))

    def _host_part(self, final: bool = False) -> dict[str, Any]:
        """The host's own counters, stored by the child with its own (al_writers)."""
        rec = self.rec
        with rec._lock:
            dropped = dict(rec._dropped)
            internal = rec._internal_errors
        return {"writer_id": rec._writer_id, "pid": rec._pid, "started_at": rec._started_at,
                "dropped": dropped, "internal_errors": internal, "queued": len(rec._queue),
                "closed": final}

    def _write(self, data: bytes) -> None:
        from ._wire import write_all

        try:
            write_all(self._wfd, data)
        except (OSError, ValueError) as exc:
            self._fail(f"stopped reading ({exc})")

    # -- the child ---------------------------------------------------------------------
    def _ensure_child(self) -> bool:
        if self._proc is not None or self.failed:
            return not self.failed
        from . import _wire

        try:
            self._proc = _spawn()
        except Exception as exc:
            self._fail(f"could not be started ({type(exc).__name__}: {exc})")
            return False
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._wfd = self._proc.stdin.fileno()
        reader = threading.Thread(target=self._read, args=(self._proc,), name="agentlog-writer-reader",
                                  daemon=True)
        reader.start()
        settings = dataclasses.replace(self.rec.settings, writer="thread", handle_sigterm=False)
        host = self._host_part()  # before any batch: the store knows the writer as the host
        self._host_sent = host
        self._write(_wire.frame(_wire.SETTINGS, _wire.dumps((dataclasses.asdict(settings), host))))
        # Nothing is sent before the child is ready: if it cannot start (an interpreter or a
        # package it cannot read, say), nothing is lost and this process writes instead.
        end = time.monotonic() + START_TIMEOUT
        while not (self._ready.is_set() or self._over.is_set()) and time.monotonic() < end:
            self._ready.wait(0.05)
        if not self._ready.is_set():
            self._fail(f"did not start within {START_TIMEOUT:.0f} s")
        return not self.failed

    def _read(self, proc: Any) -> None:
        """The reader thread: the child's answers, progress and log records, until EOF."""
        import pickle

        from ._wire import read_frames

        keep_signals_off_this_thread()
        fd = proc.stdout.fileno()
        buf = bytearray()
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            buf += data
            frames, used = read_frames(buf)
            del buf[:used]
            for _, body, _, _ in frames:
                try:
                    self._on_reply(pickle.loads(body))
                except Exception:
                    log.exception("agentlog: could not read the writer process's reply")
        if not self._closed_ok:
            code = proc.poll()
            self._fail("exited unexpectedly" + (f" (exit status {code})" if code is not None else ""))
        try:
            proc.wait()  # reap it
        except Exception:
            pass

    def _on_reply(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "log":
            _, name, level, text = msg
            logging.getLogger(name).log(level, "%s", text)
            return
        if kind == "ready":
            self._ready.set()
            return
        with self._lock:
            self.confirmed = max(self.confirmed, msg[-2])
            self.snapshot = msg[-1]
            entry = self._pending.pop(msg[1], None) if kind == "ack" else None
        if entry is not None:
            obj, local_ok = entry
            obj.ok = bool(msg[2]) and local_ok
            obj.done.set()
        if kind == "closed":
            self._closed_ok = True
            self._over.set()

    def _fail(self, reason: str) -> None:
        """The child is unusable: count what it did not confirm, go on in this process."""
        rec = self.rec
        with self._lock:
            if self.failed:
                return
            lost = 0 if self._counted else max(0, self.sent - self.confirmed)
            pending = list(self._pending.values())
            self._pending.clear()
            self._base = (self.local.redacted, self.local.masked)
            # The store's slot, from now on written by the in-process worker.
            rec._slots = [SinkSlot(s, rec._max_queue, rec._count_drop) for s in rec._sinks]
            self.failed = True
        if lost:
            rec._count_drop("internal_error", lost)
        log.error("agentlog: the writer process %s; %d event(s) it had received but not confirmed are counted"
                  " as dropped (internal_error); writing from this process from now on", reason, lost)
        for obj, _ in pending:
            obj.ok = False
            obj.done.set()
        self._over.set()
        self._close_pipe()
        if not self._ready.is_set() and self._proc is not None:
            try:
                self._proc.kill()  # never started properly: it must not write anything later
            except Exception:
                pass

    def _close_pipe(self) -> None:
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.close()  # unbuffered: nothing is written, the child sees EOF
            except Exception:
                pass

    def finish(self) -> None:
        """At close: ask the child to close (within the deadline) and wait for its last counters."""
        from . import _wire

        rec = self.rec
        end = rec._close_deadline or time.monotonic() + rec.settings.shutdown_timeout
        if not self.failed and self._proc is None and any(rec._dropped.values()):
            self._ensure_child()  # nothing was written, but the store should show the drops
        if not self.failed and self._proc is not None:
            left = max(0.0, end - time.monotonic())
            body = _wire.dumps((self._host_part(final=True), left - min(0.25, left / 5)))
            self._write(_wire.frame(_wire.CLOSE, body))
            self._close_pipe()
            self._over.wait(max(0.0, end - time.monotonic()))
            if not self._over.is_set():
                n = self.take_unconfirmed()
                if n:
                    rec._count_drop("shutdown_timeout", n)
                    log.error("agentlog: the writer process did not finish within shutdown_timeout=%ss; %d"
                              " event(s) were not confirmed (counted as dropped: shutdown_timeout)",
                              rec.settings.shutdown_timeout, n)
        self.local.finish()

    def after_fork(self) -> None:
        """In a forked child: drop the parent's pipe without writing (the parent keeps it).

        Our copies of the pipe's ends are closed: unbuffered, so nothing is written, and the
        parent's ends stay open. Kept open, they would hide the parent's death from its
        writer process (no EOF while this child lives).
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return
        _ORPHANS.append(proc)  # never waited for or collected here: it is not our child
        for f in (proc.stdin, proc.stdout):
            try:
                if f is not None:
                    f.close()
            except Exception:
                pass


_ORPHANS: list[Any] = []


#: Started with ``-c`` so that agentlog's own directory can be put first on the child's path
#: only when it is not already there: through PYTHONPATH it would also come before the
#: standard library (an installed agentlog's directory is site-packages).
_BOOT = ("import sys; r = sys.argv[1]; r in sys.path or sys.path.insert(0, r); "
         "from agentlog._writer_process import main; sys.exit(main())")


def interpreter() -> str:
    """The Python to start the writer process with; raises when there is none to trust.

    ``sys.executable`` is the host's interpreter in a normal program, but in an embedding
    application (uWSGI, a frozen bundle, a plug-in host) it names that application, and
    running it with our arguments would start another copy of it.
    """
    exe = sys.executable
    if getattr(sys, "frozen", False) or not exe or not os.path.isfile(exe):
        raise RuntimeError(f"no Python interpreter to run it with (sys.executable={exe!r})")
    name = os.path.basename(exe).lower()
    if not name.startswith(("python", "pypy")):
        raise RuntimeError(f"sys.executable={exe!r} does not look like a Python interpreter;"
                           " set writer='thread' (AGENTLOG_WRITER=thread) to silence this")
    return exe


def _spawn() -> Any:
    import subprocess

    import agentlog

    # The same agentlog as the host's, wherever it was imported from.
    root = os.path.dirname(os.path.dirname(os.path.abspath(agentlog.__file__)))
    return subprocess.Popen([interpreter(), "-c", _BOOT, root], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, close_fds=True, bufsize=0)
