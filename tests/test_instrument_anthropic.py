"""Anthropic capture: the official client over real HTTP to the fake provider, asserted in the views."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

anthropic = pytest.importorskip("anthropic")

import agentlog  # noqa: E402

from fakes._server import FakeServer  # noqa: E402
from fakes.anthropic_fake import error, message, message_stream  # noqa: E402
from helpers import query  # noqa: E402

MODEL = "claude-sonnet-4-6"
KEY = "sk-ant-api03-secret-key-for-tests"
USAGE = {"input_tokens": 21, "output_tokens": 34, "cache_read_input_tokens": 1500,
         "cache_creation_input_tokens": 120}
ASK = {"model": MODEL, "max_tokens": 256, "system": "Be brief.",
       "messages": [{"role": "user", "content": "Weather in Paris?"}]}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _capture(db: Path, server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    server.script.clear()
    agentlog.configure(db)
    agentlog.instrument("anthropic")
    yield
    agentlog.uninstrument()


@pytest.fixture
def client(server: FakeServer) -> Any:
    return anthropic.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)


def _calls(db: Path) -> list[Any]:
    assert agentlog.flush(5)
    return query(db, "SELECT * FROM llm_calls ORDER BY started_at")


def test_message_with_thinking_tool_use_and_cache_usage(db: Path, server: FakeServer, client: Any) -> None:
    server.push(message("Checking.", thinking="The user wants weather.",
                        tool_uses=[("toolu_01", "get_weather", {"city": "Paris"})],
                        usage=USAGE, request_id="req_011abc", model="claude-sonnet-4-5"))
    with agentlog.run("weather"):
        msg = client.messages.create(**ASK)
    assert msg.content[-1].name == "get_weather"  # the caller's result is untouched
    (call,) = _calls(db)
    assert (call["provider"], call["model"], call["status"]) == ("anthropic", "claude-sonnet-4-5", "ok")
    assert call["response_text"] == "Checking." and call["reasoning_text"] == "The user wants weather."
    assert call["stop_reason"] == "tool_use" and call["request_id"] == "req_011abc"
    # input_tokens excludes the cache at Anthropic; agentlog's includes it, once.
    assert (call["input_tokens"], call["cached_tokens"], call["cache_write_tokens"], call["output_tokens"]) == (
        21 + 1500 + 120, 1500, 120, 34)
    assert call["cost_usd"] == pytest.approx((21 * 3.0 + 1500 * 0.3 + 120 * 3.75 + 34 * 15.0) / 1e6)
    request = json.loads(call["request"])
    assert request["max_tokens"] == 256 and request["system"] == "Be brief."
    (tool,) = query(db, "SELECT * FROM tool_calls")
    assert (tool["tool_call_id"], tool["name"], tool["status"]) == ("toolu_01", "get_weather", "requested")
    assert json.loads(tool["arguments"]) == {"city": "Paris"}
    msgs = query(db, "SELECT role, content FROM messages ORDER BY position")
    assert [(m["role"], m["content"]) for m in msgs] == [
        ("system", "Be brief."), ("user", "Weather in Paris?"), ("assistant", "Checking.")]


def test_stream_records_deltas_tool_input_and_cumulative_usage(db: Path, server: FakeServer, client: Any) -> None:
    server.push(message_stream(["Hel", "lo ", "there"], thinking_chunks=["hm", "m"],
                               tool_uses=[("toolu_2", "lookup", ['{"id"', ': 42}'])], usage=USAGE))
    stream = client.messages.create(**ASK, stream=True)
    assert type(stream).__name__ == "Stream"  # the SDK's own type
    events = [e.type for e in stream]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    (call,) = _calls(db)
    assert call["response_text"] == "Hello there" and call["reasoning_text"] == "hmm"
    assert call["output_tokens"] == 34 and call["input_tokens"] == 1641  # cumulative, not summed
    assert call["status"] == "ok" and call["ttft_ms"] is not None
    (tool,) = query(db, "SELECT * FROM tool_calls")
    assert json.loads(tool["arguments"]) == {"id": 42}


def test_messages_stream_helper_is_recorded_once(db: Path, server: FakeServer, client: Any) -> None:
    server.push(message_stream(["One ", "two."], usage=USAGE))
    with client.messages.stream(**ASK) as stream:
        assert "".join(stream.text_stream) == "One two."
        final = stream.get_final_message()
    assert final.usage.output_tokens == 34
    (call,) = _calls(db)
    assert call["response_text"] == "One two." and call["status"] == "ok"


def test_async_client_and_async_stream(db: Path, server: FakeServer) -> None:
    server.push(message("async hi", usage=USAGE), message_stream(["a", "b"], usage=USAGE))

    async def main() -> None:
        client = anthropic.AsyncAnthropic(base_url=server.url, api_key=KEY, max_retries=0)
        await client.messages.create(**ASK)
        stream = await client.messages.create(**ASK, stream=True)
        async for _ in stream:
            pass

    asyncio.run(main())
    calls = _calls(db)
    assert [c["response_text"] for c in calls] == ["async hi", "ab"]


def test_http_error_is_recorded_with_the_provider_payload_and_reraised(
    db: Path, server: FakeServer, client: Any
) -> None:
    server.push(error(429, "Number of request tokens has exceeded your rate limit", request_id="req_rl"))
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(**ASK)
    assert caught.value.status_code == 429
    (call,) = _calls(db)
    assert call["status"] == "error" and "rate limit" in call["error"]
    (ev,) = query(db, "SELECT payload FROM events WHERE type = 'llm.error'")
    err = json.loads(ev["payload"])["error"]
    assert err["http_status"] == 429 and err["kind"] == "rate_limit" and err["request_id"] == "req_rl"
    assert err["body"]["error"]["type"] == "rate_limit_error"


def test_error_event_mid_stream_keeps_partial_text(db: Path, server: FakeServer, client: Any) -> None:
    server.push(message_stream(["partial ", "answer"], error_event="overloaded_error", usage=USAGE))
    with pytest.raises(anthropic.APIStatusError):
        for _ in client.messages.create(**ASK, stream=True):
            pass
    (call,) = _calls(db)
    assert call["status"] == "error" and call["response_text"] == "partial answer"
    (ev,) = query(db, "SELECT payload FROM events WHERE type = 'llm.error'")
    error = json.loads(ev["payload"])["error"]
    assert error["kind"] == "overloaded" and error["body"]["error"]["type"] == "overloaded_error"
    # The usage of message_start (sent before the failure) is kept: it was billed.
    assert call["input_tokens"] == 1641 and call["cost_usd"] is not None


def test_cut_connection_is_an_error_with_partial_text(db: Path, server: FakeServer, client: Any) -> None:
    server.push(message_stream(["only ", "this ", "much ", "of it"], cut_after=5, usage=USAGE))
    with pytest.raises(Exception):  # noqa: B017 - the transport's own error class
        for _ in client.messages.create(**ASK, stream=True):
            pass
    (call,) = _calls(db)
    assert call["status"] == "error" and call["response_text"]
    (ev,) = query(db, "SELECT payload FROM events WHERE type = 'llm.error'")
    assert json.loads(ev["payload"])["error"]["kind"] == "connection"


def test_stream_closed_early_is_interrupted_with_partial_text(db: Path, server: FakeServer, client: Any) -> None:
    server.push(message_stream(["first ", "second ", "third"], usage=USAGE))
    with client.messages.create(**ASK, stream=True) as stream:
        for event in stream:
            if event.type == "content_block_delta":
                break  # leave after the first chunk
    (call,) = _calls(db)
    assert call["status"] == "interrupted" and call["response_text"] == "first "


def test_stream_dropped_unfinished_is_interrupted_when_collected(db: Path, server: FakeServer, client: Any) -> None:
    server.push(message_stream(["never ", "finished"], usage=USAGE))
    stream = client.messages.create(**ASK, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    (call,) = _calls(db)
    assert call["status"] == "interrupted"


def test_with_raw_response_still_works(db: Path, server: FakeServer, client: Any) -> None:
    server.push(message("raw", usage=USAGE, request_id="req_raw"))
    raw = client.messages.with_raw_response.create(**ASK)
    assert raw.headers["request-id"] == "req_raw"
    assert raw.parse().content[0].text == "raw"
    (call,) = _calls(db)
    assert call["response_text"] == "raw" and call["status"] == "ok"


def test_request_holds_only_the_fields_sent(db: Path, server: FakeServer, client: Any) -> None:
    """The SDK's "not given" placeholders (Omit) are left out, as they are on the wire."""
    server.push(message("hi", usage=USAGE))
    client.messages.create(**ASK)
    (call,) = _calls(db)
    request = json.loads(call["request"])
    sent = server.received[-1].body
    assert set(request) == set(sent)
    assert "Omit" not in call["request"] and "tools" not in request


