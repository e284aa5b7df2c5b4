"""Recorder settings: explicit argument > ``AGENTLOG_*`` environment variable > default.

Everything is validated when :class:`Settings` is built, so a typo in an argument fails
at ``configure()`` with the name of the setting, not later on the writer thread. A bad
environment value is not raised (the recorder may be built inside the host's first
``publish()``): the setting keeps its default, with one warning (see :meth:`Settings.resolve`).

=========================  ======================  ==========================================
setting                    environment variable    default
=========================  ======================  ==========================================
db                         AGENTLOG_DB             ``./agentlog.db`` (a path or ``sqlite:///…``)
durability                 AGENTLOG_DURABILITY     ``async`` (or ``sync``: publish waits for the commit)
flush_interval             AGENTLOG_FLUSH_INTERVAL 0.1 s: the most an accepted event waits before its commit starts
batch_size                 AGENTLOG_BATCH_SIZE     1000 events per transaction at most
max_queue                  AGENTLOG_MAX_QUEUE      100000 events held in memory at most
on_full                    AGENTLOG_ON_FULL        ``drop`` (count and drop) or ``block`` (wait up to block_timeout, then drop)
block_timeout              AGENTLOG_BLOCK_TIMEOUT  1.0 s
sync_timeout               AGENTLOG_SYNC_TIMEOUT   5.0 s: the most a ``sync`` publish waits for its commit
shutdown_timeout           AGENTLOG_SHUTDOWN_TIMEOUT 5.0 s: the most close()/exit waits for the writer
keep_deltas                AGENTLOG_KEEP_DELTAS    false: consecutive stream deltas are consolidated
max_event_bytes            AGENTLOG_MAX_EVENT_BYTES 8 MiB: larger payloads have their long strings truncated
max_string_bytes           AGENTLOG_MAX_STRING_BYTES 1 MiB: the longest string kept whole when truncating
fsync                      AGENTLOG_FSYNC          false: true makes every commit durable against power loss (synchronous=FULL)
keep_media                 AGENTLOG_KEEP_MEDIA     false: base64 images/audio in LLM requests are replaced by a marker (size, hash)
secret_names               AGENTLOG_SECRET_NAMES   :data:`SECRET_NAMES`: tool arguments named like these are masked
                                                   (comma-separated in the environment; replaces the list)
handle_sigterm             AGENTLOG_HANDLE_SIGTERM true: SIGTERM writes what is queued, then the host's handler (or the default) runs
redact_secrets             (none: argument only)   true: credentials recognised by shape are replaced by ``[REDACTED:kind]``
                                                   on the writer thread before any processor or sink sees them
writer                     AGENTLOG_WRITER         ``process``: the default store is written by a child process (recorders
                                                   with processors or other sinks keep ``thread``); ``thread``: in this
                                                   process, as the writer process's automatic fallback (docs/recording.md)
=========================  ======================  ==========================================
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["SECRET_NAMES", "Settings", "resolve_db_path"]

#: Tool arguments whose names contain one of these, word for word, are masked before
#: they are queued: ``api_key`` masks ``api_key``, ``openai_api_key``, ``apiKey`` and
#: ``X-API-Key``; ``token`` masks ``access_token`` but not ``max_tokens`` (see
#: :func:`agentlog.tools.mask_secrets`).
SECRET_NAMES: tuple[str, ...] = (
    "access_key",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "credential",
    "credentials",
    "passphrase",
    "passwd",
    "password",
    "private_key",
    "secret",
    "token",
)

#: Settings no environment variable can change: turning redaction off must be a decision in
#: code, not something a process inherits from its environment.
_ARGUMENT_ONLY = frozenset({"redact_secrets"})

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    db: str = "agentlog.db"
    durability: str = "async"
    flush_interval: float = 0.1
    batch_size: int = 1000
    max_queue: int = 100_000
    on_full: str = "drop"
    block_timeout: float = 1.0
    sync_timeout: float = 5.0
    shutdown_timeout: float = 5.0
    keep_deltas: bool = False
    max_event_bytes: int = 8 * 1024 * 1024
    max_string_bytes: int = 1024 * 1024
    fsync: bool = False
    keep_media: bool = False
    secret_names: tuple[str, ...] = SECRET_NAMES
    handle_sigterm: bool = True
    redact_secrets: bool = True
    writer: str = "process"

    def __post_init__(self) -> None:
        if self.durability not in ("async", "sync"):
            raise ConfigError(f"durability must be 'async' or 'sync', got {self.durability!r}")
        if self.writer not in ("process", "thread"):
            raise ConfigError(f"writer must be 'process' or 'thread', got {self.writer!r}")
        if self.on_full not in ("drop", "block"):
            raise ConfigError(f"on_full must be 'drop' or 'block', got {self.on_full!r}")
        for name in ("flush_interval", "block_timeout", "sync_timeout", "shutdown_timeout"):
            value = getattr(self, name)
            if not 0 <= value < math.inf:  # NaN and infinity too: threading's waits refuse them
                raise ConfigError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
        for name in ("batch_size", "max_queue", "max_event_bytes", "max_string_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.max_string_bytes > self.max_event_bytes:
            raise ConfigError("max_string_bytes must not exceed max_event_bytes")
        bad = [n for n in self.secret_names if not isinstance(n, str) or not n.strip()]
        if bad:
            raise ConfigError(f"secret_names must be non-empty strings, got {bad!r}")

    @classmethod
    def resolve(cls, **explicit: Any) -> Settings:
        """Build settings from explicit values (None = not given), then env, then defaults.

        A bad explicit value raises :class:`ConfigError` (a bug in the caller's code). A bad
        ``AGENTLOG_*`` value never raises: the recorder is often built lazily inside
        ``publish()``, which must not fail the host; the setting keeps its default and one
        warning names the variable, the value and what is accepted.
        """
        known = {f.name: f for f in fields(cls)}
        unknown = set(explicit) - set(known)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        from_env: list[tuple[str, str]] = []
        for name, f in known.items():
            value = explicit.get(name)
            if value is not None:
                values[name] = _coerce(name, value, type(f.default))
                continue
            if name in _ARGUMENT_ONLY:
                continue
            raw = os.environ.get(f"AGENTLOG_{name.upper()}")
            if raw is None:
                continue
            try:
                value = _coerce(name, _parse_env(name, raw, type(f.default)), type(f.default))
                cls(**{name: value})  # the setting's own checks, alone
                if name == "db":
                    resolve_db_path(value)
            except ConfigError as exc:
                _warn_env(name, raw, exc)
                continue
            values[name] = value
            from_env.append((name, raw))
        while True:
            try:
                return cls(**values)
            except ConfigError as exc:
                if not from_env:
                    raise
                # Settings that only conflict together (max_string_bytes > max_event_bytes):
                # the environment's values give way, last first.
                name, raw = from_env.pop()
                del values[name]
                _warn_env(name, raw, exc)


_ACCEPTED = {
    "db": "a file path or sqlite:///path",
    "durability": "'async' or 'sync'",
    "on_full": "'drop' or 'block'",
    "writer": "'process' or 'thread'",
    "secret_names": "comma-separated names",
}
_warned: set[tuple[str, str]] = set()


def _accepted(name: str) -> str:
    if name in _ACCEPTED:
        return _ACCEPTED[name]
    kind = type(getattr(Settings, name))
    if kind is bool:
        return "true/false (1/0, yes/no, on/off)"
    if kind is int:
        return "a whole number >= 1"
    return "a number of seconds >= 0"


def _warn_env(name: str, raw: str, exc: Exception) -> None:
    """Log once per variable and value: a bad environment must not break the host."""
    if (name, raw) in _warned:
        return
    _warned.add((name, raw))
    logging.getLogger("agentlog").warning(
        "agentlog: ignoring AGENTLOG_%s=%r (%s); accepted: %s; using the default %r",
        name.upper(), raw, exc, _accepted(name), getattr(Settings, name))


def _parse_env(name: str, raw: str, kind: type) -> Any:
    if kind is bool:
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"AGENTLOG_{name.upper()}={raw!r}: expected true/false")
    if kind is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def _coerce(name: str, value: Any, kind: type) -> Any:
    if kind is str and isinstance(value, os.PathLike):
        return os.fspath(value)
    try:
        if kind is bool:
            if not isinstance(value, bool):
                raise TypeError
            return value
        if kind is tuple:
            # A lone string would otherwise become a tuple of its characters.
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise TypeError
            return tuple(value)
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"setting {name} expects {kind.__name__}, got {value!r}"
        ) from None


def resolve_db_path(db: str) -> Path:
    """Turn a ``db`` setting (a path or a ``sqlite:///`` URL) into a file path."""
    if "://" in db:
        scheme, _, rest = db.partition("://")
        if scheme != "sqlite":
            raise ConfigError(
                f"unsupported store URL {db!r}: this version of agentlog writes SQLite "
                "(a file path or sqlite:///path)"
            )
        # sqlite:///relative/path and sqlite:////abs/path, as in SQLAlchemy
        if not rest.startswith("/"):
            raise ConfigError(f"malformed SQLite URL {db!r}: expected sqlite:///path")
        db = rest[1:]
        if not db:
            raise ConfigError(f"SQLite URL {db!r} names no file")
    return Path(db).expanduser()
