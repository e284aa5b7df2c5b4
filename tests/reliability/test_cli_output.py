"""No stored text can drive the terminal through the CLI.

Terminal control sequences (ESC/CSI/OSC, C1 controls, BEL, backspace, carriage
return, bidirectional overrides) are planted in run names and metadata, model
names and output, tool names, arguments and results, log messages and fields,
errors, and the database's own file name. Every command of ``agentlog`` (the test
fails when a command is added and not listed here) runs through CliRunner, in
text and JSON form, and ``show`` also in a real process. Pass: not one raw
control byte reaches stdout or stderr; the planted text is still visible, escaped.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import agentlog
from agentlog.cli import main

from harness import SRC

EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[1;31mRED\x9b31m\r\x08\x08over\x1b]8;;http://x\x1b\\link\u202egnp.exe\x00"
# C0 but tab and newline, DEL, C1 (U+0080-U+009F), bidi embeddings/overrides/isolates, line separators.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _plant(db: Path) -> None:
    agentlog.configure(db)
    with agentlog.run(f"run {EVIL}", metadata={"who": EVIL}, tags=[EVIL]), agentlog.turn():
        with agentlog.inference(f"prov{EVIL}", f"model{EVIL}", request={"messages": [
                {"role": "user", "content": f"hello {EVIL}"}]}) as call:
            call.delta(f"streamed {EVIL}")
            call.tool_call("c1", f"tool{EVIL}", {"arg": EVIL})
            call.finish(usage={"input_tokens": 3, "output_tokens": 4})
        with agentlog.tool_call(f"tool{EVIL}", {"arg": EVIL}, tool_call_id="c1") as tool:
            tool.result = {"out": EVIL}
        try:
            with agentlog.tool_call(f"tool{EVIL}", {"x": 1}):
                raise RuntimeError(f"failed {EVIL}")
        except RuntimeError:
            pass
        with agentlog.inference("openai", "gpt-4o") as bad:
            bad.fail(f"provider error {EVIL}", body={"detail": EVIL})
        agentlog.log(f"log {EVIL}", **{f"k{EVIL}": EVIL})
        agentlog.snapshot({"state": EVIL})
        with agentlog.span(f"span {EVIL}", goal=f"goal {EVIL}"):
            pass
    agentlog.shutdown()


def _commands(db: Path, backup: Path) -> dict[str, list[list[str]]]:
    d = ["--db", str(db)]
    return {
        "runs": [["runs", *d], ["runs", "--json", *d]],
        "show": [["show", "latest", *d], ["show", "latest", "--json", *d], ["show", "nope", *d]],
        "search": [["search", "pwned", *d], ["search", "pwned", "--json", *d], ["search", "RED", *d]],
        "stats": [["stats", "--by", by, *d] for by in ("model", "provider", "run", "day", "tool")]
                 + [["stats", "--json", *d]],
        "doctor": [["doctor", str(db)], ["doctor", str(db), "--json"]],
        "backup": [["backup", str(backup), *d]],
        "demo": [["demo", "--pace", "0", "--db", str(db.with_name(f"demo{EVIL[:8]}.db"))]],
    }


def test_every_command_neutralises_control_sequences_from_the_store(tmp_path: Path) -> None:
    db = tmp_path / f"store{EVIL[:12]}.db"  # the file name is printed too (doctor, backup, demo)
    _plant(db)
    commands = _commands(db, tmp_path / f"copy{EVIL[:8]}.db")
    assert set(commands) == set(main.commands), "a new command must be added to this test"
    runner = CliRunner()
    dirty = []
    for variants in commands.values():
        for args in variants:
            result = runner.invoke(main, args)
            assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.output)
            for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
                if RAW_CONTROL.search(text):
                    dirty.append(f"{' '.join(args[:2])} {stream}: {RAW_CONTROL.findall(text)[:5]}")
            if args[:2] in (["show", "latest"], ["runs", "--db"]) and "--json" not in args:
                assert "pwned" in result.stdout and "\\x1b" in result.stdout  # visible, inert
    assert dirty == []


@pytest.mark.parametrize("args", [["show", "latest"], ["search", "pwned"], ["runs"]])
def test_a_real_terminal_process_gets_no_raw_control_bytes(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "store.db"
    _plant(db)
    proc = subprocess.run([sys.executable, "-m", "agentlog.cli", *args, "--db", str(db)],
                          capture_output=True, env={**os.environ, "PYTHONPATH": SRC}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode("utf-8") + proc.stderr.decode("utf-8")
    assert RAW_CONTROL.findall(out) == [] and "pwned" in out