def test_api_key_never_reaches_the_database(db: Path, server: FakeServer, client: Any) -> None:
    server.push(message("ok", usage=USAGE))
    client.messages.create(**ASK)
    assert server.received[-1].header("authorization") == f"Bearer {KEY}"  # it was sent...
    _calls(db)
    agentlog.shutdown()
    for path in db.parent.glob(db.name + "*"):
        assert KEY.encode() not in path.read_bytes()  # ...and never stored


def test_instrumenting_twice_records_once_and_uninstrument_stops(db: Path, server: FakeServer, client: Any) -> None:
    agentlog.instrument("anthropic")
    server.push(message("once", usage=USAGE), message("never", usage=USAGE))
    client.messages.create(**ASK)
    agentlog.uninstrument("anthropic")
    client.messages.create(**ASK)
    assert [c["response_text"] for c in _calls(db)] == ["once"]


def test_a_single_client_can_be_instrumented(db: Path, server: FakeServer) -> None:
    agentlog.uninstrument()
    watched = anthropic.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)
    other = anthropic.Anthropic(base_url=server.url, api_key=KEY, max_retries=0)
    assert agentlog.instrument(watched) == ["anthropic"]
    server.push(message("watched", usage=USAGE), message("other", usage=USAGE))
    watched.messages.create(**ASK)
    other.messages.create(**ASK)
    assert [c["response_text"] for c in _calls(db)] == ["watched"]


