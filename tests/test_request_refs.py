"""Requests stored by reference (sinks/_requests.py, migration 0003).

The long parts of each ``llm.started`` payload are kept once, as chains of items;
the public views and the reader rebuild the request. Every test here reads the
requests back through ``events.payload``, ``llm_calls.request`` and
``Store.events()`` and compares them with what the writer was handed
(:func:`round_trip.assert_requests_come_back`), and checks how they were stored.
"""

from __future__ import annotations

import os
import sqlite3
import string
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import agentlog
from agentlog import Event, MemorySink
from agentlog.sinks.sqlite import SQLiteSink
from agentlog.store.migrate import load_migrations
from agentlog.testing import capture_events

from fakes._server import FakeServer
from helpers import query
from round_trip import assert_requests_come_back

KEY = "sk-proj-" + (string.ascii_letters + string.digits)[:40]
LONG_SYSTEM = "You are a careful assistant who answers with sources. " * 12


def words(n: int, k: int) -> str:
    """``n`` distinct-ish words for message ``k`` (deterministic)."""
    return " ".join(f"w{k}x{i}" for i in range(n))


def refs_count(db: Path) -> tuple[int, int]:
    """(llm.started rows, those stored by reference)."""
    row = query(db, "SELECT count(*), count(refs) FROM al_events WHERE type = 'llm.started'")[0]
    return row[0], row[1]


# -- the SDKs over HTTP, several turns each ---------------------------------------------------
@pytest.fixture
def recorded(db: Path) -> Iterator[MemorySink]:
    """Record into ``db``; the sink gets the events the writer handed to the store."""
    agentlog.configure(db)
    with capture_events() as sink:
        yield sink


def _check(db: Path, sink: MemorySink, calls: int) -> None:
    agentlog.flush()
    assert assert_requests_come_back(db, sink.events) == calls
    assert refs_count(db) == (calls, calls)  # every request here is long enough to be split


def test_openai_chat_and_responses_come_back_whole(db: Path, recorded: MemorySink) -> None:
    openai = pytest.importorskip("openai")
    from fakes.openai_fake import base_url, default

    tool: Any = {"type": "function", "function": {
        "name": "lookup", "description": "Look a thing up.",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}
    agentlog.instrument("openai")
    try:
        with FakeServer(default=default) as srv, \
                openai.OpenAI(base_url=base_url(srv), api_key=KEY, max_retries=0) as client:
            with agentlog.run("openai chat"):
                history: list[Any] = [{"role": "system", "content": LONG_SYSTEM},
                                      {"role": "user", "content": [{"type": "text", "text": words(30, 0)}]}]
                for k in range(1, 5):
                    stream = k % 2 == 0
                    reply = client.chat.completions.create(model="gpt-4o", messages=history, tools=[tool],
                                                           stream=stream, temperature=0.2)
                    if stream:
                        for _ in reply:
                            pass
                    history.append({"role": "assistant", "content": None, "tool_calls": [
                        {"id": f"call_{k}", "type": "function",
                         "function": {"name": "lookup", "arguments": orjson.dumps({"q": words(5, k)}).decode()}}]})
                    history.append({"role": "tool", "tool_call_id": f"call_{k}", "content": words(20, k)})
            with agentlog.run("openai responses"):
                items: list[Any] = [{"role": "user", "content": words(30, 9)}]
                for k in range(1, 4):
                    reply = client.responses.create(model="gpt-4o", instructions=LONG_SYSTEM, input=items,
                                                    stream=k == 2)
                    if k == 2:
                        for _ in reply:
                            pass
                    items.append({"type": "function_call", "call_id": f"fc_{k}", "name": "lookup",
                                  "arguments": orjson.dumps({"q": words(4, k)}).decode()})
                    items.append({"type": "function_call_output", "call_id": f"fc_{k}", "output": words(25, k)})
    finally:
        agentlog.uninstrument()
    _check(db, recorded, 7)


def test_anthropic_blocks_and_a_moving_cache_breakpoint_come_back_whole(db: Path, recorded: MemorySink) -> None:
    anthropic = pytest.importorskip("anthropic")
    from fakes.anthropic_fake import default

    agentlog.instrument("anthropic")
    try:
        with FakeServer(default=default) as srv:
            client = anthropic.Anthropic(base_url=srv.url, api_key="sk-ant-test-key-0000000000", max_retries=0)
            system: Any = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}]
            history: list[Any] = []
            with agentlog.run("anthropic"):
                for k in range(1, 6):
                    # The cache breakpoint sits on the newest user block only: the same message
                    # is sent with cache_control once and without it afterwards.
                    for m in history:
                        for block in m["content"] if isinstance(m["content"], list) else ():
                            block.pop("cache_control", None)
                    history.append({"role": "user", "content": [
                        {"type": "text", "text": words(30, k), "cache_control": {"type": "ephemeral"}}]})
                    stream = k % 2 == 1
                    reply = client.messages.create(model="claude-opus-4-1", max_tokens=200, system=system,
                                                   messages=history, stream=stream)
                    if stream:
                        for _ in reply:
                            pass
                    history.append({"role": "assistant", "content": [
                        {"type": "text", "text": words(10, k)},
                        {"type": "tool_use", "id": f"toolu_{k}", "name": "lookup", "input": {"q": words(3, k)}}]})
                    history.append({"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": f"toolu_{k}", "content": words(15, k)}]})
            client.close()
    finally:
        agentlog.uninstrument()
    _check(db, recorded, 5)


