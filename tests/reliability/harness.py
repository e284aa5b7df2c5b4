"""Shared tools for the reliability suite: real processes, real files, real signals.

Later stores (remote sinks) and the web viewer join the suite by reusing these:
``run_py``/``start_py`` run a recording program in its own interpreter,
``stored``/``integrity`` read the result as a user would, ``unprivileged`` and
``tmpfs`` set up the environment (skipping with the reason when they cannot).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AGENTLOG_STRICT"}
    env["PYTHONPATH"] = SRC
    env.update(extra or {})
    return env


def start_py(code: str, *args: str, env: dict[str, str] | None = None, user: str | None = None,
             **popen: Any) -> subprocess.Popen[str]:
    """Start ``code`` in a fresh interpreter (as ``user`` if given), pipes on stdout/stderr."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, user=user, **popen)


def run_py(code: str, *args: str, env: dict[str, str] | None = None, user: str | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=_env(env),
                          capture_output=True, text=True, timeout=timeout, user=user)


def stored(db: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def integrity(db: Path) -> str:
    return "; ".join(str(r[0]) for r in stored(db, "PRAGMA integrity_check"))


def digest(path: Path) -> str:
    if path.is_dir():
        return "dir:" + ",".join(sorted(os.listdir(path)))
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


UNPRIVILEGED = "nobody"


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: to mount a tmpfs, and to run the writer as another user (root ignores modes)")


@contextlib.contextmanager
def shared_dir() -> Iterator[Path]:
    """A directory the unprivileged user can reach (pytest's tmp_path is root-only)."""
    require_root()
    try:
        pwd.getpwnam(UNPRIVILEGED)
    except KeyError:
        pytest.skip(f"no {UNPRIVILEGED!r} user to run the writer unprivileged")
    path = Path(tempfile.mkdtemp(prefix="agentlog-rel-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def give_to_unprivileged(path: Path) -> None:
    entry = pwd.getpwnam(UNPRIVILEGED)
    os.chown(path, entry.pw_uid, entry.pw_gid)


@contextlib.contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    """A small tmpfs (``size`` like "2m"), unmounted afterwards."""
    require_root()
    if not shutil.which("mount"):
        pytest.skip("no mount command")
    path = Path(tempfile.mkdtemp(prefix="agentlog-full-"))
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        path.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
        shutil.rmtree(path, ignore_errors=True)


def as_unprivileged(code: str) -> str:
    """``code`` prefixed so it runs as ``nobody``: started as root (the interpreter may
    live where ``nobody`` cannot reach it), everything imported, then privileges dropped."""
    return textwrap.dedent(f"""
        import json, logging, os, pwd, sqlite3, sys, time, hashlib, socket, traceback, linecache
        import orjson, click
        import agentlog, agentlog._encode, agentlog._secrets, agentlog.cli, agentlog.doctor, agentlog.reader
        import agentlog.sinks.sqlite, agentlog.store.sqlite, agentlog.store.migrate, agentlog.store.queries
        import agentlog._wire, pickle, subprocess  # a writer process is started after the drop
        agentlog.store.migrate.load_migrations()
        _u = pwd.getpwnam({UNPRIVILEGED!r})
        os.setgroups([])
        os.setgid(_u.pw_gid)
        os.setuid(_u.pw_uid)
    """) + textwrap.dedent(code)
