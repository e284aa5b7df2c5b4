"""Google Gen AI capture: the official client over real HTTP to the fake Gemini API, asserted in the views.

One ``generate_content`` call can make several HTTP requests (automatic function
calling, automatic continuation): each request is one inference in ``llm_calls``.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("google.genai")

import httpx2
from google import genai
from google.genai import errors, types

import agentlog
from agentlog.pricing import price_for

from fakes import gemini_fake as gf
from fakes._server import FakeServer
from helpers import query

#: How a cut async stream surfaces: google-genai's async client uses aiohttp instead of
#: httpx2 whenever aiohttp is installed (LiteLLM, for one, brings it).
ASYNC_CUT: tuple[type[BaseException], ...] = (httpx2.RemoteProtocolError,)
try:
    import aiohttp

    ASYNC_CUT += (aiohttp.ClientPayloadError,)
except ImportError:
    pass

MODEL = "gemini-2.5-flash"
KEY = "AIzaSyD-test-secret-1234567890abcdef"
#: USD per million tokens for gemini-2.5-flash in the shipped price table.
PRICE = {"input": 0.3, "cached_input": 0.075, "output": 2.5}
SYSTEM = "Answer in one word."
# Environment the SDK reads at construction; any of them would change the URL or auth.
_SDK_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE",
            "GOOGLE_GENAI_API_VERSION", "GOOGLE_GENAI_HTTP_CLIENT", "GOOGLE_CLOUD_PROJECT",
            "GOOGLE_CLOUD_LOCATION")


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"Sunny in {city}"


def cost(inp: int, cached: int, out: int) -> float:
    return ((inp - cached) * PRICE["input"] + cached * PRICE["cached_input"] + out * PRICE["output"]) / 1e6


def make_client(server: FakeServer) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=server.url))


@pytest.fixture(scope="module")
def server() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def shared_client(server: FakeServer) -> Iterator[genai.Client]:
    """One sync client for the module: building one costs ~0.25 s (SSL contexts).
    Held here, because the SDK closes its pool when the Client is collected."""
    with pytest.MonkeyPatch.context() as mp:
        for name in _SDK_ENV:
            mp.delenv(name, raising=False)
        c = make_client(server)
        yield c
        c.close()


@pytest.fixture(autouse=True)
def _capture(db: Path, server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _SDK_ENV:
        monkeypatch.delenv(name, raising=False)
    server.script.clear()
    server.received.clear()
    agentlog.configure(db)
    agentlog.instrument("google-genai")
    yield
    agentlog.uninstrument()
    assert not server.script, "scripted replies were left unused"


@pytest.fixture
def client(shared_client: genai.Client) -> genai.Client:
    return shared_client


def run_async(server: FakeServer, body: Callable[[Any], Any]) -> Any:
    """Run ``body(client.aio)`` on a fresh loop with a fresh client (``aclose`` ends a client for good)."""
    c = make_client(server)

    async def main() -> Any:
        try:
            return await body(c.aio)
        finally:
            await c.aio.aclose()

    try:
        return asyncio.run(main())
    finally:
        c.close()


def _calls(db: Path) -> list[Any]:
    assert agentlog.flush(5)
    return query(db, "SELECT * FROM llm_calls ORDER BY started_at")


def _messages(db: Path) -> list[tuple[Any, ...]]:
    assert agentlog.flush(5)
    rows = query(db, "SELECT role, content, tool_call_id, direction FROM messages ORDER BY position")
    return [tuple(r) for r in rows]


def _error(db: Path) -> dict[str, Any]:
    assert agentlog.flush(5)
    (ev,) = query(db, "SELECT payload FROM events WHERE type = 'llm.error'")
    err: dict[str, Any] = json.loads(ev["payload"])["error"]
    return err


def test_the_price_table_is_the_one_the_expected_costs_use() -> None:
    assert price_for("google", MODEL) == PRICE
    assert price_for("google", "gemini-2.5-flash-001") == PRICE  # a model version, by prefix


# -- generateContent ------------------------------------------------------------------------


def test_generate_content_text_thoughts_usage_cost_request_and_messages(
    db: Path, server: FakeServer, client: genai.Client
) -> None:
    server.push(gf.generate_content(
        "Paris.", thoughts=["The user asks for a capital.", " France -> Paris."],
        usage=gf.usage_metadata(120, 9, cached=100, thoughts=30),
        model_version="gemini-2.5-flash-001", response_id="resp-1"))
    with agentlog.run("capital"):
        resp = client.models.generate_content(
            model=MODEL, contents="Capital of France?",
            config=types.GenerateContentConfig(
                system_instruction=SYSTEM, temperature=0.2, max_output_tokens=256,
                thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=512)))
    assert resp.text == "Paris." and resp.usage_metadata is not None  # the caller's result is untouched
    assert resp.usage_metadata.prompt_token_count == 120
    (call,) = _calls(db)
    assert (call["provider"], call["model"], call["status"]) == ("google", "gemini-2.5-flash-001", "ok")
    assert call["response_text"] == "Paris."
    assert call["reasoning_text"] == "The user asks for a capital. France -> Paris."
    assert (call["stop_reason"], call["request_id"]) == ("STOP", "resp-1")
    # promptTokenCount already includes the cache; output is candidates + thoughts.
    assert (call["input_tokens"], call["cached_tokens"], call["output_tokens"], call["reasoning_tokens"]) == (
        120, 100, 9 + 30, 30)
    assert call["cache_write_tokens"] is None
    assert call["cost_usd"] == pytest.approx(cost(120, 100, 39))
    request = json.loads(call["request"])
    assert request["model"] == MODEL
    assert request["contents"] == [{"parts": [{"text": "Capital of France?"}], "role": "user"}]
    assert request["systemInstruction"]["parts"] == [{"text": SYSTEM}]
    gen = request["generationConfig"]
    assert (gen["temperature"], gen["maxOutputTokens"]) == (0.2, 256)
    # Nested config objects travel in snake_case: recorded exactly as sent.
    assert gen["thinkingConfig"] == {"include_thoughts": True, "thinking_budget": 512}
    assert _messages(db) == [("system", SYSTEM, None, "input"), ("user", "Capital of France?", None, "input"),
                             ("assistant", "Paris.", None, "output")]
    (run,) = query(db, "SELECT * FROM runs")
    assert (run["name"], run["llm_calls"], run["input_tokens"], run["output_tokens"]) == ("capital", 1, 120, 39)
    assert run["cost_usd"] == pytest.approx(call["cost_usd"])


def test_function_calls_are_requested_tool_calls_with_parsed_arguments(
    db: Path, server: FakeServer, client: genai.Client
) -> None:
    server.push(gf.generate_content(
        function_calls=[("get_weather", {"city": "Paris"}, "call-1"), ("get_time", {"tz": "CET"}),
                        ("get_time", {"tz": "JST"})],
        thought_signature=b"sig-123", usage=gf.usage_metadata(30, 12)))
    declarations = [types.FunctionDeclaration(name="get_weather"), types.FunctionDeclaration(name="get_time")]
    resp = client.models.generate_content(
        model=MODEL, contents="Weather in Paris, time in Paris and Tokyo?",
        config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=declarations)]))
    assert [c.name for c in resp.function_calls or ()] == ["get_weather", "get_time", "get_time"]
    (call,) = _calls(db)
    assert (call["status"], call["response_text"], call["stop_reason"]) == ("ok", None, "STOP")
    assert (call["input_tokens"], call["output_tokens"], call["reasoning_tokens"]) == (30, 12, None)
    tools = query(db, "SELECT * FROM tool_calls ORDER BY started_at, tool_call_id")
    # Calls without an id get one from their name, numbered when the name repeats.
    assert [(t["tool_call_id"], t["name"], t["status"], json.loads(t["arguments"])) for t in tools] == [
        ("call-1", "get_weather", "requested", {"city": "Paris"}),
        ("get_time", "get_time", "requested", {"tz": "CET"}),
        ("get_time#2", "get_time", "requested", {"tz": "JST"}),
    ]
    assert {t["llm_span_id"] for t in tools} == {call["span_id"]}
    (reply,) = query(db, "SELECT * FROM messages WHERE direction = 'output'")
    assert reply["role"] == "assistant" and reply["content"] is None
    assert [c["id"] for c in json.loads(reply["tool_calls"])] == ["call-1", "get_time", "get_time#2"]


def test_blocked_prompt_and_thinking_only_answer(db: Path, server: FakeServer, client: genai.Client) -> None:
    server.push(gf.prompt_blocked("PROHIBITED_CONTENT", usage=gf.usage_metadata(8, 0)),
                gf.generate_content(finish_reason="MAX_TOKENS", usage=gf.usage_metadata(8, 0, thoughts=64)))
    assert client.models.generate_content(model=MODEL, contents="something bad").text is None
    assert client.models.generate_content(model=MODEL, contents="think hard").text is None
    blocked, spent = _calls(db)
    # No candidate: why it stopped is the prompt feedback's block reason.
    assert (blocked["status"], blocked["response_text"], blocked["stop_reason"]) == (
        "ok", None, "PROHIBITED_CONTENT")
    assert (blocked["input_tokens"], blocked["output_tokens"]) == (8, None)
    assert (spent["stop_reason"], spent["response_text"], spent["output_tokens"], spent["reasoning_tokens"]) == (
        "MAX_TOKENS", None, 64, 64)


def test_an_image_in_the_prompt_is_a_message_of_parts_without_the_bytes(
    db: Path, server: FakeServer, client: genai.Client
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
    server.push(gf.generate_content("A gradient."))
    client.models.generate_content(model=MODEL, contents=[
        types.Part.from_bytes(data=png, mime_type="image/png"), "What is this?"])
    # As with thinkingConfig, the nested object travels in snake_case.
    assert server.received[0].body["contents"][0]["parts"][0]["inlineData"]["mime_type"] == "image/png"
    assert agentlog.flush(5)
    user, reply = query(db, "SELECT role, content FROM messages ORDER BY position")
    image, text = json.loads(user["content"])
    assert image["inlineData"]["data"]["kind"] == "inline_media"  # a marker, not the base64
    assert image["inlineData"]["mime_type"] == "image/png" and text == {"text": "What is this?"}
    assert (reply["role"], reply["content"]) == ("assistant", "A gradient.")
    agentlog.shutdown()
    assert base64.b64encode(png) not in db.read_bytes()


def test_async_generate_content(db: Path, server: FakeServer) -> None:
    usage = gf.usage_metadata(40, 2, cached=32, thoughts=3, tool_use_prompt=6)
    server.push(gf.generate_content("async hi", thoughts=["hm"], usage=usage))

    async def body(aio: Any) -> Any:
        return await aio.models.generate_content(
            model=MODEL, contents="hi", config=types.GenerateContentConfig(system_instruction=SYSTEM))

    assert run_async(server, body).text == "async hi"
    (call,) = _calls(db)
    assert (call["status"], call["response_text"], call["reasoning_text"], call["stop_reason"]) == (
        "ok", "async hi", "hm", "STOP")
    # Tool-use prompt tokens (e.g. search results fed to the model) are input, outside promptTokenCount.
    assert (call["input_tokens"], call["cached_tokens"], call["output_tokens"], call["reasoning_tokens"]) == (
        40 + 6, 32, 5, 3)
    assert call["cost_usd"] == pytest.approx(cost(46, 32, 5))
    assert [m[:2] for m in _messages(db)] == [("system", SYSTEM), ("user", "hi"), ("assistant", "async hi")]


# -- streamGenerateContent ------------------------------------------------------------------

STREAM_USAGE = gf.usage_metadata(50, 12, cached=40, thoughts=20)


def _stream_reply() -> Any:
    return gf.stream_generate_content(["The answer", " is", " 42."], thought_chunks=["Thinking.", " Done."],
                                      usage=STREAM_USAGE, response_id="stream-1")


def _assert_stream_call(call: Any) -> None:
    assert (call["status"], call["response_text"], call["reasoning_text"]) == ("ok", "The answer is 42.",
                                                                              "Thinking. Done.")
    # Every chunk repeats the running usage: the last one wins, nothing is summed.
    assert (call["input_tokens"], call["cached_tokens"], call["output_tokens"], call["reasoning_tokens"]) == (
        50, 40, 12 + 20, 20)
    assert call["cost_usd"] == pytest.approx(cost(50, 40, 32))
    assert (call["stop_reason"], call["request_id"], call["model"]) == ("STOP", "stream-1", MODEL)
    assert call["ttft_ms"] is not None and call["ttft_ms"] <= call["duration_ms"]


def test_stream_records_deltas_thoughts_and_the_last_cumulative_usage(
    db: Path, server: FakeServer, client: genai.Client
) -> None:
    server.push(_stream_reply())
    stream = client.models.generate_content_stream(model=MODEL, contents="What is the answer?")
    chunks = list(stream)
    assert all(isinstance(c, types.GenerateContentResponse) for c in chunks)  # the SDK's own types
    assert "".join(c.text or "" for c in chunks) == "The answer is 42."
    (call,) = _calls(db)
    _assert_stream_call(call)
    assert json.loads(call["request"])["model"] == MODEL
    assert _messages(db)[-1] == ("assistant", "The answer is 42.", None, "output")


def test_async_stream(db: Path, server: FakeServer) -> None:
    server.push(_stream_reply())

    async def body(aio: Any) -> str:
        stream = await aio.models.generate_content_stream(model=MODEL, contents="What is the answer?")
        return "".join([c.text or "" async for c in stream])

    assert run_async(server, body) == "The answer is 42."
    (call,) = _calls(db)
    _assert_stream_call(call)


# -- several requests inside one call -------------------------------------------------------


def test_automatic_function_calling_records_each_request(
    db: Path, server: FakeServer, client: genai.Client
) -> None:
    server.push(gf.generate_content(function_calls=[("get_weather", {"city": "Paris"})],
                                    usage=gf.usage_metadata(20, 5)),
                gf.generate_content("It is sunny in Paris.", usage=gf.usage_metadata(40, 7)))
    with agentlog.run("afc"):
        resp = client.models.generate_content(model=MODEL, contents="Weather in Paris?",
                                               config=types.GenerateContentConfig(tools=[get_weather]))
    assert resp.text == "It is sunny in Paris."
    first, second = _calls(db)
    assert (first["response_text"], first["input_tokens"], first["output_tokens"]) == (None, 20, 5)
    assert (second["response_text"], second["input_tokens"], second["output_tokens"]) == (
        "It is sunny in Paris.", 40, 7)
    assert first["cost_usd"] == pytest.approx(cost(20, 0, 5))
    (tool,) = query(db, "SELECT * FROM tool_calls")
    assert (tool["tool_call_id"], tool["name"], tool["status"], tool["llm_span_id"]) == (
        "get_weather", "get_weather", "requested", first["span_id"])
    assert json.loads(tool["arguments"]) == {"city": "Paris"}
    # The second request resends the history: each message is stored once, the function's
    # result (sent back without an id) is linked to the call by its name.
    assert _messages(db) == [
        ("user", "Weather in Paris?", None, "input"),
        ("assistant", None, None, "output"),
        ("tool", '{"result":"Sunny in Paris"}', "get_weather", "input"),
        ("assistant", "It is sunny in Paris.", None, "output"),
    ]
    (run,) = query(db, "SELECT * FROM runs")
    assert (run["llm_calls"], run["input_tokens"], run["output_tokens"]) == (2, 60, 12)


def test_automatic_function_calling_async_links_the_result_to_the_call_id(db: Path, server: FakeServer) -> None:
    server.push(gf.generate_content(function_calls=[("get_weather", {"city": "Lima"}, "call-7")]),
                gf.generate_content("Sunny in Lima."))

    async def body(aio: Any) -> Any:
        return await aio.models.generate_content(model=MODEL, contents="Weather in Lima?",
                                                 config=types.GenerateContentConfig(tools=[get_weather]))

    assert run_async(server, body).text == "Sunny in Lima."
    assert [c["response_text"] for c in _calls(db)] == [None, "Sunny in Lima."]
    assert [m[0] for m in _messages(db)] == ["user", "assistant", "tool", "assistant"]
    (result,) = query(db, "SELECT * FROM messages WHERE role = 'tool'")
    assert (result["tool_call_id"], result["name"]) == ("call-7", "get_weather")


def test_automatic_function_calling_in_a_stream(db: Path, server: FakeServer, client: genai.Client) -> None:
    server.push(gf.stream_generate_content(["Let me check."], function_calls=[("get_weather", {"city": "Rome"})]),
                gf.stream_generate_content(["Sunny", " in Rome."]))
    chunks = list(client.models.generate_content_stream(
        model=MODEL, contents="Weather in Rome?", config=types.GenerateContentConfig(tools=[get_weather])))
    assert "".join(c.text or "" for c in chunks) == "Let me check.Sunny in Rome."
    first, second = _calls(db)
    assert (first["status"], first["response_text"]) == ("ok", "Let me check.")
    assert (second["status"], second["response_text"]) == ("ok", "Sunny in Rome.")
    (tool,) = query(db, "SELECT * FROM tool_calls")
    assert (tool["name"], tool["llm_span_id"]) == ("get_weather", first["span_id"])
    # The SDK sends each streamed chunk back as its own model content: one reply all the same.
    assert [m[:3] for m in _messages(db)] == [
        ("user", "Weather in Rome?", None),
        ("assistant", "Let me check.", None),
        ("tool", '{"result":"Sunny in Rome"}', "get_weather"),
        ("assistant", "Sunny in Rome.", None),
    ]


def test_automatic_continuation_is_one_inference_per_hop(
    db: Path, server: FakeServer, client: genai.Client
) -> None:
    server.push(gf.generate_content("Hello, ", finish_reason="CONTINUATION", continuation_token=b"tok-1",
                                    usage=gf.usage_metadata(10, 2)),
                gf.generate_content("world.", usage=gf.usage_metadata(12, 3)))
    assert client.models.generate_content(model=MODEL, contents="greet").text == "Hello, world."
    first, second = _calls(db)
    assert (first["response_text"], first["stop_reason"], first["input_tokens"]) == ("Hello, ", "CONTINUATION", 10)
    assert (second["response_text"], second["stop_reason"], second["input_tokens"]) == ("world.", "STOP", 12)
    assert "continuationToken" not in json.loads(first["request"])
    assert json.loads(second["request"])["continuationToken"] == "dG9rLTE="


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "cls", "kind", "message"), [
    (429, errors.ClientError, "rate_limit", "You exceeded your current quota."),
    (400, errors.ClientError, "bad_request", "Request contains an invalid argument."),
    (500, errors.ServerError, "server_error", "An internal error has occurred."),
])
def test_http_error_is_recorded_with_the_provider_body_and_reraised(
    db: Path, server: FakeServer, client: genai.Client, status: int, cls: type[errors.APIError], kind: str,
    message: str,
) -> None:
    server.push(gf.error(status, message, retry_delay="7s" if status == 429 else None))
    with pytest.raises(cls) as caught:
        client.models.generate_content(model=MODEL, contents="hi")
    assert type(caught.value) is cls  # the SDK's own exception, unchanged
    assert (caught.value.code, caught.value.message) == (status, message)
    (call,) = _calls(db)
    assert call["status"] == "error" and message in call["error"]
    err = _error(db)
    assert (err["http_status"], err["kind"], err["message"]) == (status, kind, message)
    assert err["body"] == caught.value.details  # the whole error body the service sent
    assert err["body"]["error"]["status"] == gf.STATUS_TEXT[status]


def test_stream_rejected_up_front_is_an_error(db: Path, server: FakeServer, client: genai.Client) -> None:
    server.push(gf.error(429, "Quota exceeded."))
    with pytest.raises(errors.ClientError):
        next(iter(client.models.generate_content_stream(model=MODEL, contents="hi")))
    (call,) = _calls(db)
    assert call["status"] == "error"
    assert (_error(db)["kind"], _error(db)["http_status"]) == ("rate_limit", 429)


def test_error_event_mid_stream_keeps_partial_text(db: Path, server: FakeServer, client: genai.Client) -> None:
    server.push(gf.stream_generate_content(["partial", " answer"], error=gf.error_body(500, "Internal error")))
    with pytest.raises(errors.ServerError):
        for _ in client.models.generate_content_stream(model=MODEL, contents="go"):
            pass
    (call,) = _calls(db)
    assert (call["status"], call["response_text"]) == ("error", "partial answer")
    err = _error(db)
    assert (err["kind"], err["http_status"], err["body"]["error"]["message"]) == ("server_error", 500,
                                                                                  "Internal error")


def test_cut_stream_is_an_error_with_partial_text(db: Path, server: FakeServer, client: genai.Client) -> None:
    server.push(gf.stream_generate_content(["one", "two", "three"], cut_after=2))
    with pytest.raises(httpx2.RemoteProtocolError):  # the SDK does not wrap transport errors
        for _ in client.models.generate_content_stream(model=MODEL, contents="count"):
            pass
    (call,) = _calls(db)
    assert (call["status"], call["response_text"]) == ("error", "onetwo")
    assert _error(db)["kind"] == "connection"


def test_async_errors_and_cut_stream(db: Path, server: FakeServer) -> None:
    server.push(gf.error(429, "Slow down."), gf.stream_generate_content(["a", "b", "c"], cut_after=1))

    async def body(aio: Any) -> None:
        with pytest.raises(errors.ClientError):
            await aio.models.generate_content(model=MODEL, contents="hi")
        with pytest.raises(ASYNC_CUT):
            async for _ in await aio.models.generate_content_stream(model=MODEL, contents="x"):
                pass

    run_async(server, body)
    rejected, cut = _calls(db)
    assert (rejected["status"], cut["status"], cut["response_text"]) == ("error", "error", "a")


def test_stream_left_early_and_dropped_is_interrupted_with_partial_text(
    db: Path, server: FakeServer, client: genai.Client
) -> None:
    server.push(gf.stream_generate_content(["first ", "second ", "third"]))
    stream = client.models.generate_content_stream(model=MODEL, contents="count")
    for _ in stream:
        break  # leave after the first chunk
    del stream
    gc.collect()
    (call,) = _calls(db)
    assert (call["status"], call["response_text"]) == ("interrupted", "first ")


def test_stream_closed_early_is_interrupted(db: Path, server: FakeServer, client: genai.Client) -> None:
    server.push(gf.stream_generate_content(["first ", "second ", "third"]))
    stream = client.models.generate_content_stream(model=MODEL, contents="count")
    assert isinstance(stream, Generator)
    next(stream)
    stream.close()
    (call,) = _calls(db)
    assert (call["status"], call["response_text"]) == ("interrupted", "first ")


def test_async_stream_left_early_is_interrupted(db: Path, server: FakeServer) -> None:
    server.push(gf.stream_generate_content(["first ", "second ", "third"]))

    async def body(aio: Any) -> None:
        stream = await aio.models.generate_content_stream(model=MODEL, contents="count")
        async for _ in stream:
            break
        await stream.aclose()

    run_async(server, body)
    (call,) = _calls(db)
    assert (call["status"], call["response_text"]) == ("interrupted", "first ")


# -- instrumentation itself -----------------------------------------------------------------


def test_api_key_never_reaches_the_database(db: Path, server: FakeServer, client: genai.Client) -> None:
    server.push(gf.generate_content("ok"), gf.error(400, "API key not valid."),
                gf.stream_generate_content(["a", "b"]))
    client.models.generate_content(model=MODEL, contents="hi")
    with pytest.raises(errors.ClientError):
        client.models.generate_content(model=MODEL, contents="hi")
    list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    assert server.received[0].header("x-goog-api-key") == KEY  # it was sent...
    assert len(_calls(db)) == 3
    agentlog.shutdown()
    files = list(db.parent.glob(db.name + "*"))
    assert db in files
    for path in files:
        assert KEY.encode() not in path.read_bytes()  # ...and never stored


def test_instrumenting_twice_records_once_and_uninstrument_stops(
    db: Path, server: FakeServer, client: genai.Client
) -> None:
    assert agentlog.instrument("gemini") == ["google-genai"]
    server.push(gf.generate_content("once"), gf.generate_content("never"), gf.stream_generate_content(["no"]))
    client.models.generate_content(model=MODEL, contents="hi")
    assert agentlog.uninstrument("google-genai") == 4  # the four request methods, patched once
    client.models.generate_content(model=MODEL, contents="hi")
    list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    assert [c["response_text"] for c in _calls(db)] == ["once"]


def test_a_single_client_can_be_instrumented(db: Path, server: FakeServer) -> None:
    agentlog.uninstrument()
    watched, other = make_client(server), make_client(server)
    try:
        assert agentlog.instrument(watched) == ["google-genai"]
        server.push(gf.generate_content("watched"), gf.stream_generate_content(["watched ", "stream"]),
                    gf.generate_content("other"), gf.generate_content("watched async"))
        watched.models.generate_content(model=MODEL, contents="hi")
        list(watched.models.generate_content_stream(model=MODEL, contents="hi"))
        other.models.generate_content(model=MODEL, contents="hi")

        async def on_aio() -> None:  # .aio shares the client's API client: instrumented too
            await watched.aio.models.generate_content(model=MODEL, contents="hi")
            await watched.aio.aclose()

        asyncio.run(on_aio())
        assert [c["response_text"] for c in _calls(db)] == ["watched", "watched stream", "watched async"]
    finally:
        watched.close()
        other.close()


def test_other_endpoints_pass_through_unrecorded(db: Path, server: FakeServer, client: genai.Client) -> None:
    server.push(gf.error(404, "models/gemini-2.5-flash is not found."), gf.generate_content("recorded"))
    with pytest.raises(errors.ClientError):
        client.models.get(model=MODEL)  # GET models/…: not an inference
    client.models.generate_content(model=MODEL, contents="hi")
    assert [c["response_text"] for c in _calls(db)] == ["recorded"]


def test_calls_outside_a_run_go_to_the_implicit_run(db: Path, server: FakeServer, client: genai.Client) -> None:
    server.push(gf.generate_content("alone", usage=gf.usage_metadata(10, 4)))
    client.models.generate_content(model=MODEL, contents="hi")
    (call,) = _calls(db)
    (run,) = query(db, "SELECT * FROM runs")
    assert (run["implicit"], run["run_id"], run["llm_calls"], run["output_tokens"]) == (1, call["run_id"], 1, 4)


def test_async_stream_left_early_and_dropped_is_interrupted(db: Path, server: FakeServer) -> None:
    server.push(gf.stream_generate_content(["first ", "second ", "third"]))

    async def body(aio: Any) -> None:
        stream = await aio.models.generate_content_stream(model=MODEL, contents="count")
        async for _ in stream:
            break
        del stream  # the loop closes a dropped async generator for us

    run_async(server, body)
    (call,) = _calls(db)
    assert (call["status"], call["response_text"]) == ("interrupted", "first ")


def test_stream_resumed_from_a_checkpoint_records_the_failed_hop(
    db: Path, server: FakeServer, client: genai.Client
) -> None:
    server.push(gf.stream_generate_content(["Hel", "lo"], finish_reason=None, continuation_token=b"ckpt",
                                           usage=gf.usage_metadata(6, 2), error=gf.error_body(503, "restarted")),
                gf.stream_generate_content([" world"], usage=gf.usage_metadata(7, 1)))
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="greet"))
    assert "".join(c.text or "" for c in chunks) == "Hello world"  # the SDK hid the error
    failed, resumed = _calls(db)
    assert (failed["status"], failed["response_text"]) == ("error", "Hello")
    assert (resumed["status"], resumed["response_text"], resumed["input_tokens"]) == ("ok", " world", 7)
    assert json.loads(resumed["request"])["continuationToken"] == "Y2twdA=="