def test_gemini_contents_and_parts_come_back_whole(db: Path, recorded: MemorySink) -> None:
    pytest.importorskip("google.genai")
    from google import genai
    from google.genai import types

    from fakes.gemini_fake import default

    agentlog.instrument("google_genai")
    try:
        with FakeServer(default=default) as srv:
            client = genai.Client(api_key="AIza" + "0" * 35, http_options=types.HttpOptions(base_url=srv.url))
            config: Any = {"system_instruction": LONG_SYSTEM, "temperature": 0.1}
            contents: list[Any] = [{"role": "user", "parts": [{"text": words(30, 0)}]}]
            with agentlog.run("gemini"):
                for k in range(1, 5):
                    if k % 2:
                        client.models.generate_content(model="gemini-2.0-flash", contents=contents, config=config)
                    else:
                        for _ in client.models.generate_content_stream(model="gemini-2.0-flash",
                                                                       contents=contents, config=config):
                            pass
                    contents.append({"role": "model", "parts": [
                        {"function_call": {"name": "lookup", "args": {"q": words(3, k)}}}]})
                    contents.append({"role": "user", "parts": [
                        {"function_response": {"name": "lookup", "response": {"result": words(20, k)}}}]})
    finally:
        agentlog.uninstrument()
    _check(db, recorded, 4)


# -- the public producers -------------------------------------------------------------------------
def _conversation(calls: int, per_call: int = 2, size: int = 40) -> Iterator[dict[str, Any]]:
    messages: list[Any] = [{"role": "system", "content": LONG_SYSTEM}]
    for k in range(calls):
        for j in range(per_call):
            messages.append({"role": "user" if j % 2 == 0 else "assistant", "content": words(size, k * 10 + j)})
        yield {"model": "gpt-4o", "messages": list(messages), "temperature": 0}


def _record(db: Path, requests: Iterator[dict[str, Any]], **settings: Any) -> list[Event]:
    agentlog.configure(db, **settings)
    with capture_events() as sink, agentlog.run("conversation"):
        for request in requests:
            with agentlog.inference("openai", "gpt-4o", request) as call:
                call.delta("ok")
    agentlog.shutdown()
    return sink.events


def _request_bytes(db: Path) -> int:
    """What the requests take in the tables: llm.started payloads and refs, and the items."""
    rows = query(db, "SELECT coalesce(sum(length(payload) + coalesce(length(refs), 0)), 0) FROM al_events"
                     " WHERE type = 'llm.started'")
    items = query(db, "SELECT coalesce(sum(length(item) + length(hash) + coalesce(length(parent), 0)), 0)"
                      " FROM al_request_items")
    return int(rows[0][0]) + int(items[0][0])


