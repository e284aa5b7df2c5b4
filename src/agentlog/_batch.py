"""The one background writer: drains the recorder's queue into sinks, in batches.

Everything expensive happens here, never on the caller's thread: building
:class:`Event` values, minting event ids, consolidating stream deltas, redacting
secrets (first, before processors and sinks; see :mod:`agentlog._secrets`), JSON
encoding, running processors, and the sinks' I/O. The loops hand the GIL over every
~0.5 ms while other threads take it, up to 2 ms when none does (:mod:`agentlog._gil`), so
the host's threads and event loops are not kept waiting.

A batch closes when it reaches ``batch_size`` events, when the queue runs dry,
or at a flush marker. The thread sleeps ``flush_interval`` between drains unless
a producer wakes it (at ``batch_size`` queued events, a flush, or a ``sync``
publish). Each sink sits in a :class:`SinkSlot` that keeps failed batches and
retries them with backoff, in order, so one broken sink neither loses data at
the first error nor holds up the others.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._gil import share_gil
from ._wake import Flag, keep_signals_off_this_thread
from .events import Event
from .processors import MEDIA_MIN_CHARS, consolidate_deltas, redact_deltas
from .processors import strip_media_value as _strip_media

if TYPE_CHECKING:
    from .recorder import Recorder
    from .sinks.base import Sink

__all__ = ["FORK_WAIT", "FlushMarker", "SinkSlot", "Waiter", "Worker", "WriterLoop", "io_lock", "take_batch"]

log = logging.getLogger("agentlog")

_MEDIA_EVENTS = frozenset({"llm.started", "llm.finished"})
# What inline media looks like in orjson's output: data URLs (and Anthropic's "type":"base64"
# sources), and the keys that carry base64. Substring tests: a regex alternation costs 2-3x
# more, on every LLM payload, growing with the conversation.
_MEDIA_HINTS = (b"base64", b'"data":"', b"b64_json", b'"audio":"')
_BACKOFF_MIN = 0.05
_BACKOFF_MAX = 2.0
_LOG_EVERY = 60.0
#: The longest a stream's last chunks are held back while they may begin a secret.
HOLD_SECONDS = 1.0


# Held by the writer while a sink does I/O, and taken by os.fork() (recorder.py) for at most
# FORK_WAIT seconds: a child forked while another thread is inside SQLite could inherit one
# of SQLite's process-wide mutexes locked, and hang at its first query.
io_lock = threading.Lock()
FORK_WAIT = 1.0


def _may_hold_media(data: bytes) -> bool:
    b64, data_url, b64_json, audio = _MEDIA_HINTS  # no generator: this runs for every LLM payload
    return b64 in data or data_url in data or b64_json in data or audio in data


#: Kept from a payload that a failed processor masks: the span's outcome and its numbers.
_MASK_KEEP = frozenset({"status", "duration_ms", "cost_usd", "ttft_ms", "usage"})


def masked_event(ev: Event, proc: Any) -> Event:
    """``ev`` with its payload replaced, except outcome and numbers: a failed hook fails closed.

    The event itself is kept (a span still closes, a run still ends) so the record
    shows that something happened and what the hook did not get to see.
    """
    keep = {k: v for k, v in ev.payload.items() if k in _MASK_KEEP and (
        k != "usage" or (isinstance(v, dict) and all(isinstance(n, (int, float, type(None))) for n in v.values())))}
    if not isinstance(keep.get("status", ""), str) or len(keep.get("status", "")) > 20:
        keep.pop("status")
    for k in ("duration_ms", "cost_usd", "ttft_ms"):
        if k in keep and not isinstance(keep[k], (int, float, type(None))):
            keep.pop(k)
    name = getattr(proc, "__qualname__", None) or type(proc).__name__
    return Event(ev.type, ev.event_id, ev.ts, ev.seq, ev.run_id, ev.turn_id, ev.span_id, ev.parent_span_id,
                 {**keep, "$redacted": "processor_failed", "processor": str(name)[:200]})


class FlushMarker:
    """Put in the queue by ``flush()``; done once everything before it is handled."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class Waiter:
    """Carried by a ``sync`` publish; set once its batch is committed (or failed)."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class SinkSlot:
    """One sink plus the batches it failed to take, retried in order with backoff."""

    def __init__(self, sink: Sink, max_pending: int, on_drop: Callable[[str, int], None]) -> None:
        self.sink = sink
        self.name = getattr(sink, "name", type(sink).__name__)
        self.pending: deque[list[Event]] = deque()
        self.pending_count = 0
        self.max_pending = max_pending
        self.written = 0
        self.failed = 0  # events given up on
        self.errors = 0  # failed write attempts
        self.last_error: str | None = None
        self._on_drop = on_drop
        self._backoff = _BACKOFF_MIN
        self._next_retry = 0.0
        self._last_logged = -_LOG_EVERY
        self._unlogged = 0

    @property
    def healthy(self) -> bool:
        return not self.pending

    def deliver(self, events: list[Event]) -> bool:
        """Write ``events`` (after any pending ones). True if all is written now."""
        if self.pending:
            self._keep(events)
            return self.retry()
        if self._write(events):
            return True
        self._keep(events)
        return False

    def retry(self, force: bool = False) -> bool:
        """Try the pending batches if their backoff has passed. True if none are left."""
        if not self.pending:
            return True
        if not force and time.monotonic() < self._next_retry:
            return False
        while self.pending:
            if not self._write(self.pending[0]):
                return False
            self.pending_count -= len(self.pending.popleft())
        return True

    def give_up(self) -> int:
        """Count every pending event as lost (at shutdown); return how many."""
        lost = self.pending_count
        if lost:
            self.failed += lost
            self._on_drop("sink_failed", lost)
            log.error("agentlog: sink %s: %d event(s) could not be written before shutdown", self.name, lost)
        self.pending.clear()
        self.pending_count = 0
        return lost

    def _keep(self, events: list[Event]) -> None:
        if not events:
            return
        if self.pending_count + len(events) > self.max_pending:
            # Bounded memory: the newest batch is the one dropped, as with a full queue.
            self.failed += len(events)
            self._on_drop("sink_failed", len(events))
            return
        self.pending.append(events)
        self.pending_count += len(events)

    def _write(self, events: Sequence[Event]) -> bool:
        try:
            with io_lock:
                self.sink.write(events)
        except Exception as exc:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._next_retry = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
            self._log_failure(exc)
            return False
        rejected = getattr(self.sink, "take_rejected", None)
        bad = rejected() if callable(rejected) else 0
        if bad:
            self.failed += bad
            self._on_drop("sink_rejected", bad)
        self.written += len(events) - bad
        if self._backoff != _BACKOFF_MIN:
            log.warning("agentlog: sink %s recovered after %d failed attempt(s)", self.name, self.errors)
        self._backoff = _BACKOFF_MIN
        return True

    def _log_failure(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_logged < _LOG_EVERY:
            self._unlogged += 1
            return
        more = f" ({self._unlogged} more failure(s) since the last report)" if self._unlogged else ""
        self._unlogged = 0
        self._last_logged = now
        log.error(
            "agentlog: sink %s failed to write; keeping the batch and retrying%s:\n%s",
            self.name,
            more,
            "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip(),
        )


Item = tuple[Any, ...]  # (type, payload, ns, seq, run, turn, span, parent, sinks, waiter)


def take_batch(q: deque[Any], size: int) -> tuple[list[Item], FlushMarker | None]:
    """Up to ``size`` items from the queue's head, stopping after a flush marker (returned apart)."""
    items: list[Item] = []
    while q and len(items) < size:
        it = q.popleft()
        if type(it) is FlushMarker:
            return items, it
        items.append(it)
    return items, None


