"""The writer process: ``python -m agentlog._writer_process``, started by :mod:`agentlog._procwriter`.

It reads frames (:mod:`agentlog._wire`) from stdin and feeds the items into an ordinary
thread-mode :class:`~agentlog.recorder.Recorder` with the SQLite sink, built from the
host's settings. It answers on stdout: progress after each batch, each flush marker and
sync waiter after its commit (with its counters), its log records, and ``closed`` with the
final counters. It stops at a close request, or when the host is gone (EOF on stdin, or
its parent changed): it then writes everything it received, closes the store and exits,
so it never outlives the pipe. SIGINT and SIGTERM are ignored: a Ctrl-C or a SIGTERM to
the host's process group must not stop it while the host is flushing through it.
"""

from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import sys
import threading
import time
from collections import deque
from typing import Any

from . import _gil, _wire
from ._batch import FlushMarker, Waiter
from ._procwriter import merge_stats
from .config import Settings
from .recorder import Recorder

log = logging.getLogger("agentlog")


class _Out:
    """The reply pipe (stdout), shared by the writer thread, the reader and the log handler."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lock = threading.Lock()
        self.broken = False

    def reply(self, msg: tuple[Any, ...]) -> None:
        data = _wire.frame(_wire.REPLY, pickle.dumps(msg, protocol=5))
        with self.lock:
            if self.broken:
                return
            try:
                _wire.write_all(self.fd, data)
            except OSError:
                self.broken = True  # the host is gone; go on writing what was received


class _CountingQueue(deque[Any]):
    """The recorder's queue, counting the items its writer has taken (markers aside)."""

    taken = 0

    def popleft(self) -> Any:
        it = super().popleft()
        if type(it) is not FlushMarker:
            self.taken += 1
        return it


class _Answer(threading.Event):
    """The ``done`` of a flush marker or sync waiter: setting it answers the host."""

    def __init__(self, rec: WriterRecorder, wid: int, owner: FlushMarker | Waiter) -> None:
        super().__init__()
        self.rec, self.wid, self.owner = rec, wid, owner

    def set(self) -> None:
        super().set()
        self.rec.out.reply(("ack", self.wid, self.owner.ok, self.rec.progress, self.rec.own_stats()))


class WriterRecorder(Recorder):
    """A thread-mode recorder whose items come from the host, and whose counters include the host's."""

    def __init__(self, settings: Settings, out: _Out) -> None:
        self.out = out
        self.host: dict[str, Any] | None = None
        self._reported = 0
        super().__init__(settings)

    def _init_runtime(self) -> None:
        super()._init_runtime()
        self._queue = _CountingQueue()  # the writer reads rec._queue at every drain

    @property
    def progress(self) -> int:
        """Items taken by the writer. Read between two batches, all of them are handled."""
        q = self._queue
        return q.taken if isinstance(q, _CountingQueue) else 0

    def _flush_streams(self) -> None:
        # Called by the writer before every batch, that is after the previous one is done.
        n = self.progress
        if n != self._reported:
            self._reported = n
            self.out.reply(("progress", n, self.own_stats()))

    def own_stats(self) -> dict[str, Any]:
        """Our counters alone (the host adds its own), with the stream chunks held back."""
        return {**super().stats(), "held": len(self._worker.held)}

    def stats(self) -> dict[str, Any]:
        """What the store keeps (al_writers): the host's identity and counters plus ours."""
        own = super().stats()
        host = self.host
        if host is None:
            return own
        base = {**own, "writer_id": host["writer_id"], "pid": host["pid"], "started_at": host["started_at"],
                "dropped": host["dropped"], "internal_errors": host["internal_errors"], "redacted": 0,
                "masked": 0, "queued": host["queued"], "closed": host["closed"], "sinks": {}, "healthy": True}
        merged = merge_stats(base, own)
        merged["queued"] = host["queued"] + own["queued"]
        return merged


class _Forward(logging.Handler):
    """Sends the child's log records to the host, which logs them again."""

    def __init__(self, out: _Out) -> None:
        super().__init__(logging.DEBUG)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            self.out.reply(("log", record.name, record.levelno, text))
        except Exception:
            pass


def _private_pipes() -> tuple[int, int]:
    """Keep stdin/stdout for the protocol; stray reads get /dev/null, stray prints stderr."""
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    return rfd, wfd


def _feed(rec: WriterRecorder, body: bytes, count: int, wid: int) -> None:
    try:
        items = pickle.loads(body)
    except Exception as exc:  # e.g. an object that became a dict and was a dict key
        rec._count_drop("unserialisable", count)
        log.warning("agentlog: dropped %d event(s) that could not be passed to the writer (%s)", count, exc)
        if wid >= 0:
            rec.out.reply(("ack", wid, False, rec.progress, rec.own_stats()))
        return
    if wid >= 0 and items:
        waiter = Waiter()
        waiter.done = _Answer(rec, wid, waiter)
        items[-1] = (*items[-1][:9], waiter)
    q = rec._queue
    q.extend(items)
    if wid >= 0 or len(q) >= rec._wake_at:
        rec._wake.set()


def _serve(rfd: int, out: _Out) -> tuple[WriterRecorder | None, float | None]:
    """Read frames until a close request (its time limit) or the host is gone (None)."""
    rec: WriterRecorder | None = None
    ppid = os.getppid()
    buf = bytearray()
    while True:
        if rec is not None and len(rec._queue) >= rec._max_queue:
            # Bounded memory: stop reading. The pipe fills, the host's forwarder waits, and the
            # host's own queue (max_queue) decides what is dropped, as in thread mode.
            rec._wake.set()
            time.sleep(0.005)
            if os.getppid() != ppid:
                return rec, None
            continue
        ready, _, _ = select.select([rfd], [], [], 1.0)
        if not ready:
            if os.getppid() != ppid:  # the host died, though someone else holds the pipe
                return rec, None
            continue
        data = os.read(rfd, 1 << 20)
        if not data:
            return rec, None
        buf += data
        frames, used = _wire.read_frames(buf)
        del buf[:used]
        for kind, body, count, wid in frames:
            if kind == _wire.SETTINGS:
                values, host = pickle.loads(body)
                rec = _start(values, out)
                rec.host = host
                out.reply(("ready",))
            elif rec is None:
                continue
            elif kind == _wire.ITEMS:
                _feed(rec, body, count, wid)
            elif kind == _wire.FLUSH:
                marker = FlushMarker()
                marker.done = _Answer(rec, wid, marker)
                rec._queue.append(marker)
                rec._wake.set()
            elif kind == _wire.DRAIN_END:
                host = pickle.loads(body)
                if host is not None:
                    rec.host = host
                rec._wake.set()
            elif kind == _wire.CLOSE:
                rec.host, left = pickle.loads(body)
                return rec, max(0.0, left)


def _start(values: dict[str, Any], out: _Out) -> WriterRecorder:
    values["secret_names"] = tuple(values["secret_names"])
    agentlog_log = logging.getLogger("agentlog")
    agentlog_log.propagate = False
    agentlog_log.setLevel(logging.DEBUG)
    agentlog_log.addHandler(logging.NullHandler())  # the host already said what settings imply
    rec = WriterRecorder(Settings(**values), out)
    agentlog_log.addHandler(_Forward(out))
    return rec


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _gil.stop_sharing()
    rfd, wfd = _private_pipes()
    out = _Out(wfd)
    rec, left = _serve(rfd, out)
    if rec is None:
        return 0
    rec.close(rec.settings.shutdown_timeout if left is None else left)
    out.reply(("closed", rec.progress, rec.own_stats()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
