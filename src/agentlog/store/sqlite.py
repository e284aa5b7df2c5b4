"""Opening SQLite files the way agentlog needs them, for writing and for reading.

Writers: WAL mode (retried: switching to WAL needs a moment of exclusive access
and can meet "database is locked" when several processes start at once),
``busy_timeout``, ``synchronous=NORMAL`` (or FULL with ``fsync=True``), and
autocommit mode so transactions are explicit ``BEGIN IMMEDIATE`` ones.

Before a writer changes anything, :func:`check_usable` looks at an existing file
through a *read-only* connection (which never writes, checkpoints or deletes a
WAL): a damaged file, another program's database, a stray WAL that turns the
file into something else, a directory or a newer schema raise
:class:`~agentlog.errors.UnusableStoreError`, and the file stays as it was.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import Any

from ..errors import StoreError, UnusableStoreError
from .migrate import check_not_newer, migrate

__all__ = ["backup", "check_usable", "connect_reader", "connect_writer", "fallback_path", "is_damage"]

BUSY_TIMEOUT_MS = 10_000
#: WAL bounds (see SQLiteSink._bound_wal): a WAL is truncated to JOURNAL_SIZE_LIMIT when it
#: is rewound; past WAL_RESTART_BYTES the writer forces the rewind, checking once a second.
JOURNAL_SIZE_LIMIT = 8 * 1024 * 1024
WAL_RESTART_BYTES = 16 * 1024 * 1024
WAL_RESTART_WAIT_MS = 50
WAL_CHECK_EVERY = 1.0
#: Files up to this size get a full ``PRAGMA quick_check`` before the first write
#: (tens of milliseconds); larger ones only the cheap checks, since a writer opens
#: its file at every process start.
QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024
_DAMAGE = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


def is_damage(exc: BaseException) -> bool:
    """True for errors that say the file itself is bad (not locked, full or read-only)."""
    return isinstance(exc, sqlite3.DatabaseError) and getattr(exc, "sqlite_errorname", "") in _DAMAGE


def fallback_path(path: Path) -> Path:
    """Where events go when ``path`` is unusable: ``name.fallback.db`` beside it."""
    return path.with_name(f"{path.stem}.fallback{path.suffix or '.db'}")


def _open_ro(path: Path) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.OperationalError as exc:
        # A WAL-mode file needs a -shm beside it even to be read. In a directory we
        # may not write, and with no -wal holding anything newer, the file alone is
        # the whole database: read it as immutable.
        if not getattr(exc, "sqlite_errorname", "").startswith("SQLITE_READONLY") or Path(f"{path}-wal").exists():
            conn.close()
            raise
        conn.close()
        conn = sqlite3.connect(f"{uri}&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
    return conn


def check_usable(path: Path, *, deep: bool = True) -> None:
    """Raise :class:`UnusableStoreError` if agentlog must not write into ``path``.

    A missing or empty file is fine (it will be created). Locked or unreadable
    files raise ``sqlite3.OperationalError`` as usual, to be retried.
    ``deep`` adds ``PRAGMA quick_check`` for files up to ``QUICK_CHECK_MAX_BYTES``.
    """
    if path.is_dir():
        raise UnusableStoreError(f"{path} is a directory, not an agentlog database file")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0 and not Path(f"{path}-wal").exists():
        return
    try:
        conn = _open_ro(path)
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        raise UnusableStoreError(f"{path} is damaged or not an SQLite database ({exc})") from exc
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        check_not_newer(conn, str(path))
        if names and "al_migrations" not in names:
            raise UnusableStoreError(
                f"{path} is another program's SQLite database (tables: {', '.join(sorted(names)[:5])})")
        if deep and size <= QUICK_CHECK_MAX_BYTES:
            problems = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise UnusableStoreError(f"{path} is damaged: {'; '.join(problems)}")
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc):
            raise
        raise UnusableStoreError(f"{path} is damaged or not an SQLite database ({exc})") from exc
    finally:
        conn.close()


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


def connect_writer(path: Path, *, fsync: bool = False, deep_check: bool = True) -> sqlite3.Connection:
    """Open (creating if needed) and migrate a store for writing.

    Raises :class:`UnusableStoreError` (the file untouched) if :func:`check_usable` refuses it.
    """
    _bind_none_cheaply()
    check_usable(path, deep=deep_check)
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        check_not_newer(conn, str(path))  # before anything changes the file
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        _set_wal(conn, deadline)
        conn.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
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
        conn = _open_ro(path)
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
        conn = _open_ro(path)
    conn.row_factory = sqlite3.Row
    return conn


def backup(path: Path, dest: Path) -> Path:
    """Write a consistent, compacted copy of the store at ``path`` to ``dest``.

    Uses ``VACUUM INTO`` on a read-only connection, so it is safe while writers
    are running (it copies one snapshot) and never changes the original.
    """
    if dest.exists():
        raise StoreError(f"{dest} already exists; choose a new file name for the backup")
    conn = connect_reader(path)
    try:
        conn.execute("VACUUM INTO ?", (str(dest),))
    except sqlite3.Error as exc:
        raise StoreError(f"could not back up {path} to {dest}: {exc}") from exc
    finally:
        conn.close()
    return dest


# -- many rows per statement ------------------------------------------------------------
# Python's sqlite3 releases the GIL around every step, and executemany steps once per
# row. While the agent's thread runs Python, the writer must win the GIL back after
# each row, and every such hand-over costs the agent a forced switch (measured: a few
# rows per LLM call turned ~0.1 ms of writer work into ~0.4 ms added to the call).
# A multi-row INSERT steps once for up to _CHUNK rows. Row counts are split into
# powers of two so each statement is prepared in at most 7 shapes (sqlite3 caches 128).
_CHUNK = 64
_MULTI: dict[tuple[str, int], str] = {}


def _multi_sql(stmt: str, n: int) -> str:
    sql = _MULTI.get((stmt, n))
    if sql is None:
        start = stmt.index(" VALUES (") + len(" VALUES ")
        end = _group_end(stmt, start)
        group = stmt[start:end]
        sql = _MULTI[(stmt, n)] = stmt[:start] + ",".join([group] * n) + stmt[end:]
    return sql


def _group_end(sql: str, start: int) -> int:
    """The index just past the ")" that closes the "(" at ``start`` (the group may hold calls)."""
    depth = 0
    for i in range(start, len(sql)):
        depth += (sql[i] == "(") - (sql[i] == ")")
        if depth == 0:
            return i + 1
    raise ValueError(f"unbalanced VALUES group in {sql!r}")


#: Bound in place of ``None``: SQLite stores a NaN double as NULL (``sqlite3_bind_double``),
#: and ``sqlite3`` binds an exact float directly, while a ``None`` goes through its adapter
#: lookup (a key tuple built, hashed and looked up per value, ~1.2k instructions, even with
#: the adapter of :func:`_bind_none_cheaply`). Event and span rows are about half NULLs.
_NULL = float("nan")


def insert_rows(conn: sqlite3.Connection, stmt: str, rows: list[tuple[Any, ...]]) -> None:
    """``executemany(stmt, rows)`` in multi-row statements of 64, 32, ..., 1 rows (NULLs bound as NaN)."""
    i, total = 0, len(rows)
    size = _CHUNK
    null = _NULL
    while i < total:
        while size > total - i:
            size >>= 1
        conn.execute(_multi_sql(stmt, size), [null if v is None else v for v in chain.from_iterable(rows[i:i + size])])
        i += size