def test_a_long_conversation_is_stored_in_linear_space(tmp_path: Path) -> None:
    """Each call adds two messages: the stored bytes grow with the calls, not with their square."""
    sizes = {}
    for calls in (40, 80):
        db = tmp_path / f"{calls}.db"
        events = _record(db, _conversation(calls))
        assert assert_requests_come_back(db, events) == calls
        sizes[calls] = _request_bytes(db)
        sent = sum(len(e.payload_json()) for e in events if e.type == "llm.started")
        assert sizes[calls] < sent / 8, (sizes[calls], sent)
        # each message once (the system prompt and 2 per call)
        assert query(db, "SELECT count(*) FROM al_request_items")[0][0] == 1 + 2 * calls
    assert 1.8 < sizes[80] / sizes[40] < 2.2, sizes  # whole requests: ~4x


def test_the_same_list_in_another_run_is_stored_once(db: Path) -> None:
    tools = [{"type": "function", "function": {"name": f"tool_{i}", "description": words(12, i)}} for i in range(3)]
    agentlog.configure(db)
    with capture_events() as sink:
        for r in range(3):
            with agentlog.run(f"run {r}"), agentlog.inference(
                "openai", "gpt-4o",
                {"messages": [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": words(30, r)}],
                 "tools": tools}):
                pass
    agentlog.shutdown()
    assert assert_requests_come_back(db, sink.events) == 3
    # tools: 3 items, the system prompt: 1, three different user messages: 3
    assert query(db, "SELECT count(*) FROM al_request_items")[0][0] == 7


def test_short_requests_and_other_values_stay_in_the_payload(db: Path) -> None:
    agentlog.configure(db)
    with capture_events() as sink, agentlog.run("short"):
        with agentlog.inference("openai", "gpt-4o", {"messages": [{"role": "user", "content": "hi"}]}):
            pass
        with agentlog.inference("openai", "gpt-4o", {"messages": [], "stop": ["\n"], "n": 1}):
            pass
        with agentlog.inference("openai", "gpt-4o", {"weird key": [words(50, 1)], "messages": "a string"}):
            pass
    agentlog.shutdown()
    assert assert_requests_come_back(db, sink.events) == 3
    assert refs_count(db) == (3, 0)


def test_a_redacted_secret_is_stored_nowhere(db: Path) -> None:
    """Redaction runs on the payload's JSON before the sink splits it: items carry the marker."""
    requests = [{"messages": [{"role": "system", "content": LONG_SYSTEM},
                              {"role": "user", "content": f"my key is {KEY}, {words(60, k)}"}] * (k + 1)}
                for k in range(3)]
    events = _record(db, iter(requests))
    assert assert_requests_come_back(db, events) == 3
    assert refs_count(db) == (3, 3)
    for name in ("agentlog.db", "agentlog.db-wal"):
        path = db.with_name(name)
        assert not path.exists() or KEY.encode() not in path.read_bytes()
    rows = query(db, "SELECT request FROM llm_calls")
    assert all("[REDACTED:openai_key]" in r[0] for r in rows)


def test_a_processor_changes_what_is_stored(db: Path) -> None:
    def shout(ev: Event) -> Event:
        if ev.type == "llm.started":
            for m in ev.payload["request"]["messages"]:
                m["content"] = m["content"].upper()
        return ev

    events = _record(db, _conversation(5), processors=[shout])
    assert assert_requests_come_back(db, events) == 5
    assert refs_count(db) == (5, 5)
    assert not query(db, "SELECT 1 FROM al_request_items WHERE item GLOB '*[a-z]x[0-9]*'")


def test_a_request_cut_by_max_event_bytes_is_kept_whole(db: Path) -> None:
    big = [{"role": "user", "content": words(4000, 1)}]
    events = _record(db, iter([{"messages": big}, {"messages": [{"role": "user", "content": words(200, 2)}]}]),
                     max_event_bytes=8_000, max_string_bytes=4_000)
    assert assert_requests_come_back(db, events) == 2
    rows = query(db, "SELECT refs, payload FROM al_events WHERE type = 'llm.started' ORDER BY seq")
    assert rows[0]["refs"] is None and "$truncated" in rows[0]["payload"]
    assert rows[1]["refs"] is not None


# -- several writers, failures ----------------------------------------------------------------
def _started(run_id: str, span: str, seq: int, request: dict[str, Any]) -> Event:
    return Event(type="llm.started", event_id=f"ev-{span}", ts=1_700_000_000_000_000 + seq, seq=seq,
                 run_id=run_id, span_id=span, payload={"provider": "openai", "model": "gpt-4o", "request": request})


def _read_requests(db: Path) -> dict[str, Any]:
    return {r["span_id"]: orjson.loads(r["payload"])["request"]
            for r in query(db, "SELECT span_id, payload FROM events WHERE type = 'llm.started'")}


def test_a_run_shared_by_two_writers_reads_back(db: Path) -> None:
    """Each writer refers to items the other stored (its own hint is stale); nothing is missing."""
    a, b = SQLiteSink(db), SQLiteSink(db)
    requests = list(_conversation(6))
    try:
        a.write([_started("run", "s0", 1, requests[0])])
        b.write([_started("run", "s1", 2, requests[1])])  # b has no hint: finds a's items by search
        a.write([_started("run", "s2", 3, requests[2])])  # a's hint is s0's tail, b stored s1's
        b.write([_started("run", "s3", 4, requests[3]), _started("run", "s4", 5, requests[4])])
        a.write([_started("run", "s5", 6, requests[5])])
    finally:
        a.close()
        b.close()
    assert _read_requests(db) == {f"s{k}": requests[k] for k in range(6)}
    assert query(db, "SELECT count(*) FROM al_request_items")[0][0] == 1 + 2 * 6


_SHARED_RUN = """
import sys, agentlog
db, who = sys.argv[1], sys.argv[2]
agentlog.configure(db)
msgs = [{"role": "system", "content": "You are a careful assistant. " * 40}]
with agentlog.run(run_id="shared-run"):
    for k in range(30):
        msgs.append({"role": "user", "content": f"question {k} " * 30})
        with agentlog.inference("openai", "gpt-4o", {"messages": list(msgs)}, name=f"{who}-{k}"):
            pass
        msgs.append({"role": "assistant", "content": f"answer {k} from {who if k >= 4 else 'both'} " * 20})
agentlog.shutdown()
"""


def test_a_run_shared_by_two_processes_reads_back(db: Path) -> None:
    """Two processes record the same run at once, with the same first ten messages and then
    each its own: every request reads back, and the shared messages are stored once."""
    env = {k: v for k, v in os.environ.items() if k != "AGENTLOG_STRICT"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(_SHARED_RUN), str(db), who], env=env,
                              stderr=subprocess.PIPE, text=True) for who in ("A", "B")]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    got = {r["name"]: orjson.loads(r["request"]) for r in query(
        db, "SELECT s.name, l.request FROM llm_calls l JOIN spans s USING (span_id) WHERE l.run_id = 'shared-run'")}
    for who in ("A", "B"):
        msgs: list[Any] = [{"role": "system", "content": "You are a careful assistant. " * 40}]
        for k in range(30):
            msgs.append({"role": "user", "content": f"question {k} " * 30})
            assert got[f"{who}-{k}"] == {"messages": msgs}, f"{who}-{k}"
            msgs.append({"role": "assistant", "content": f"answer {k} from {who if k >= 4 else 'both'} " * 20})
    assert refs_count(db) == (60, 60)
    # shared: the system prompt, questions 0-4 and answers 0-3; then each its own 25 questions
    # and 25 answers (answer 29 is never sent)
    assert query(db, "SELECT count(*) FROM al_request_items")[0][0] == 10 + 2 * (25 + 25)


