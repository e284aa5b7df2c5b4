"""Bad ``AGENTLOG_*`` values never reach the host: defaults and one warning per variable.

The process-wide recorder is built lazily by the first ``publish()``, inside the
host's code: a typo in the environment must not raise there. Explicit
``configure()`` arguments still raise at once (a bug in the caller's code).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import agentlog

from harness import run_py, stored

BAD = {
    "AGENTLOG_DURABILITY": ("sometimes", "'async' or 'sync'"),
    "AGENTLOG_MAX_QUEUE": ("lots", "a whole number >= 1"),
    "AGENTLOG_FLUSH_INTERVAL": ("-1", "a number of seconds >= 0"),
    "AGENTLOG_SHUTDOWN_TIMEOUT": ("inf", "a number of seconds >= 0"),
    "AGENTLOG_KEEP_DELTAS": ("maybe", "true/false"),
    "AGENTLOG_ON_FULL": ("explode", "'drop' or 'block'"),
    "AGENTLOG_MAX_STRING_BYTES": ("999999999999", "a whole number >= 1"),
}


def test_bad_environment_values_fall_back_to_defaults_with_one_warning_each(tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    proc = run_py("""
        import agentlog
        assert agentlog.log("first") is True          # builds the recorder lazily: must not raise
        agentlog.log("second")
        s = agentlog.get_recorder().settings
        print(s.durability, s.max_queue, s.flush_interval, s.shutdown_timeout, s.keep_deltas, s.on_full,
              s.max_string_bytes)
    """, env={"AGENTLOG_DB": str(db), **{k: v for k, (v, _) in BAD.items()}})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["async", "100000", "0.1", "5.0", "False", "drop", "1048576"]
    for var, (value, accepted) in BAD.items():
        lines = [line for line in proc.stderr.splitlines() if f"{var}={value!r}" in line]
        assert len(lines) == 1, (var, proc.stderr)
        assert accepted in lines[0] and "default" in lines[0]
    assert "Traceback" not in proc.stderr
    assert stored(db, "SELECT count(*) FROM events WHERE type = 'log'")[0][0] == 2


@pytest.mark.parametrize(("setting", "value"), [("durability", "sometimes"), ("max_queue", "lots"),
                                                ("flush_interval", -1.0), ("on_full", "explode")])
def test_bad_configure_arguments_still_raise_at_once(setting: str, value: object) -> None:
    with pytest.raises(agentlog.ConfigError, match=setting):
        agentlog.configure(**{setting: value})  # type: ignore[arg-type]
