"""The pipe between the host's forwarder and the writer process (:mod:`agentlog._procwriter`).

A frame is a fixed header (:data:`HEADER`: kind, body length, item count, waiter id) and a
pickled body. Items cross the pipe as the recorder queued them, pickled by :class:`Pickler`:
exact ``dict``/``list``/``tuple``/``str``/``int``/``float``/``bytes``/``set``/``None``
values pickle at C speed (``reducer_override`` is never called for them), and anything else
is turned into what the JSON encoder would have made of it (:func:`plain`), so the writer
process never needs the host's classes. Imported only when a writer process is used.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from typing import Any

from ._encode import sanitize

__all__ = ["HEADER", "Pickler", "dumps", "plain", "read_frames", "write_all"]

#: kind (1 byte), body length, number of items, waiter id (-1: none).
HEADER = struct.Struct("<cIIq")

# Host -> writer process.
SETTINGS = b"S"  # body: (the settings as a dict, the host's counters)
ITEMS = b"I"  # body: a list of item tuples; count and waiter id in the header
FLUSH = b"F"  # waiter id: a flush marker
DRAIN_END = b"E"  # body: the host's counters (or None if unchanged): wake the writer
CLOSE = b"C"  # body: (host counters, seconds left)
# Writer process -> host: one kind, the body says what it is (see _procwriter.Reader).
REPLY = b"R"


def _value(x: Any) -> Any:
    """What an object not made of plain data was replaced with (see :func:`plain`)."""
    return x


def plain(obj: Any, max_bytes: int | None = None) -> Any:
    """``obj`` as plain data, the way the JSON encoder (:func:`agentlog._encode.sanitize`) sees it.

    Subclasses of ``str``/``int``/``float`` (enums among them) keep their value as the exact
    type: ``sanitize`` would hand them back unchanged, and pickling them again would ask for
    the host's class.
    """
    if isinstance(obj, str):
        return str.__str__(obj)
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int.__int__(obj)
    if isinstance(obj, float):
        return float.__float__(obj)
    return sanitize(obj, None, max_bytes)


class Pickler(pickle.Pickler):
    """Pickles plain data as is and everything else as its plain-data form."""

    max_bytes: int | None = None

    def reducer_override(self, obj: Any) -> Any:
        return _value, (plain(obj, self.max_bytes),)


def dumps(value: Any, max_bytes: int | None = None) -> bytes:
    buf = io.BytesIO()
    p = Pickler(buf, protocol=5)
    p.max_bytes = max_bytes
    p.dump(value)
    return buf.getvalue()


def frame(kind: bytes, body: bytes, count: int = 0, waiter: int = -1) -> bytes:
    return HEADER.pack(kind, len(body), count, waiter) + body


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` (a pipe may take a large write in parts); raises OSError."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_frames(buf: bytearray) -> tuple[list[tuple[bytes, bytes, int, int]], int]:
    """The complete frames at the start of ``buf`` and how many bytes they took."""
    out: list[tuple[bytes, bytes, int, int]] = []
    pos, size, end = 0, HEADER.size, len(buf)
    while end - pos >= size:
        kind, length, count, waiter = HEADER.unpack_from(buf, pos)
        if end - pos - size < length:
            break
        out.append((kind, bytes(buf[pos + size:pos + size + length]), count, waiter))
        pos += size + length
    return out, pos