def test_a_reply_whose_request_was_written_by_an_earlier_batch_joins_the_conversation(tmp_path: Path) -> None:
    """The sink reads a request back (through the events view) to chain the reply to it when the
    request came in an earlier batch: the messages view is the same as with one batch."""
    requests = list(_conversation(3))

    def finished(span: str, seq: int) -> Event:
        return Event(type="llm.finished", event_id=f"ev-{span}-end", ts=1_700_000_000_000_000 + seq, seq=seq,
                     run_id="run", span_id=span, payload={"response_text": f"reply of {span}", "status": "ok"})

    events = []
    for k, request in enumerate(requests):
        events += [_started("run", f"s{k}", 2 * k + 1, request), finished(f"s{k}", 2 * k + 2)]
    views = []
    for batches in ([events], [[e] for e in events]):
        db = tmp_path / f"{len(batches)}.db"
        sink = SQLiteSink(db)
        try:
            for batch in batches:
                sink.write(batch)
        finally:
            sink.close()
        views.append([tuple(r) for r in query(db, "SELECT position, role, content, direction, span_id FROM messages"
                                                  " ORDER BY position")])
    assert views[0] == views[1]
    assert [r[3] for r in views[0]].count("output") == 3


def test_items_of_a_refused_event_are_not_referred_to(db: Path) -> None:
    """A batch with a refused event is written again event by event: the refused event's items
    go with it, and a later request that shares them stores them itself, in the same batch and in
    a later one (where the writer's hint names an item that was rolled back)."""
    sink = SQLiteSink(db)
    requests = list(_conversation(4))
    try:
        sink.write([_started("run", "s0", 1, requests[0])])
        conn = sqlite3.connect(db)
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON al_events WHEN NEW.span_id = 's1'"
                     " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
        conn.commit()
        sink.write([_started("run", "s1", 2, requests[1]), _started("run", "s2", 3, requests[2])])
        conn.execute("DROP TRIGGER refuse")
        conn.commit()
        conn.close()
        sink.write([_started("run", "s3", 4, requests[3])])
        assert sink.take_rejected() == 1
    finally:
        sink.close()
    assert _read_requests(db) == {"s0": requests[0], "s2": requests[2], "s3": requests[3]}


