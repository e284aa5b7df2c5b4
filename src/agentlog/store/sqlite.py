"""Opening SQLite files the way agentlog needs them, for writing and for reading.

Writers: WAL mode (retried: switching to WAL needs a moment of exclusive access
and can meet "database is locked" when several processes start at once),
``busy_timeout``, ``synchronous=NORMAL`` (or FULL with ``fsync=True``), and
autocommit mode so transactions are explicit ``BEGIN IMMEDIATE`` ones.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import StoreError
from .migrate import check_not_newer, migrate

__all__ = ["connect_reader", "connect_writer"]

BUSY_TIMEOUT_MS = 10_000


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


def _set_wal(conn: sqlite3.Connection, deadline: float) -> None:
    delay = 0.005
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"could not switch to WAL mode (journal_mode is {mode!r})")
            return
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


def _bind_none_cheaply() -> None:
    """Let ``sqlite3`` bind ``None`` without raising two exceptions per value.

    CPython 3.11's ``sqlite3`` passes every parameter that is not an exact int,
    float, str or bytearray through its adapter protocol; for ``None`` that means
    two failed attribute lookups (``__adapt__``, ``__conform__``), each building
    a formatted AttributeError: ~0.5 µs per NULL, most of a derived row's binding
    cost, on the writer thread and under the GIL. A registered adapter is found
    first; ``{}.get`` is a C callable that returns None for any key, so NULL is
    still bound, as before. The registry is process-wide: the adapter changes no
    value for anyone, and one the host registered for ``NoneType`` is kept.
    """
    key = (type(None), sqlite3.PrepareProtocol)
    if key not in sqlite3.adapters:
        null: Callable[[None], None] = {}.get  # type: ignore[assignment]
        sqlite3.register_adapter(type(None), null)


def connect_writer(path: Path, *, fsync: bool = False) -> sqlite3.Connection:
    """Open (creating if needed) and migrate a store for writing."""
    _bind_none_cheaply()
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not an agentlog database file")
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        check_not_newer(conn, str(path))  # before anything changes the file
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        _set_wal(conn, deadline)
        conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys=OFF")
        while True:
            try:
                migrate(conn, str(path))
                break
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
    except BaseException:
        conn.close()
        raise
    return conn


def connect_reader(path: Path) -> sqlite3.Connection:
    """Open a store for reading; migrate it first only if it is behind and writable."""
    if not path.exists():
        raise StoreError(f"No agentlog database at {path} (record something first, e.g.: agentlog demo)")
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not an agentlog database file")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        from .migrate import latest_version

        version = check_not_newer(conn, str(path))
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a readable agentlog database: {exc}") from exc
    if version < latest_version():
        conn.close()
        try:
            writer = connect_writer(path)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} needs a schema upgrade but cannot be written: {exc}") from exc
        writer.close()
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.row_factory = sqlite3.Row
    return conn
