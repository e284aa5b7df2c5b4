"""``agentlog doctor``: is a store intact, and did recording lose anything?

Everything here reads through a read-only connection, so the doctor can look at
a damaged or foreign file without changing it (it never migrates, checkpoints or
deletes a WAL). The findings, in the order they are checked:

* the file: present, a file, an SQLite database, agentlog's, schema version;
* ``PRAGMA integrity_check`` (the full check: this is the one place that pays for it);
* the WAL: its size (a large one means checkpoints are being starved);
* the recorder's own counters from the ``writers`` view: written, dropped by
  reason, still queued, and writers that never closed (a crash or SIGKILL);
* fallback files beside it (``<name>.fallback*.db``), where events went while
  the file was unusable.

The verdict is the worst finding: ``ok`` (exit 0), ``warning`` (exit 1: data was
dropped or went elsewhere) or ``error`` (exit 2: the file cannot be used).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .store.migrate import current_version, latest_version

__all__ = ["Finding", "Report", "diagnose"]

_LEVELS = ("ok", "warning", "error")
WAL_WARN_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class Finding:
    level: str  # ok | warning | error
    check: str
    message: str


@dataclass
class Report:
    """What :func:`diagnose` found; ``verdict`` and ``exit_code`` summarise it."""

    path: Path
    findings: list[Finding] = field(default_factory=list)
    schema_version: int | None = None
    wal_bytes: int = 0
    written: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    queued: int = 0
    writers: int = 0
    fallbacks: dict[str, int | None] = field(default_factory=dict)  # path -> events (None: unreadable)

    def add(self, level: str, check: str, message: str) -> None:
        self.findings.append(Finding(level, check, message))

    @property
    def verdict(self) -> str:
        return max((f.level for f in self.findings), key=_LEVELS.index, default="ok")

    @property
    def exit_code(self) -> int:
        return _LEVELS.index(self.verdict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path), "verdict": self.verdict, "schema_version": self.schema_version,
            "wal_bytes": self.wal_bytes, "written": self.written, "dropped": self.dropped,
            "queued": self.queued, "writers": self.writers, "fallbacks": self.fallbacks,
            "findings": [f.__dict__ for f in self.findings],
        }


def diagnose(path: str | os.PathLike[str]) -> Report:
    """Examine the store at ``path`` without modifying it."""
    report = Report(Path(path))
    p = report.path
    _find_fallbacks(report)
    if not p.exists():
        report.add("error", "file", f"{p} does not exist")
        return report
    if p.is_dir():
        report.add("error", "file", f"{p} is a directory, not an agentlog database file")
        return report
    wal = Path(f"{p}-wal")
    report.wal_bytes = wal.stat().st_size if wal.exists() else 0
    try:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        report.add("error", "file", f"{p} cannot be opened: {exc}")
        return report
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        if _check_schema(report, conn) and _check_integrity(report, conn):
            _check_wal(report)
            _check_counters(report, conn)
    except sqlite3.DatabaseError as exc:
        report.add("error", "file", f"{p} is damaged or not an SQLite database: {exc}")
    finally:
        conn.close()
    return report


def _check_schema(report: Report, conn: sqlite3.Connection) -> bool:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "al_migrations" not in tables:
        report.add("error", "schema", f"not an agentlog database (tables: {', '.join(sorted(tables)[:5])})")
        return False
    version = report.schema_version = current_version(conn)
    known = latest_version()
    if version > known:
        report.add("error", "schema", f"schema version {version} is newer than this agentlog ({known});"
                   " upgrade agentlog to read it")
        return False
    if version == 0:
        report.add("warning", "schema", "empty database: nothing was recorded yet")
        return False
    level = "ok" if version == known else "warning"
    report.add(level, "schema", f"schema version {version}" + ("" if version == known else
               f" (this agentlog has {known}; the next writer will migrate it)"))
    return True


def _check_integrity(report: Report, conn: sqlite3.Connection) -> bool:
    problems = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)")]
    if problems == ["ok"]:
        report.add("ok", "integrity", "integrity_check: ok")
        return True
    report.add("error", "integrity", "integrity_check failed: " + "; ".join(problems[:5]))
    return False


def _check_wal(report: Report) -> None:
    size = report.wal_bytes
    if size > WAL_WARN_BYTES:
        report.add("warning", "wal", f"WAL is {size / 2**20:.0f} MiB: a long-lived reader may be starving"
                   " checkpoints")
    else:
        report.add("ok", "wal", f"WAL {size / 1024:.0f} KiB")


def _check_counters(report: Report, conn: sqlite3.Connection) -> None:
    rows = conn.execute("SELECT writer_id, host, pid, written, queued, stats FROM al_writers").fetchall()
    report.writers = len(rows)
    unclosed: list[str] = []
    for _writer, host, pid, written, queued, raw in rows:
        report.written += int(written or 0)
        stats = _loads(raw)
        for reason, n in (stats.get("dropped") or {}).items():
            if n:
                report.dropped[reason] = report.dropped.get(reason, 0) + int(n)
        if not stats.get("closed") and not _alive(host, pid):
            report.queued += int(queued or 0)
            unclosed.append(f"pid {pid}" + (f" on {host}" if host != socket.gethostname() else ""))
    total = sum(report.dropped.values())
    report.add("ok", "written", f"{report.written} event(s) written by {report.writers} writer(s)")
    if total:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(report.dropped.items()))
        report.add("warning", "dropped", f"{total} event(s) dropped ({reasons})")
    else:
        report.add("ok", "dropped", "no event dropped")
    if unclosed:
        report.add("warning", "unclosed", f"{len(unclosed)} writer(s) ended without closing ({', '.join(unclosed[:5])}):"
                   f" a crash or kill; {report.queued} event(s) were still queued at their last report")


def _find_fallbacks(report: Report) -> None:
    p = report.path
    for fb in sorted(p.parent.glob(f"{p.stem}.fallback*{p.suffix or '.db'}")):
        try:
            conn = sqlite3.connect(f"{fb.resolve().as_uri()}?mode=ro", uri=True)
            try:
                report.fallbacks[str(fb)] = int(conn.execute("SELECT count(*) FROM al_events").fetchone()[0])
            finally:
                conn.close()
        except sqlite3.Error:
            report.fallbacks[str(fb)] = None
    for fb_path, n in report.fallbacks.items():
        count = "unreadable" if n is None else f"{n} event(s)"
        report.add("warning", "fallback", f"fallback file {fb_path} ({count}): events went there while"
                   f" {p.name} could not be written")


def _loads(raw: Any) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _alive(host: Any, pid: Any) -> bool:
    """Whether a writer may still be running (only knowable on this host)."""
    if host != socket.gethostname():
        return True  # another machine: assume it may be
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