def test_old_rows_stored_whole_still_read_after_the_migration(tmp_path: Path) -> None:
    """A store written by schema version 2 (requests whole) migrates and reads the same."""
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE al_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied_at INTEGER NOT NULL)")
    for mig in load_migrations()[:2]:
        conn.executescript(mig.sql)
        conn.execute("INSERT INTO al_migrations VALUES (?, ?, 0)", (mig.version, mig.name))
    requests = list(_conversation(3))
    for k, request in enumerate(requests):
        payload = {"provider": "openai", "model": "gpt-4o", "request": request, "messages": request["messages"]}
        conn.execute("INSERT INTO al_events (event_id, run_id, span_id, seq, ts, type, payload)"
                     " VALUES (?, 'old-run', ?, ?, ?, 'llm.started', ?)",
                     (f"e{k}", f"s{k}", k + 1, 1_700_000_000_000_000 + k, orjson.dumps(payload).decode()))
        conn.execute("INSERT INTO al_spans (span_id, run_id, kind, started_at) VALUES (?, 'old-run', 'llm', ?)",
                     (f"s{k}", 1_700_000_000_000_000 + k))
    conn.execute("INSERT INTO al_runs (run_id, started_at) VALUES ('old-run', 1700000000000000)")
    conn.close()

    sink = SQLiteSink(db)  # opening for writing migrates to version 3
    try:
        sink.write([_started("old-run", "s3", 4, next(iter(_conversation(4, size=41))))])
    finally:
        sink.close()
    assert query(db, "SELECT max(version) FROM al_migrations")[0][0] == 3
    with agentlog.open(db) as store:
        detail = store.run("old-run")
        events = store.events("old-run")
    assert [c["request"] for c in detail.llm_calls[:3]] == requests
    assert [e.payload["request"] for e in events[:3]] == requests
    assert [e.payload["messages"] for e in events[:3]] == [r["messages"] for r in requests]
    assert _read_requests(db)["s0"] == requests[0]
    assert refs_count(db) == (4, 1)


