"""The ``agentlog`` command line, run with CliRunner against real SQLite files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

import agentlog
from agentlog.cli import _safe, main
from agentlog.demo import write_demo


@pytest.fixture(autouse=True)
def _strict_and_shut_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AGENTLOG_STRICT", "1")
    monkeypatch.delenv("AGENTLOG_DB", raising=False)
    yield
    agentlog.shutdown()


@pytest.fixture
def demo_db(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "demo.db"
    return db, write_demo(db)


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_clean_failure(result: Result, message: str) -> None:
    """Exit status 1, one clear line, no traceback."""
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


# -- demo --------------------------------------------------------------------------------
def test_demo_records_a_run_and_prints_how_to_see_it(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    result = invoke("demo", "--db", db, "--pace", "0")
    assert result.exit_code == 0, result.output
    with agentlog.open(db) as store:
        (run,) = store.runs()
    assert run.run_id in result.output
    assert f"agentlog show {run.run_id} --db {db}" in result.output


def test_demo_uses_agentlog_db_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "env.db"
    monkeypatch.setenv("AGENTLOG_DB", str(db))
    assert invoke("demo", "--pace", "0").exit_code == 0
    assert invoke("runs").output.count("support-bot") == 1


def test_demo_into_a_directory_fails_cleanly(tmp_path: Path) -> None:
    assert_clean_failure(invoke("demo", "--db", tmp_path, "--pace", "0"), "is a directory")


# -- runs --------------------------------------------------------------------------------
def test_runs_lists_the_demo_run(demo_db: tuple[Path, str]) -> None:
    db, run_id = demo_db
    result = invoke("runs", "--db", db)
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()
    assert header.split()[:3] == ["RUN", "NAME", "STATUS"]
    assert row.split()[:3] == [run_id[:12], "support-bot", "ok"]
    assert "3,832/467" in row and "$0.0038" in row


def test_runs_json_prints_one_object_per_run(demo_db: tuple[Path, str]) -> None:
    db, run_id = demo_db
    result = invoke("runs", "--db", db, "--json")
    (line,) = result.output.splitlines()
    row = json.loads(line)
    assert row["run_id"] == run_id
    assert row["llm_calls"] == 6 and row["tool_calls"] == 3


def test_runs_filters_by_status_and_name(demo_db: tuple[Path, str]) -> None:
    db, _ = demo_db
    assert "No runs match." in invoke("runs", "--db", db, "--status", "error").output
    assert "support-bot" in invoke("runs", "--db", db, "--name", "support*").output
    assert "No runs match." in invoke("runs", "--db", db, "--name", "other*").output


# -- show --------------------------------------------------------------------------------
def test_show_latest_prints_header_tree_conversation_tools_and_events(demo_db: tuple[Path, str]) -> None:
    db, run_id = demo_db
    result = invoke("show", "latest", "--db", db)
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(f"Run {run_id}  support-bot  [ok]")
    assert "6 LLM, 3 tool, 1 failed" in out
    assert "usage     3,832 in (2,560 cached) / 467 out (168 reasoning)  $0.0038" in out
    for section in ("Spans", "Conversation", "Tool calls", "Events"):
        assert f"\n{section}\n" in out
    assert "\n    agent 2 replacement-agent  ok" in out
    assert "\n      task  2.1 check_reship_policy  ok" in out
    assert "\n        llm   gpt-4o-mini  ok" in out
    assert "\n      task  2.2 pick_courier  ok" in out and "\n        · depends_on check_reship_policy\n" in out
    assert "\n    approved by replacement-agent: order is 3 days late" in out
    assert '\n    fields  {"side_effects": ["replacement order A-1042-R created"' in out
    assert "tool  track_shipment  error" in out and "! CarrierTimeout" in out
    assert "-> lookup_order(" in out
    assert "Where is it?" in out
    assert "log info: mode switched old=self-service new=escalation" in out
    assert "status replacement-agent -> approved" in out


def test_show_accepts_a_unique_prefix_and_defaults_to_latest(demo_db: tuple[Path, str]) -> None:
    db, run_id = demo_db
    by_prefix = invoke("show", run_id[:12], "--db", db)
    assert by_prefix.exit_code == 0, by_prefix.output
    assert by_prefix.output == invoke("show", "--db", db).output


def test_show_json_is_the_full_detail_and_events(demo_db: tuple[Path, str]) -> None:
    db, run_id = demo_db
    detail = json.loads(invoke("show", run_id, "--db", db, "--json").output)
    assert detail["run"]["run_id"] == run_id
    assert len(detail["llm_calls"]) == 6
    assert {e["type"] for e in detail["events"]} >= {"log", "snapshot", "usage"}


def test_show_unknown_run_fails_cleanly(demo_db: tuple[Path, str]) -> None:
    db, _ = demo_db
    assert_clean_failure(invoke("show", "nope", "--db", db), "Error: No such run: 'nope' (see: agentlog runs)")


def test_show_ambiguous_prefix_fails_cleanly(demo_db: tuple[Path, str]) -> None:
    db, run_id = demo_db
    write_demo(db)
    assert_clean_failure(invoke("show", run_id[0], "--db", db), "is ambiguous")


def test_missing_database_fails_cleanly(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    for command in ("runs", "show", "stats"):
        assert_clean_failure(
            invoke(command, "--db", missing),
            f"No agentlog database at {missing} (record something first, e.g.: agentlog demo)",
        )
    assert not missing.exists()


def test_show_latest_on_an_empty_store_fails_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    sink = agentlog.SQLiteSink(db)
    sink.write([])  # creates the schema, records nothing
    sink.close()
    assert_clean_failure(invoke("show", "--db", db), "No runs in")
    assert "No runs recorded yet" in invoke("runs", "--db", db).output


# -- terminal safety ---------------------------------------------------------------------
EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[1;1Hcleared\rover\x9b31mred\x7f"


def _record_evil_run(db: Path) -> None:
    agentlog.configure(db)
    with agentlog.run("name\x1b[31m"), agentlog.turn():
        agentlog.log(EVIL, level="warning", note=EVIL)
        with agentlog.tool_call("tool\x1b[2K", {"q": EVIL}) as t:
            t.result = EVIL
    agentlog.shutdown()


def test_control_characters_from_the_database_are_neutralised(tmp_path: Path) -> None:
    db = tmp_path / "evil.db"
    _record_evil_run(db)
    for args in (["show"], ["runs"], ["search", "pwned"], ["stats", "--by", "tool"]):
        result = invoke(*args, "--db", db)
        assert result.exit_code == 0, result.output
        for char in ("\x1b", "\x07", "\r", "\x9b", "\x7f"):
            assert char not in result.output, (args, result.output)
    out = invoke("show", "--db", db).output
    assert "\\x1b]0;pwned\\x07\\x1b[2J" in out
    assert "name\\x1b[31m" in out
    assert "[pwned]\\x07" in invoke("search", "pwned", "--db", db).output


def test_json_output_escapes_control_characters_but_keeps_the_data(tmp_path: Path) -> None:
    db = tmp_path / "evil.db"
    _record_evil_run(db)
    result = invoke("show", "--db", db, "--json")
    assert not any(c in result.output for c in ("\x1b", "\x07", "\r", "\x9b", "\x7f"))
    detail = json.loads(result.output)
    assert detail["tool_calls"][0]["arguments"] == {"q": EVIL}


def test_safe_keeps_newlines_tabs_and_unicode() -> None:
    assert _safe("a\n\tb é ✓") == "a\n\tb é ✓"
    assert _safe("\x1b[2J\x00\x85") == "\\x1b[2J\\x00\\x85"


# -- search and stats --------------------------------------------------------------------
def test_search_finds_text_and_highlights_it(demo_db: tuple[Path, str]) -> None:
    db, run_id = demo_db
    result = invoke("search", "teapot", "--db", db, "--run", run_id[:12], "--limit", "3")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 4
    assert all(line.startswith(run_id[:12]) for line in lines[1:])
    assert "[teapot]" in result.output
    assert "No matches." in invoke("search", "zeppelin", "--db", db).output


def test_search_raw_takes_fts_syntax(demo_db: tuple[Path, str]) -> None:
    db, _ = demo_db
    result = invoke("search", "--raw", "teapot NOT express", "--db", db, "--json")
    hits = [json.loads(line) for line in result.output.splitlines()]
    assert hits and all("express" not in h["snippet"] for h in hits)


def test_invalid_raw_search_query_fails_cleanly(demo_db: tuple[Path, str]) -> None:
    db, _ = demo_db
    assert_clean_failure(invoke("search", "--raw", "teapot AND (", "--db", db), "Invalid search query")


@pytest.mark.parametrize("by", ["model", "provider", "run", "day", "tool"])
def test_stats_groups_the_demo(demo_db: tuple[Path, str], by: str) -> None:
    db, _ = demo_db
    result = invoke("stats", "--db", db, "--by", by)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith(by.upper())
    if by == "tool":
        assert "track_shipment" in result.output and "100%" in result.output
    if by == "model":
        assert "o4-mini" in result.output and "gpt-4o-mini" in result.output


def test_stats_rejects_an_unknown_grouping(demo_db: tuple[Path, str]) -> None:
    db, _ = demo_db
    result = invoke("stats", "--db", db, "--by", "colour")
    assert result.exit_code == 2
    assert "Traceback" not in result.output


# -- help --------------------------------------------------------------------------------
def test_every_command_has_help() -> None:
    assert isinstance(main, click.Group)
    assert invoke("--help").exit_code == 0
    for name, command in main.commands.items():
        result = invoke(name, "--help")
        assert result.exit_code == 0, name
        assert command.help, f"{name} has no help text"
        assert f"Usage: main {name}" in result.output or f"Usage: agentlog {name}" in result.output
