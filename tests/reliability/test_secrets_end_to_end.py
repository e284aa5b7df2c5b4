"""Secrets by value never reach the database, its WAL, the CLI or a backup.

Credentials of every shape in ``tests/secrets_corpus.py`` are planted in prompts,
headers, URLs, tool arguments and results, run names and metadata, streamed
chunks (one key split across two chunks that reach the writer in different
batches), error bodies and log fields. Pass: the raw bytes of the file, of its
``-wal`` (read while the recorder is open), of ``agentlog show/search/runs/stats``
output (CliRunner and a real process) and of a backup hold no part of any
secret; the markers are there; token counts and ordinary text are intact.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import agentlog
from agentlog.cli import main

from harness import SRC, stored
from secrets_corpus import SECRETS

S = {name: text for name, (text, _) in SECRETS.items()}
PARTS = [part for _, parts in SECRETS.values() for part in parts]


def _record(db: Path, keep_deltas: bool) -> tuple[bytes, agentlog.Recorder]:
    rec = agentlog.configure(db, flush_interval=0.05, keep_deltas=keep_deltas)
    split = S["anthropic_key"]
    with agentlog.run(f"deploy with {S['openai_key']}", metadata={"note": S["jwt"]}):
        request = {"messages": [{"role": "system", "content": f"Use {S['google_api_key']} for maps."},
                                {"role": "user", "content": f"Here is my key {S['openai_legacy']} and\n{S['private_key']}"}],
                   "max_tokens": 512, "url": S["url_password"],
                   "headers": {"X-Forwarded-Auth": S["bearer_token"].split(": ")[1]}}
        with agentlog.inference("openai", "gpt-4o", request=request) as call:
            call.delta("Sure, your key is ")
            call.delta(split[:14])
            time.sleep(0.3)  # the writer drains between the halves: they land in different batches
            held = rec.stats()["queued"]  # the chunk held back (by this process's writer or the child)
            call.delta(split[14:] + " and that is all.")
            call.tool_call("call_1", "search", {"query": f"charge with {S['stripe_key']}"})
            call.finish(usage={"input_tokens": 812, "output_tokens": 64})
        with agentlog.tool_call("search", {"query": S["github_pat"], "note": S["aws_pair"]},
                                tool_call_id="call_1") as tool:
            tool.result = {"found": f"{S['slack_token']} / {S['huggingface_token']} / {S['stripe_restricted']}"}
        with agentlog.inference("anthropic", "claude", request={"messages": [{"role": "user", "content": "hi"}]}) as bad:
            bad.fail("401 Unauthorized", http_status=401,
                     body={"error": f"invalid x-api-key {S['github_token']}", "sent": S["aws_access_key_id"]})
        agentlog.log(f"connecting with {S['basic_auth']}", dsn=S["url_password"], env=S["aws_secret_access_key"])
        agentlog.publish("llm.http", {"request": {"method": "POST", "url": "https://api.example.com/v1",
                                                  "headers": {"authorization": S["bearer_token"].split(": ")[1]}}})
    assert rec.flush(10)
    wal = Path(f"{db}-wal").read_bytes()
    assert held >= 1, "the first half of the split key should have been held back for the next batch"
    return wal, rec


def _leaks(name: str, data: bytes) -> list[str]:
    return [f"{name}: {part[:12]}…" for part in PARTS if part.encode() in data]


@pytest.mark.parametrize("keep_deltas", [False, True], ids=["consolidated", "keep_deltas"])
def test_no_secret_reaches_the_file_its_wal_the_cli_or_a_backup(tmp_path: Path, keep_deltas: bool) -> None:
    db = tmp_path / "agentlog.db"
    wal, rec = _record(db, keep_deltas)
    agentlog.shutdown()
    leaks = _leaks("-wal", wal) + _leaks("db", db.read_bytes())

    runner = CliRunner()
    for args in (["show", "latest"], ["show", "latest", "--json"], ["runs"], ["runs", "--json"],
                 ["search", "key"], ["search", "key", "--json"], ["search", "REDACTED"], ["stats"],
                 ["stats", "--by", "tool"], ["doctor", str(db)]):
        result = runner.invoke(main, [*args, "--db", str(db)] if args[0] != "doctor" else args)
        assert result.exit_code in (0, 1), result.output
        leaks += _leaks(" ".join(args), result.output.encode())
    proc = subprocess.run([sys.executable, "-m", "agentlog.cli", "show", "latest", "--db", str(db)],
                          capture_output=True, env={"PYTHONPATH": SRC}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    leaks += _leaks("agentlog show (process)", proc.stdout)
    backup = tmp_path / "copy.db"
    assert runner.invoke(main, ["backup", str(backup), "--db", str(db)]).exit_code == 0
    leaks += _leaks("backup", backup.read_bytes())
    assert leaks == []

    text = " ".join(r[0] for r in stored(db, "SELECT payload FROM events"))
    for kind in ("openai_key", "anthropic_key", "google_api_key", "private_key", "jwt", "bearer_token",
                 "url_password", "stripe_key", "github_token", "slack_token", "huggingface_token",
                 "aws_access_key_id", "aws_secret_access_key", "basic_auth"):
        assert f"[REDACTED:{kind}]" in text, kind
    (call,) = stored(db, "SELECT input_tokens, output_tokens, json_extract(request, '$.max_tokens'),"
                         " response_text FROM llm_calls WHERE status = 'ok'")
    assert call[:3] == (812, 64, 512)
    assert call[3] == "Sure, your key is [REDACTED:anthropic_key] and that is all."
    deltas = "".join(r[0] for r in stored(db, "SELECT json_extract(payload, '$.text') FROM events"
                                              " WHERE type = 'llm.delta' ORDER BY seq"))
    assert deltas == call[3]  # every chunk kept, the key's marker where it began
    assert rec.stats()["redacted"] > 0


def test_redaction_is_turned_off_only_by_an_explicit_argument(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTLOG_REDACT_SECRETS", "0")  # ignored: an inherited variable must not disable it
    db = tmp_path / "env.db"
    agentlog.configure(db)
    agentlog.log(S["openai_key"])
    agentlog.shutdown()
    assert _leaks("db", db.read_bytes()) == []
    off = tmp_path / "off.db"
    agentlog.configure(off, redact_secrets=False)
    agentlog.log(S["openai_key"])
    agentlog.shutdown()
    assert S["openai_key"] in stored(off, "SELECT json_extract(payload, '$.message') FROM events WHERE type = 'log'")[0][0]


def _realistic_request(size: int) -> dict[str, object]:
    """A conversation of prose, code and tool output with a few URLs, ids and hashes."""
    prose = ("The deployment failed because the health check at https://status.example.com/api timed out"
             " after 30 s. Retrying with exponential backoff fixed it; see run 3f2a9c1e-7b4d-4e8a-9c2f-"
             "1a2b3c4d5e6f and commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b for details. ")
    code = ("def retry(fn, attempts=5):\n    for i in range(attempts):\n        try:\n            return fn()\n"
            "        except TimeoutError:\n            time.sleep(2 ** i)\n    raise RuntimeError('gave up')\n")
    messages: list[dict[str, str]] = []
    while sum(len(m["content"]) for m in messages) < size:
        messages.append({"role": "user", "content": prose * 2})
        messages.append({"role": "assistant", "content": code + prose})
    return {"model": "gpt-4o", "messages": messages, "max_tokens": 1024, "temperature": 0.2}


def test_redaction_costs_microseconds_per_event_on_the_writer_thread() -> None:
    """The measured basis of the decision in docs/guarantees.md (secrets)."""
    import orjson

    from agentlog._secrets import _CAND_TEXT, redact_json

    def best(fn: object, n: int) -> float:
        import timeit
        return min(timeit.repeat(fn, number=n, repeat=5)) / n  # type: ignore[arg-type]

    log_event = orjson.dumps({"level": "info", "message": "tool get_weather returned", "fields": {"city": "Paris"}})
    finished = orjson.dumps({"status": "ok", "provider": "openai", "model": "gpt-4o", "stop_reason": "stop",
                             "response_text": "It is 21 °C and sunny in Paris.", "duration_ms": 812.5,
                             "usage": {"input_tokens": 812, "output_tokens": 64}})
    request = _realistic_request(50_000)
    big = orjson.dumps({"provider": "openai", "model": "gpt-4o", "request": request})
    with_key = big.replace(b"fixed it", f"fixed it with {S['openai_key']}".encode(), 1)

    def walk(v: object) -> None:  # the same search string by string, as a caller-side pass would do it
        if isinstance(v, str):
            _CAND_TEXT.search(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    small_us = best(lambda: redact_json(log_event), 20_000) * 1e6
    finished_us = best(lambda: redact_json(finished), 20_000) * 1e6
    big_us = best(lambda: redact_json(big), 200) * 1e6
    hit_us = best(lambda: redact_json(with_key), 200) * 1e6
    walk_us = best(lambda: walk(request), 20) * 1e6
    print(f"\nredact_json: log event {len(log_event)} B {small_us:.1f} µs, llm.finished {len(finished)} B "
          f"{finished_us:.1f} µs, request {len(big) / 1000:.0f} KB {big_us:.0f} µs (with a key {hit_us:.0f} µs);"
          f" string by string over the request's dicts {walk_us:.0f} µs")
    assert redact_json(with_key) is not None and redact_json(big) is None
    assert small_us < 100 and big_us < 5_000  # generous: a shared 2-core machine