# -- the splitter: only new items hashed, the same names as hashing all -------------------------
def test_the_splitter_names_a_continued_list_as_if_it_hashed_every_item() -> None:
    """A list that continues the last one is hashed from where that one ended; any other list
    (edited, shortened, the same resent, a value that only starts like the last one) from the
    start. Either way the names are those of the whole chain."""
    from agentlog.sinks._requests import Splitter, chain_of

    def payload(values: list[Any]) -> bytes:
        return orjson.dumps({"request": {"messages": values, "pad": {"x": "y" * 400}}})

    base: list[Any] = [{"role": "system", "content": LONG_SYSTEM}, {"role": "user", "content": words(20, 1)}]
    sequence: list[list[Any]] = [
        base,
        [*base, {"role": "assistant", "content": "a"}, {"role": "user", "content": 12}],
        [*base, {"role": "assistant", "content": "a"}, {"role": "user", "content": 123}],  # 12 -> 123
        [*base, {"role": "assistant", "content": "a"}, {"role": "user", "content": 123}],  # the same again
        [*base, {"role": "assistant", "content": "a"}, {"role": "user", "content": 123}, 4, 5],
        [*base],  # shortened
        [{"role": "system", "content": LONG_SYSTEM + "!"}, *base[1:]],  # an earlier item edited
        [{"role": "system", "content": LONG_SYSTEM + "!"}, *base[1:], 6],
    ]
    splitter = Splitter()
    continued = []
    for values in sequence:
        split = splitter.split("run", payload(values))
        assert split is not None
        (part,) = split[2]
        whole, _ = chain_of(values)
        assert part.tail == whole[-1][0]
        assert part.whole() == whole
        assert part.items == (whole if part.base is None else whole[len(whole) - len(part.items):])
        continued.append(part.base is not None)
    assert continued == [False, True, False, True, True, False, False, True]


@pytest.mark.parametrize("change", ["append", "edit_early", "same_length_tools", "scalar", "none"])
def test_the_splitter_follows_the_json_when_the_objects_changed_since(change: str) -> None:
    """The payload objects only say where the parts are, to spare parsing the JSON: what is
    split is the JSON as encoded, even when the host changed the objects since (a message
    appended to its list after the call, say)."""
    from agentlog.sinks._requests import Splitter

    def request() -> dict[str, Any]:
        return {"request": {"model": "gpt-4o", "temperature": 0.5,
                            "messages": [{"role": "system", "content": LONG_SYSTEM},
                                         {"role": "user", "content": words(60, 1)}],
                            "tools": [{"name": "lookup", "description": words(30, 2)}]}}

    live = request()
    encoded = orjson.dumps(live)
    messages, tools = live["request"]["messages"], live["request"]["tools"]
    if change == "append":
        messages.append({"role": "user", "content": "appended by the host after the call " + KEY})
    elif change == "edit_early":
        messages[0]["content"] = LONG_SYSTEM.upper()
    elif change == "same_length_tools":
        tools[0]["description"] = tools[0]["description"].upper()
    elif change == "scalar":
        live["request"]["temperature"] = 0.7
    before = orjson.dumps(live)
    split = Splitter().split("run", encoded, live)
    assert split == Splitter().split("run", encoded)  # as from the parsed JSON
    assert orjson.dumps(live) == before  # the objects are left as they were
    assert split is not None
    payload, refs, parts = split
    assert orjson.loads(payload) == {"request": {"model": "gpt-4o", "temperature": 0.5, "messages": None,
                                                 "tools": None}}
    assert orjson.loads(refs) == [["$.request.messages", parts[0].tail, 2], ["$.request.tools", parts[1].tail, 1]]
    original = request()["request"]
    assert [orjson.loads(item[2]) for item in parts[0].whole()] == original["messages"]
    assert [orjson.loads(item[2]) for item in parts[1].whole()] == original["tools"]


def test_rows_keep_their_publish_order_when_a_request_is_stored_by_reference(db: Path) -> None:
    """al_events' rowid follows the order events were published in, split requests or not."""
    events = _record(db, _conversation(6), keep_deltas=True)
    assert refs_count(db)[1] > 0  # requests were stored by reference
    published = [(e.type, e.seq) for e in events if e.run_id is not None]
    stored = [tuple(r) for r in query(db, "SELECT type, seq FROM al_events ORDER BY id")]
    assert stored == published