class WriterLoop:
    """The writer thread's loop, shared by :class:`Worker` and the writer process's forwarder.

    Sleeps ``flush_interval`` unless woken, drains, and at ``stop`` drains once more and
    finishes. Subclasses provide ``rec``, ``stop``, ``flush_interval``, ``drain`` and ``finish``.
    """

    rec: Recorder
    stop: Flag
    flush_interval: float

    def drain(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        keep_signals_off_this_thread()
        wake = self.rec._wake
        while not self.stop.is_set():
            wake.wait(self.flush_interval)
            wake.clear()
            self._guarded(self.drain)
        self._guarded(self.drain)
        self._guarded(self.finish)

    def _guarded(self, step: Callable[[], None]) -> None:
        # The writer must never die: an internal error is logged and counted,
        # and the loop goes on with the next batch.
        try:
            step()
        except Exception:
            self.rec._note_internal_error()
            log.exception("agentlog: internal error in the writer thread (the recorder continues)")


class Worker(WriterLoop):
    """Owns the writer thread of one :class:`~agentlog.recorder.Recorder`."""

    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder
        s = recorder.settings
        self.batch_size = s.batch_size
        self.flush_interval = s.flush_interval
        self.keep_deltas = s.keep_deltas
        self.max_event_bytes = s.max_event_bytes
        self.max_string_bytes = s.max_string_bytes
        self.strip_media = not s.keep_media
        self.redact = s.redact_secrets
        self.redacted = 0  # events in which a secret was replaced (read by stats())
        self.masked = 0  # events whose payload was masked because a processor failed
        # Stream chunks that may end in the first part of a secret, written with the next batch.
        self.held: list[tuple[Event, Any]] = []
        self.held_since = 0.0
        self.stop = Flag()  # lock-free, as the wake-up (_wake.py)
        self.in_flight: list[Item] = []  # the batch being processed (counted if close() gives up)
        self.thread = threading.Thread(target=self._run, name="agentlog-writer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def drain(self) -> None:
        q = self.rec._queue
        size = self.batch_size
        while True:
            # Stream chunks still gathered by their callers, before every batch: a writer that
            # is behind stays in this loop, and the streams tracked meanwhile (each holding its
            # whole request) would otherwise pile up, and their chunks wait, until it catches up.
            self.rec._flush_streams()
            if not q:
                break
            items, marker = take_batch(q, size)
            # A flush or the shutdown writes held stream chunks too: flush() promises all.
            release = marker is not None or self.stop.is_set()
            if items or (release and self.held):
                self._process_guarded(items, release)
            if marker is not None:
                marker.ok = self.retry_all(force=True)
                marker.done.set()
        if self.held and (self.stop.is_set() or time.monotonic() - self.held_since >= HOLD_SECONDS):
            self._process_guarded([], release=True)  # a stream that stalled: write what it sent
        self.retry_all()

    def _process_guarded(self, items: list[Item], release: bool) -> None:
        self.in_flight = items
        try:
            self.process(items, release)
        except Exception:
            self._lose(items, "internal_error")
            raise
        finally:
            self.in_flight = []

    def retry_all(self, force: bool = False) -> bool:
        ok = True
        for slot in self.rec._all_slots():
            ok = slot.retry(force) and ok
        return ok

    def finish(self) -> None:
        """At close: retry failing sinks until the shutdown deadline, then count the rest."""
        rec = self.rec
        end = rec._close_deadline or time.monotonic() + rec.settings.shutdown_timeout
        deadline = end - min(0.5, rec.settings.shutdown_timeout / 4)  # room to store the final counters
        slots = rec._all_slots()
        while any(s.pending for s in slots) and time.monotonic() < deadline:
            if self.retry_all(force=True):
                break
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        for slot in slots:
            slot.give_up()
        self.push_stats(final=True)
        for slot in slots:
            try:
                with io_lock:
                    slot.sink.flush(max(0.0, deadline - time.monotonic()))
                    slot.sink.close()
            except Exception:
                log.exception("agentlog: sink %s failed to close", slot.name)

    # -- one batch -----------------------------------------------------------------
    def process(self, items: list[Item], release: bool = True) -> None:
        rec = self.rec
        make_id = rec._ids
        held, self.held = self.held, []
        events: list[Event] = [ev for ev, _ in held]
        extra: list[tuple[Any, ...]] = [sinks for _, sinks in held]
        waiters: list[Waiter] = []
        add_event, add_sinks = events.append, extra.append
        for n, (typ, payload, ns, seq, run_id, turn_id, span_id, parent, sinks, waiter) in enumerate(items):
            if not n & 15:
                share_gil()
            if type(payload) is not dict:
                payload = {} if payload is None else {"value": payload}
            add_event(Event(typ if type(typ) is str else str(typ), make_id(ns), ns // 1000, seq, run_id,
                            turn_id, span_id, parent, payload))
            add_sinks(sinks)
            if waiter is not None:
                waiters.append(waiter)
        if not self.keep_deltas:
            events, extra = consolidate_deltas(events, extra)
        if self.redact:
            # Before anything else sees the batch. No holding in sync mode: its waiters
            # are told "committed" below, and a held chunk would not be.
            events, extra, self.held = redact_deltas(events, extra, hold=not (release or rec._sync))
            if self.held and not held:
                self.held_since = time.monotonic()
        events, extra = self._encode(events, extra)
        if rec._processors:
            # Processors see redacted, JSON-safe payloads; what they return is encoded
            # (and redacted) again.
            events, extra = self._run_processors(events, extra)
            for ev in events:
                ev._json = None
            events, extra = self._encode(events, extra)
        self.push_stats()
        ok = True
        for slot in rec._slots:
            ok = slot.deliver(events) and ok
        if any(extra):
            self._deliver_extra(events, extra)
        for w in waiters:
            w.ok = ok
            w.done.set()

    def _run_processors(
        self, events: list[Event], extra: list[tuple[Any, ...]]
    ) -> tuple[list[Event], list[tuple[Any, ...]]]:
        processors = self.rec._processors
        if not processors:
            return events, extra
        out_e: list[Event] = []
        out_x: list[tuple[Any, ...]] = []
        for ev, sinks in zip(events, extra, strict=True):
            current: Event | None = ev
            for proc in processors:
                assert current is not None
                before = current
                try:
                    current = proc(current)
                except Exception:
                    # Fail closed: a broken redaction hook must not let data through.
                    self.masked += 1
                    log.exception("agentlog: processor %r failed; the %s event's payload was masked",
                                  proc, before.type)
                    current = masked_event(before, proc)
                if current is None:
                    break
            if current is not None:
                out_e.append(current)
                out_x.append(sinks)
        return out_e, out_x

    def _encode(
        self, events: list[Event], extra: list[tuple[Any, ...]]
    ) -> tuple[list[Event], list[tuple[Any, ...]]]:
        import orjson  # loaded with the first batch

        from ._encode import EncodeError, encode_payload
        from ._secrets import redact_json

        max_bytes, max_string = self.max_event_bytes, self.max_string_bytes
        strip, redact = self.strip_media, self.redact
        dropped: list[int] = []
        for n, ev in enumerate(events):
            share_gil()  # every event: one can take a while (a long conversation resent)
            try:
                data, stored = encode_payload(ev.payload, max_bytes, max_string)
            except EncodeError as exc:
                self.rec._count_drop(str(exc.args[0]))
                log.warning("agentlog: dropped a %s event: payload %s", ev.type, exc.args[0])
                dropped.append(n)
                continue
            if strip and len(data) > MEDIA_MIN_CHARS and ev.type in _MEDIA_EVENTS and _may_hold_media(data):
                # Only payloads that may carry inline media are walked (a substring test in C first).
                stripped = _strip_media(stored)
                if stripped is not stored:
                    data, stored = encode_payload(stripped, max_bytes, max_string)
            if redact:
                clean = redact_json(data)
                if clean is not None:
                    data, stored = clean, orjson.loads(clean)
                    self.redacted += 1
            ev.payload = stored
            ev._json = data
        if not dropped:
            return events, extra
        gone = set(dropped)
        keep = [i for i in range(len(events)) if i not in gone]
        return [events[i] for i in keep], [extra[i] for i in keep]

    def _deliver_extra(self, events: list[Event], extra: list[tuple[Any, ...]]) -> None:
        by_sink: dict[int, tuple[Sink, list[Event]]] = {}
        for ev, sinks in zip(events, extra, strict=True):
            for sink in sinks:
                by_sink.setdefault(id(sink), (sink, []))[1].append(ev)
        for sink, evs in by_sink.values():
            self.rec._extra_slot(sink).deliver(evs)

    def push_stats(self, final: bool = False) -> None:
        rec = self.rec
        stats = rec.stats()
        if not final and stats == rec._last_pushed_stats:
            return
        rec._last_pushed_stats = stats
        for slot in rec._slots:
            note = getattr(slot.sink, "note_stats", None)
            if callable(note):
                note(stats)
                if final and slot.healthy:
                    try:
                        with io_lock:
                            slot.sink.write([])  # stats only
                    except Exception:
                        log.exception("agentlog: could not store final counters in %s", slot.name)

    def _lose(self, items: list[Item], reason: str) -> None:
        self.rec._count_drop(reason, len(items))
        for it in items:
            waiter = it[9]
            if waiter is not None:
                waiter.done.set()