def test_capture_http_records_raw_bodies_and_sse_without_credentials(
    db: Path, server: FakeServer, client: Any
) -> None:
    agentlog.instrument("anthropic", capture_http=True)
    server.push(message("plain", usage=USAGE), message_stream(["str", "eam"], usage=USAGE))
    client.messages.create(**ASK)
    for _ in client.messages.create(**ASK, stream=True):
        pass
    assert agentlog.flush(5)
    rows = query(db, "SELECT payload FROM events WHERE type = 'llm.http' ORDER BY seq")
    plain, streamed = (json.loads(r["payload"]) for r in rows)
    assert plain["request"]["method"] == "POST" and plain["request"]["url"].endswith("/v1/messages")
    assert json.loads(plain["request"]["body"])["max_tokens"] == 256
    assert plain["request"]["headers"]["authorization"] == "[REDACTED]"
    assert json.loads(plain["response"]["body"])["content"][0]["text"] == "plain"
    assert plain["response"]["status"] == 200
    assert "event: content_block_delta" in streamed["response"]["body"]
    agentlog.shutdown()
    for path in db.parent.glob(db.name + "*"):
        assert KEY.encode() not in path.read_bytes()


def test_a_stream_still_open_at_exit_is_not_left_running(db: Path, server: FakeServer) -> None:
    import subprocess
    import sys
    import textwrap

    server.push(message_stream(["left ", "open"], usage=USAGE, chunk_delay=0.05))
    code = textwrap.dedent(f"""
        import anthropic, agentlog
        agentlog.configure({str(db)!r})
        agentlog.instrument("anthropic")
        client = anthropic.Anthropic(base_url={server.url!r}, api_key="k", max_retries=0)
        stream = client.messages.create(**{ASK!r}, stream=True)
        next(iter(stream))
        KEEP = stream   # still referenced when the interpreter exits
    """)
    env = {**__import__("os").environ, "ANTHROPIC_OPEN_TELEMETRY": "false"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    (call,) = query(db, "SELECT status FROM llm_calls")
    assert call["status"] == "interrupted"


def test_with_streaming_response_parsed_twice_is_followed_once(db: Path, server: FakeServer, client: Any) -> None:
    server.push(message_stream(["a ", "b"], usage=USAGE))
    with client.messages.with_streaming_response.create(**ASK, stream=True) as response:
        stream = response.parse()
        assert response.parse() is stream  # the SDK's cached result
        for _ in stream:
            pass
    (call,) = _calls(db)
    assert call["response_text"] == "a b" and call["status"] == "ok"


def test_with_streaming_response_read_as_raw_lines_is_closed(db: Path, server: FakeServer, client: Any) -> None:
    server.push(message("raw lines", usage=USAGE))
    with client.messages.with_streaming_response.create(**ASK) as response:
        body = b"".join(response.iter_bytes())
    assert b"raw lines" in body
    (call,) = _calls(db)
    assert call["status"] == "ok"  # ended when the response closed, not left running
