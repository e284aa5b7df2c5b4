"""The fake Anthropic provider speaks the real wire format: proven with the official SDK.

Every builder in ``fakes.anthropic_fake`` is sent over real HTTP to the
*uninstrumented* ``anthropic`` client, which must parse it into the values the
builder was given. The clients run with ``_strict_response_validation=True``,
so every JSON body and SSE payload is also validated against the SDK's pydantic
types (by default the SDK constructs models without validating, which would
hide a malformed fake). The recorded requests show what the SDK puts on the wire.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

anthropic = pytest.importorskip("anthropic")
httpx2 = pytest.importorskip("httpx2")

from anthropic.types import Message, RawMessageStreamEvent  # noqa: E402
from anthropic.types.shared import ErrorResponse  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402

from fakes._server import FakeServer  # noqa: E402
from fakes.anthropic_fake import (  # noqa: E402
    default,
    error,
    message,
    message_stream,
    message_stream_events,
    new_id,
)

# A current model: the SDK emits a DeprecationWarning when a request names
# claude-sonnet-4-5 (the builders' default *response* model is fine).
MODEL = "claude-sonnet-4-6"
API_KEY = "sk-ant-test"
KW: dict[str, Any] = {
    "model": MODEL,
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Say hello."}],
}
USAGE = {
    "input_tokens": 21,
    "output_tokens": 34,
    "cache_read_input_tokens": 1500,
    "cache_creation_input_tokens": 120,
}
WEATHER = ("toolu_01A09q90qw90lq917835lq9", "get_weather", {"city": "Paris", "unit": "celsius"})


@pytest.fixture(autouse=True)
def _no_sdk_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    # anthropic 2.x traces its own calls when OpenTelemetry is importable; read at client construction.
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    # Nothing from the developer's environment may change what the client sends.
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_CUSTOM_HEADERS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def _shared_server() -> Iterator[FakeServer]:
    with FakeServer() as s:
        yield s


@pytest.fixture
def server(_shared_server: FakeServer) -> FakeServer:
    """One server for the module, emptied for each test.

    Shared because stopping a FakeServer waits out ``serve_forever``'s 0.5 s poll.
    """
    _shared_server.script.clear()
    _shared_server.received.clear()
    return _shared_server


def make_client(server: FakeServer, **options: Any) -> Any:
    options = {"max_retries": 0, "_strict_response_validation": True, **options}
    return anthropic.Anthropic(base_url=server.url, api_key=API_KEY, **options)


def make_async_client(server: FakeServer, **options: Any) -> Any:
    options = {"max_retries": 0, "_strict_response_validation": True, **options}
    return anthropic.AsyncAnthropic(base_url=server.url, api_key=API_KEY, **options)


@pytest.fixture
def client(server: FakeServer) -> Iterator[Any]:
    c = make_client(server)
    yield c
    c.close()


def wire_event_names(reply_sse: list[tuple[str | None, Any]]) -> list[str | None]:
    return [name for name, _ in reply_sse]


# -- the builders match the SDK's own types, field for field ---------------------------


def test_builders_validate_against_sdk_types() -> None:
    Message.model_validate(message("hi", thinking="hmm", tool_uses=[WEATHER], usage=USAGE).json)
    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    events = message_stream_events(
        ["a", "b"],
        thinking_chunks=["t"],
        tool_uses=[("toolu_01x", "f", ['{"a"', ": 1}"])],
        usage=USAGE,
    )
    for name, data in events:
        if name == "ping":
            assert data == {"type": "ping"}
            continue
        assert (
            adapter.validate_python(data).type == name
        )  # the SSE event name is the payload's type
    for status in (400, 401, 429, 500, 529):
        body = error(status, "boom").json
        assert ErrorResponse.model_validate(body).error.message == "boom"


def test_ids_look_like_anthropic_ids() -> None:
    assert new_id("msg").startswith("msg_01")
    assert new_id("toolu").startswith("toolu_01")
    assert new_id("req").startswith("req_011C")
    assert new_id("msg") != new_id("msg")


# -- non-streaming ------------------------------------------------------------------------


def test_text_message_and_usage(server: FakeServer, client: Any) -> None:
    server.push(
        message("Hello!", model=MODEL, usage=USAGE, id="msg_01abc", request_id="req_011Cxyz")
    )

    msg = client.messages.create(**KW)

    assert msg.id == "msg_01abc"
    assert msg.model == MODEL
    assert msg.role == "assistant"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "Hello!"
    assert msg.stop_reason == "end_turn"
    assert msg.stop_sequence is None
    assert msg.usage.input_tokens == 21
    assert msg.usage.output_tokens == 34
    assert msg.usage.cache_read_input_tokens == 1500
    assert msg.usage.cache_creation_input_tokens == 120
    assert msg.usage.cache_creation.ephemeral_5m_input_tokens == 120
    assert msg._request_id == "req_011Cxyz"


def test_thinking_and_tool_use_blocks(server: FakeServer, client: Any) -> None:
    server.push(
        message(
            "Let me check.",
            thinking=("The user wants weather.", "EqSIGNATURE=="),
            tool_uses=[WEATHER, ("toolu_01second", "get_time", {"tz": "Europe/Paris"})],
        )
    )

    msg = client.messages.create(**KW)

    assert [b.type for b in msg.content] == ["thinking", "text", "tool_use", "tool_use"]
    thinking, text, tool, tool2 = msg.content
    assert thinking.thinking == "The user wants weather."
    assert thinking.signature == "EqSIGNATURE=="
    assert text.text == "Let me check."
    assert (tool.id, tool.name, tool.input) == WEATHER
    assert tool2.input == {"tz": "Europe/Paris"}
    assert msg.stop_reason == "tool_use"  # the default when the model calls tools
    assert msg.usage.output_tokens >= 1


def test_stop_reasons(server: FakeServer, client: Any) -> None:
    server.push(message("cut sh", stop_reason="max_tokens"), message("x", stop_sequence="END"))
    assert client.messages.create(**KW).stop_reason == "max_tokens"
    msg = client.messages.create(**KW)
    assert (msg.stop_reason, msg.stop_sequence) == ("stop_sequence", "END")


def test_with_raw_response_headers(server: FakeServer, client: Any) -> None:
    server.push(
        message("hi", request_id="req_011Craw", headers={"anthropic-organization-id": "org-1"})
    )

    raw = client.messages.with_raw_response.create(**KW)

    assert raw.status_code == 200
    assert raw.headers["request-id"] == "req_011Craw"
    assert raw.request_id == "req_011Craw"
    assert raw.headers["anthropic-organization-id"] == "org-1"
    assert raw.parse().content[0].text == "hi"


def test_request_recorded_with_auth_headers(server: FakeServer, client: Any) -> None:
    server.push(message("hi"))
    tool = {"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}
    # 2.12's messages.create has no temperature/top_p/top_k parameters: they go through extra_body.
    client.messages.create(
        **KW,
        system="Be brief.",
        stop_sequences=["END"],
        tools=[tool],
        extra_body={"temperature": 0.2},
    )

    (req,) = server.received
    assert (req.method, req.path, req.query) == ("POST", "/v1/messages", "")
    assert req.body == {
        **KW,
        "system": "Be brief.",
        "stop_sequences": ["END"],
        "tools": [tool],
        "temperature": 0.2,
    }
    # anthropic 2.x authenticates an api_key with a Bearer token and sends no x-api-key.
    assert req.header("authorization") == f"Bearer {API_KEY}"
    assert req.header("x-api-key") is None
    assert req.header("anthropic-version")  # a date, e.g. 2026-10-21 in 2.12
    assert req.header("content-type") == "application/json"
    assert (req.header("user-agent") or "").startswith("Anthropic/Python ")
    assert req.header("x-stainless-retry-count") == "0"


def test_auth_token_is_also_a_bearer(server: FakeServer) -> None:
    server.push(message("hi"))
    c = anthropic.Anthropic(base_url=server.url, auth_token="tok-123", max_retries=0)
    try:
        c.messages.create(**KW)
    finally:
        c.close()
    assert server.received[0].header("authorization") == "Bearer tok-123"
    assert server.received[0].header("x-api-key") is None


def test_base_url_is_the_server_root(server: FakeServer) -> None:
    # The SDK appends /v1/messages itself: a base_url ending in /v1 doubles it.
    server.push(message("hi"))
    c = make_client(server)
    c.base_url = f"{server.url}/v1"
    try:
        c.messages.create(**KW)
    finally:
        c.close()
    assert server.received[0].path == "/v1/v1/messages"


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "exc_name", "err_type"),
    [
        (400, "BadRequestError", "invalid_request_error"),
        (401, "AuthenticationError", "authentication_error"),
        (429, "RateLimitError", "rate_limit_error"),
        (500, "InternalServerError", "api_error"),
        (529, "OverloadedError", "overloaded_error"),
    ],
)
def test_error_status_raises_sdk_exception(
    server: FakeServer, client: Any, status: int, exc_name: str, err_type: str
) -> None:
    server.push(error(status, "it went wrong", request_id="req_011Cerr"))

    with pytest.raises(getattr(anthropic, exc_name)) as info:
        client.messages.create(**KW)

    err = info.value
    assert type(err) is getattr(anthropic, exc_name)
    assert err.status_code == status
    assert err.request_id == "req_011Cerr"  # from the header
    assert err.body == {
        "type": "error",
        "error": {"type": err_type, "message": "it went wrong"},
        "request_id": "req_011Cerr",
    }
    assert err.type == err_type
    assert err.api_message == "it went wrong"


def test_error_type_override_and_retry_after(server: FakeServer) -> None:
    # The SDK honours retry-after (seconds, floats accepted) when it retries.
    server.push(error(429, retry_after=0.01), message("after the wait"))
    c = make_client(server, max_retries=1)
    try:
        assert c.messages.create(**KW).content[0].text == "after the wait"
    finally:
        c.close()
    assert [r.header("x-stainless-retry-count") for r in server.received] == ["0", "1"]

    reply = error(500, "x", type="overloaded_error", retry_after=3, should_retry=False)
    assert reply.json["error"]["type"] == "overloaded_error"
    assert reply.headers["retry-after"] == "3"
    assert reply.headers["x-should-retry"] == "false"


def test_should_retry_false_stops_sdk_retries(server: FakeServer) -> None:
    server.push(error(529, should_retry=False))
    c = make_client(server, max_retries=2)
    try:
        with pytest.raises(anthropic.OverloadedError):
            c.messages.create(**KW)
    finally:
        c.close()
    assert len(server.received) == 1


# -- streaming: raw events ----------------------------------------------------------------


def test_stream_raw_events(server: FakeServer, client: Any) -> None:
    reply = message_stream(
        ["Hel", "lo", "!"], model=MODEL, usage=USAGE, id="msg_01stream", request_id="req_011Cs"
    )
    server.push(reply)

    stream = client.messages.create(**KW, stream=True)
    events = list(stream)

    # The SDK swallows the ping; everything else arrives in wire order.
    assert "ping" in wire_event_names(reply.sse or [])
    assert [e.type for e in events] == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, block_start = events[:2]
    assert start.message.id == "msg_01stream"
    assert start.message.content == []
    assert start.message.stop_reason is None
    assert start.message.usage.input_tokens == 21
    assert start.message.usage.cache_read_input_tokens == 1500
    assert start.message.usage.cache_creation_input_tokens == 120
    assert start.message.usage.output_tokens == 1  # small on message_start
    assert block_start.content_block.type == "text"
    assert "".join(e.delta.text for e in events[2:5]) == "Hello!"
    delta = events[6]
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == 34  # cumulative: the final count, not an increment
    assert delta.usage.input_tokens == 21  # the first-party API repeats input/cache usage here
    assert stream.response.headers["request-id"] == "req_011Cs"


def test_stream_wire_has_ping_and_named_events(server: FakeServer, client: Any) -> None:
    server.push(message_stream(["a"]))
    with client.messages.with_streaming_response.create(**KW, stream=True) as resp:
        assert resp.headers["content-type"] == "text/event-stream"
        lines = list(resp.iter_lines())
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert [d["type"] for d in data] == names  # each payload's type repeats its event name


# -- streaming: the MessageStream helper --------------------------------------------------


def test_stream_helper_text_and_final_message(server: FakeServer, client: Any) -> None:
    server.push(message_stream(["Hello", ", ", "world"], usage=USAGE, request_id="req_011Chelper"))

    with client.messages.stream(**KW) as stream:
        assert stream.request_id == "req_011Chelper"
        assert list(stream.text_stream) == ["Hello", ", ", "world"]
        final = stream.get_final_message()

    assert final.content[0].text == "Hello, world"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 34  # message_delta's cumulative count replaced the 1
    assert final.usage.input_tokens == 21
    assert final.usage.cache_read_input_tokens == 1500
    assert final.usage.cache_creation_input_tokens == 120


def test_stream_helper_thinking_and_tool_use(server: FakeServer, client: Any) -> None:
    server.push(
        message_stream(
            ["Checking."],
            thinking_chunks=["The user ", "wants weather."],
            signature="EqSIG==",
            tool_uses=[("toolu_01w", "get_weather", ['{"city": ', '"Par', 'is"}']), WEATHER],
        )
    )

    with client.messages.stream(**KW) as stream:
        stream.until_done()
        final = stream.get_final_message()

    assert [b.type for b in final.content] == ["thinking", "text", "tool_use", "tool_use"]
    thinking, text, tool, tool2 = final.content
    assert (thinking.thinking, thinking.signature) == ("The user wants weather.", "EqSIG==")
    assert text.text == "Checking."
    assert (tool.id, tool.name, tool.input) == ("toolu_01w", "get_weather", {"city": "Paris"})
    assert (tool2.id, tool2.name, tool2.input) == WEATHER  # a dict input, fragmented by the builder
    assert final.stop_reason == "tool_use"


def test_stream_helper_events(server: FakeServer, client: Any) -> None:
    server.push(message_stream(["Hi"], thinking_chunks=["hm"]))
    with client.messages.stream(**KW) as stream:
        kinds = [e.type for e in stream]
    assert "thinking" in kinds and "signature" in kinds and "text" in kinds
    assert kinds[-1] == "message_stop"


def test_stream_output_only_delta_usage_keeps_start_input(server: FakeServer, client: Any) -> None:
    # Gateways (e.g. Bedrock) send only output_tokens on message_delta.
    reply = message_stream(["x"], usage=USAGE, input_usage_on_delta=False)
    delta = next(d for n, d in reply.sse or [] if n == "message_delta")
    assert delta["usage"] == {"output_tokens": 34}
    server.push(reply)

    with client.messages.stream(**KW) as stream:
        final = stream.get_final_message()
    assert (final.usage.input_tokens, final.usage.output_tokens) == (21, 34)
    assert final.usage.cache_read_input_tokens == 1500


def test_stream_error_event_mid_stream(server: FakeServer, client: Any) -> None:
    reply = message_stream(["Hel", "lo"], error_event="overloaded_error", request_id="req_011Cmid")
    assert wire_event_names(reply.sse or [])[-2:] == ["content_block_delta", "error"]
    server.push(reply)

    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as info:
        for event in client.messages.create(**KW, stream=True):
            seen.append(event.type)

    err = info.value
    assert seen == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
    ]
    # The error arrives on an HTTP 200, so the SDK raises the base class, not OverloadedError.
    assert type(err) is anthropic.APIStatusError
    assert err.status_code == 200
    assert err.type == "overloaded_error"
    assert err.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert err.request_id == "req_011Cmid"


def test_stream_helper_error_event(server: FakeServer, client: Any) -> None:
    server.push(message_stream(["a", "b", "c"], error_event="api_error", error_after=3))
    text: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as info, client.messages.stream(**KW) as stream:
        text.extend(stream.text_stream)
    assert text == []  # error_after=3: message_start, content_block_start, ping
    assert info.value.type == "api_error"


def test_stream_cut_raises_transport_error(server: FakeServer, client: Any) -> None:
    # message_start, content_block_start, ping, delta "Hel", then the socket closes.
    server.push(message_stream(["Hel", "lo"], cut_after=4))

    text: list[str] = []
    with pytest.raises(httpx2.TransportError), client.messages.stream(**KW) as stream:
        text.extend(stream.text_stream)
    assert text == ["Hel"]


def test_stream_cut_is_not_wrapped_by_the_sdk(server: FakeServer, client: Any) -> None:
    server.push(message_stream(["Hel", "lo"], cut_after=2))
    with pytest.raises(httpx2.RemoteProtocolError):
        list(client.messages.create(**KW, stream=True))


def test_chunk_delay_paces_events(server: FakeServer, client: Any) -> None:
    server.push(message_stream(["a", "b"], chunk_delay=0.05))
    t0 = time.monotonic()
    with client.messages.stream(**KW) as stream:
        stream.until_done()
    assert time.monotonic() - t0 >= 0.2  # 7 events, 0.05 s apart


# -- the default factory ------------------------------------------------------------------


def test_default_factory() -> None:
    with FakeServer(default=default) as server:
        c = make_client(server)
        try:
            msg = c.messages.create(**KW)
            with c.messages.stream(**KW) as stream:
                final = stream.get_final_message()
            count = c.messages.count_tokens(model=MODEL, messages=KW["messages"])
        finally:
            c.close()
    assert msg.model == MODEL and msg.content[0].text == "Hello from the fake."
    assert final.model == MODEL and final.content[0].text == "Hello from the fake."
    assert count.input_tokens >= 1
    assert [r.path for r in server.received] == [
        "/v1/messages",
        "/v1/messages",
        "/v1/messages/count_tokens",
    ]
    assert server.received[1].body["stream"] is True


def test_unscripted_request_without_default_is_a_500(server: FakeServer, client: Any) -> None:
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(**KW)


# -- the async client ---------------------------------------------------------------------


def test_async_client(server: FakeServer) -> None:
    server.push(
        message("async hi", tool_uses=[WEATHER], usage=USAGE, request_id="req_011Ca"),
        message_stream(["as", "ync"], thinking_chunks=["t"], usage=USAGE),
        message_stream(["x", "y"], error_event="overloaded_error"),
        message_stream(["x", "y"], cut_after=3),
        error(529, request_id="req_011Cover"),
    )

    async def main() -> None:
        c = make_async_client(server)
        try:
            msg = await c.messages.create(**KW)
            assert msg.content[0].text == "async hi" and msg.content[1].input == WEATHER[2]
            assert msg._request_id == "req_011Ca"

            async with c.messages.stream(**KW) as stream:
                texts = [t async for t in stream.text_stream]
                final = await stream.get_final_message()
            assert texts == ["as", "ync"]
            assert final.content[0].type == "thinking"
            assert final.usage.output_tokens == 34

            with pytest.raises(anthropic.APIStatusError) as info:
                async for _ in await c.messages.create(**KW, stream=True):
                    pass
            assert info.value.type == "overloaded_error"

            with pytest.raises(httpx2.TransportError):
                async with c.messages.stream(**KW) as stream:
                    await stream.until_done()

            with pytest.raises(anthropic.OverloadedError) as over:
                await c.messages.create(**KW)
            assert over.value.request_id == "req_011Cover"
        finally:
            await c.close()

    asyncio.run(main())
    assert all(r.header("x-stainless-async") == "async:asyncio" for r in server.received)
    assert all(r.header("authorization") == f"Bearer {API_KEY}" for r in server.received)
