"""Append-only, named schema migrations kept as real ``.sql`` files.

``migrations/<dialect>/NNNN_name.sql`` are applied in order, each in one
``BEGIN IMMEDIATE`` transaction together with its row in ``al_migrations``, so
two processes opening a new file at once apply each migration exactly once.
A file whose newest migration is unknown to this version is refused with
:class:`~agentlog.errors.SchemaVersionError` before anything is changed.
A released migration is never edited: add a new file instead.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from importlib import resources

from ..errors import SchemaVersionError, StoreError

__all__ = ["Migration", "current_version", "load_migrations", "migrate"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str = "sqlite") -> list[Migration]:
    folder = resources.files("agentlog.store") / "migrations" / dialect
    found = []
    for entry in folder.iterdir():
        m = _NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for expected, mig in enumerate(found, start=1):
        if mig.version != expected:
            raise StoreError(f"migration numbering has a gap at {mig.version:04d}_{mig.name}.sql")
    return found


def latest_version(dialect: str = "sqlite") -> int:
    return len(load_migrations(dialect))


def current_version(conn: sqlite3.Connection) -> int:
    """The schema version of an open database (0 for a new, empty one)."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'al_migrations'"
    ).fetchone()
    if not has_table:
        return 0
    row = conn.execute("SELECT max(version) FROM al_migrations").fetchone()
    return int(row[0] or 0)


def check_not_newer(conn: sqlite3.Connection, where: str) -> int:
    version = current_version(conn)
    known = latest_version()
    if version > known:
        raise SchemaVersionError(
            f"{where} has schema version {version}, newer than this agentlog understands "
            f"({known}); it was left unchanged. Upgrade agentlog (pip install -U agentlog) to use it."
        )
    return version


def _only_comments(sql: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in sql.splitlines())


def _statements(sql: str) -> list[str]:
    """Split a script into statements with SQLite's own notion of completeness."""
    out: list[str] = []
    buf = ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            stmt = buf.strip()
            if stmt and not _only_comments(stmt):
                out.append(stmt)
            buf = ""
    if buf.strip() and not _only_comments(buf):
        raise StoreError(f"incomplete SQL statement at the end of a migration: {buf.strip()[:80]!r}")
    return out


def migrate(conn: sqlite3.Connection, where: str) -> int:
    """Bring the database up to date; return the version it is at.

    ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    migrations = load_migrations()
    if check_not_newer(conn, where) == len(migrations):
        return len(migrations)
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS al_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        )
        version = check_not_newer(conn, where)  # again, now under the write lock
        for mig in migrations[version:]:
            for stmt in _statements(mig.sql):
                conn.execute(stmt)
            conn.execute(
                "INSERT INTO al_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (mig.version, mig.name, time.time_ns() // 1000),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return len(migrations)
