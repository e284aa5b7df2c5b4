"""Damaged or foreign files where the store should be.

For each kind of damage the host records as usual. Pass: nothing raises in the
host; the original file (and its -wal) is byte-for-byte unchanged; the events
are in ``<name>.fallback.db``; the log says where they went, once; and
``agentlog doctor`` reports the damage (exit status 2) and the fallback file.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import agentlog
from agentlog.cli import main
from agentlog.doctor import diagnose
from agentlog.store.migrate import latest_version

from harness import digest, integrity, stored


def _healthy(db: Path) -> None:
    agentlog.configure(db)
    with agentlog.run("original"):
        for i in range(300):
            agentlog.log("original event", i=i, pad="o" * 200)
    agentlog.shutdown()


def _truncate(db: Path) -> None:
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])


def _bad_header(db: Path) -> None:
    data = bytearray(db.read_bytes())
    data[:16] = b"NOT SQLITE AT AL"
    db.write_bytes(bytes(data))


def _flip_bytes(db: Path) -> None:
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    for p in (1, 2, 3):  # the b-tree headers of pages 2-4
        for k in range(p * page, p * page + 12):
            data[k] ^= 0xFF
    db.write_bytes(bytes(data))


def _stray_wal(db: Path) -> None:
    other = db.with_name("other.db")
    conn = sqlite3.connect(other, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('from another database')")
    shutil.copy(f"{other}-wal", f"{db}-wal")
    conn.close()


def _newer_schema(db: Path) -> None:
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO al_migrations VALUES (?, 'from_the_future', 0)", (latest_version() + 1,))
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _foreign_db(db: Path) -> None:
    db.unlink()
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.commit()
    conn.close()


def _text_file(db: Path) -> None:
    db.write_text("these are my notes, not a database\n" * 200)


def _directory(db: Path) -> None:
    db.unlink()
    db.mkdir()
    (db / "keep.txt").write_text("mine")


EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256 of no bytes
DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate, "bad_header": _bad_header, "flipped_bytes": _flip_bytes, "stray_wal": _stray_wal,
    "newer_schema": _newer_schema, "foreign_db": _foreign_db, "text_file": _text_file, "directory": _directory,
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_store_is_left_untouched_and_events_go_to_a_fallback(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, "agentlog")
    db = tmp_path / "agentlog.db"
    _healthy(db)
    DAMAGE[kind](db)
    wal = Path(f"{db}-wal")
    before = (digest(db), digest(wal))

    # The host records as if nothing were wrong; the directory case goes through
    # the lazy path (AGENTLOG_DB), since configure() refuses a directory on purpose.
    monkeypatch.setenv("AGENTLOG_DB", str(db))
    with agentlog.run("host keeps going"):
        for i in range(100):
            assert agentlog.log("after the damage", i=i) is True
    assert agentlog.flush(10)
    agentlog.shutdown()

    _assert_unchanged(db, wal, before)
    fallback = tmp_path / "agentlog.fallback.db"
    assert integrity(fallback) == "ok"
    assert stored(fallback, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 100
    told = [r.getMessage() for r in caplog.records if str(fallback) in r.getMessage()]
    assert len(told) == 1 and "agentlog doctor" in told[0]

    report = diagnose(db)
    assert report.exit_code == 2, report.findings
    assert report.fallbacks == {str(fallback): 102}  # 100 logs and their run
    _assert_unchanged(db, wal, before)  # the doctor changes nothing either


def _assert_unchanged(db: Path, wal: Path, before: tuple[str, str]) -> None:
    """The database's bytes and any WAL it had are as they were. (SQLite's read-only
    open of a WAL-mode file may leave an *empty* -wal and a -shm beside it.)"""
    assert digest(db) == before[0]
    assert digest(wal) == before[1] or (before[1] == "absent" and digest(wal) == EMPTY)


def test_doctor_on_the_command_line_names_the_damage_and_the_fallback(tmp_path: Path) -> None:
    db = tmp_path / "agentlog.db"
    _healthy(db)
    _flip_bytes(db)
    agentlog.configure(db)
    agentlog.log("x")
    agentlog.shutdown()
    result = CliRunner().invoke(main, ["doctor", str(db)])
    assert result.exit_code == 2
    assert "FAIL" in result.output and "agentlog.fallback.db (3 event(s))" in result.output
    assert "verdict: error" in result.output


def test_doctor_is_quiet_about_a_healthy_store_and_warns_about_drops(tmp_path: Path) -> None:
    db = tmp_path / "agentlog.db"
    _healthy(db)
    assert CliRunner().invoke(main, ["doctor", str(db)]).exit_code == 0
    rec = agentlog.configure(db, max_queue=5, flush_interval=5)
    for _ in range(20):
        rec.publish("log")
    agentlog.shutdown()
    result = CliRunner().invoke(main, ["doctor", str(db), "--json"])
    assert result.exit_code == 1
    assert '"queue_full": 16' in result.output  # 5 fit, minus the implicit run's start


def test_a_backup_is_a_consistent_copy_made_while_recording(tmp_path: Path) -> None:
    db, copy = tmp_path / "agentlog.db", tmp_path / "backup.db"
    _healthy(db)
    rec = agentlog.configure(db)
    agentlog.log("still recording")
    result = CliRunner().invoke(main, ["backup", str(copy), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert rec.flush(5)
    assert integrity(copy) == "ok"
    assert stored(copy, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] >= 300
    assert CliRunner().invoke(main, ["backup", str(copy), "--db", str(db)]).exit_code == 1  # never overwrites
