"""OpenAI capture: the official client over real HTTP to the fake OpenAI API, asserted in the views.

Chat Completions and the Responses API, sync and async, plain calls, ``stream=True``,
the ``.stream()`` / ``.parse()`` helpers and the raw-response wrappers; errors the way
the SDK raises them (HTTP statuses, timeouts, cut streams, errors inside a stream) and
the ones it does not raise (a failed Response).
"""

from __future__ import annotations

import asyncio
import gc
import json
import string
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

openai = pytest.importorskip("openai")

from pydantic import BaseModel  # noqa: E402

import agentlog  # noqa: E402

from fakes._server import FakeServer  # noqa: E402
from fakes.openai_fake import (  # noqa: E402
    base_url,
    chat_completion,
    chat_stream,
    error,
    response,
    response_failed_stream,
    response_stream,
)
from helpers import query  # noqa: E402

#: Shaped like a real project key, so a leak would be a realistic one.
KEY = "sk-proj-" + (string.ascii_letters + string.digits)[:40]
SYSTEM = "Be brief."
ASK: list[Any] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Weather in Paris?"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}
PARIS = '{"city": "Paris"}'
TOKYO = '{"city": "Tokyo"}'
CHAT_USAGE: Any = {"prompt_tokens": 120, "completion_tokens": 40, "cached_tokens": 64, "reasoning_tokens": 16}
RESPONSES_USAGE: Any = {"input_tokens": 200, "output_tokens": 50, "cached_tokens": 128, "cache_write_tokens": 32,
                        "reasoning_tokens": 20}


def gpt4o_cost(inp: int, out: int, cached: int = 0, written: int = 0) -> float:
    """The cost of a gpt-4o call, from the figures of the shipped price table."""
    table = json.loads((resources.files("agentlog") / "prices.json").read_text("utf-8"))
    price = table["prices"]["openai"]["gpt-4o"]
    uncached = inp - cached - written
    total = (uncached * price["input"] + cached * price["cached_input"]
             + written * price.get("cache_write", price["input"]) + out * price["output"])
    return total / 1e6


@pytest.fixture(autouse=True)
def _capture(db: Path, server: FakeServer) -> Iterator[None]:
    agentlog.configure(db)
    agentlog.instrument("openai")
    yield
    agentlog.uninstrument()


@pytest.fixture(scope="module")
def client(_shared_server: FakeServer) -> Iterator[Any]:
    # Instrumentation patches the SDK's classes, so one client serves the module.
    with openai.OpenAI(base_url=base_url(_shared_server), api_key=KEY, max_retries=0) as c:
        yield c


def run_async(server: FakeServer, body: Any) -> Any:
    """``body(client)`` with a fresh AsyncOpenAI: a client is bound to the loop that first uses it."""

    async def main() -> Any:
        async with openai.AsyncOpenAI(base_url=base_url(server), api_key=KEY, max_retries=0) as c:
            return await body(c)

    return asyncio.run(main())


def _calls(db: Path) -> list[Any]:
    assert agentlog.flush(5)
    return query(db, "SELECT * FROM llm_calls ORDER BY started_at")


def _error(db: Path) -> dict[str, Any]:
    (row,) = query(db, "SELECT payload FROM events WHERE type = 'llm.error'")
    return json.loads(row["payload"])["error"]


def _tools(db: Path) -> list[tuple[Any, ...]]:
    rows = query(db, "SELECT tool_call_id, name, arguments, status, llm_span_id FROM tool_calls ORDER BY tool_call_id")
    return [(r["tool_call_id"], r["name"], json.loads(r["arguments"]), r["status"], r["llm_span_id"]) for r in rows]


# -- Chat Completions ------------------------------------------------------------------------
def test_chat_completion_text_usage_cost_and_request(db: Path, server: FakeServer, client: Any) -> None:
    server.push(chat_completion("It is sunny.", model="gpt-4o-2024-08-06", usage=CHAT_USAGE, request_id="req_chat1"))
    with agentlog.run("weather"):
        result = client.chat.completions.create(model="gpt-4o", messages=ASK, temperature=0.2, max_tokens=100,
                                                tools=[WEATHER_TOOL])
    assert result.choices[0].message.content == "It is sunny."  # the caller's result is untouched
    (call,) = _calls(db)
    assert (call["provider"], call["model"], call["status"]) == ("openai", "gpt-4o-2024-08-06", "ok")
    assert call["response_text"] == "It is sunny." and call["reasoning_text"] is None
    assert call["stop_reason"] == "stop" and call["request_id"] == "req_chat1"
    # OpenAI's totals already include their details: stored as they are, nothing added twice.
    assert (call["input_tokens"], call["cached_tokens"], call["cache_write_tokens"], call["output_tokens"],
            call["reasoning_tokens"]) == (120, 64, None, 40, 16)
    assert call["cost_usd"] == pytest.approx(gpt4o_cost(120, 40, cached=64))  # priced as gpt-4o by prefix
    request = json.loads(call["request"])
    assert (request["model"], request["temperature"], request["max_tokens"]) == ("gpt-4o", 0.2, 100)
    assert request["tools"] == [WEATHER_TOOL] and request["messages"] == ASK
    (run,) = query(db, "SELECT name, llm_calls, cost_usd FROM runs WHERE implicit = 0")
    assert (run["name"], run["llm_calls"]) == ("weather", 1)
    assert run["cost_usd"] == pytest.approx(call["cost_usd"])


def test_parallel_tool_calls_and_a_multi_turn_history(db: Path, server: FakeServer, client: Any) -> None:
    server.push(chat_completion(tool_calls=[("call_a", "get_weather", PARIS), ("call_b", "get_weather", TOKYO)]),
                chat_completion("Paris 18°C, Tokyo 22°C."))
    with agentlog.run("weather"):
        first = client.chat.completions.create(model="gpt-4o", messages=ASK, tools=[WEATHER_TOOL])
        history = [*ASK, first.choices[0].message,  # the SDK's own message object, as callers append it
                   {"role": "tool", "tool_call_id": "call_a", "content": "18°C"},
                   {"role": "tool", "tool_call_id": "call_b", "content": "22°C"}]
        client.chat.completions.create(model="gpt-4o", messages=history, tools=[WEATHER_TOOL])
    asked, answered = _calls(db)
    assert asked["stop_reason"] == "tool_calls" and asked["response_text"] is None
    assert answered["response_text"] == "Paris 18°C, Tokyo 22°C."
    assert _tools(db) == [("call_a", "get_weather", {"city": "Paris"}, "requested", asked["span_id"]),
                          ("call_b", "get_weather", {"city": "Tokyo"}, "requested", asked["span_id"])]
    msgs = query(db, "SELECT role, content, tool_call_id, tool_calls, direction, span_id"
                     " FROM messages ORDER BY position")
    assert [(m["role"], m["content"], m["tool_call_id"]) for m in msgs] == [
        ("system", SYSTEM, None), ("user", "Weather in Paris?", None), ("assistant", None, None),
        ("tool", "18°C", "call_a"), ("tool", "22°C", "call_b"), ("assistant", "Paris 18°C, Tokyo 22°C.", None)]
    # The reply of the first call is stored once, although the second call resends it.
    assert msgs[2]["direction"] == "output" and msgs[2]["span_id"] == asked["span_id"]
    assert [(c["id"], c["arguments"]) for c in json.loads(msgs[2]["tool_calls"])] == [
        ("call_a", {"city": "Paris"}), ("call_b", {"city": "Tokyo"})]
    assert msgs[-1]["direction"] == "output" and msgs[-1]["span_id"] == answered["span_id"]


@pytest.mark.parametrize("interleave", [False, True], ids=["sequential", "interleaved"])
def test_chat_stream_joins_deltas_and_reassembles_tool_calls(
    db: Path, server: FakeServer, client: Any, interleave: bool
) -> None:
    server.push(chat_stream(["It ", "is ", "sunny."], interleave=interleave, request_id="req_s1",
                            tool_calls=[("call_a", "get_weather", PARIS),
                                        ("call_b", "get_weather", ['{"ci', 'ty": "To', 'kyo"}'])]))
    stream = client.chat.completions.create(model="gpt-4o", messages=ASK, tools=[WEATHER_TOOL], stream=True)
    assert isinstance(stream, openai.Stream)  # the SDK's own type
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "It is sunny."
    (call,) = _calls(db)
    assert (call["status"], call["response_text"], call["stop_reason"]) == ("ok", "It is sunny.", "tool_calls")
    assert call["request_id"] == "req_s1" and call["ttft_ms"] is not None
    assert [t[:3] for t in _tools(db)] == [("call_a", "get_weather", {"city": "Paris"}),
                                           ("call_b", "get_weather", {"city": "Tokyo"})]
    # No usage unless the caller asked for it, and agentlog never asks on its behalf.
    assert (call["input_tokens"], call["output_tokens"], call["cost_usd"]) == (None, None, None)
    assert "stream_options" not in server.received[0].body


def test_chat_stream_with_include_usage_records_it(db: Path, server: FakeServer, client: Any) -> None:
    server.push(chat_stream(["Hi"], include_usage=True, usage={**CHAT_USAGE, "cache_write_tokens": 8}))
    for _ in client.chat.completions.create(model="gpt-4o", messages=ASK, stream=True,
                                            stream_options={"include_usage": True}):
        pass
    (call,) = _calls(db)
    assert (call["input_tokens"], call["cached_tokens"], call["cache_write_tokens"], call["output_tokens"],
            call["reasoning_tokens"]) == (120, 64, 8, 40, 16)
    assert call["cost_usd"] == pytest.approx(gpt4o_cost(120, 40, cached=64, written=8))
    assert server.received[0].body["stream_options"] == {"include_usage": True}


def test_chat_stream_helper_is_recorded_once(db: Path, server: FakeServer, client: Any) -> None:
    server.push(chat_stream(["Checking ", "both."], tool_calls=[("call_a", "get_weather", PARIS)]))
    with client.chat.completions.stream(model="gpt-4o", messages=ASK, tools=[WEATHER_TOOL]) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_completion()
    assert "content.delta" in events and final.choices[0].message.content == "Checking both."
    (call,) = _calls(db)
    assert (call["status"], call["response_text"], call["stop_reason"]) == ("ok", "Checking both.", "tool_calls")
    assert [t[0] for t in _tools(db)] == ["call_a"]


class Weather(BaseModel):
    city: str


def test_parse_helpers_are_recorded(db: Path, server: FakeServer, client: Any) -> None:
    server.push(chat_completion(PARIS, usage=CHAT_USAGE), response(PARIS, usage=RESPONSES_USAGE))
    chat = client.chat.completions.parse(model="gpt-4o", messages=ASK, response_format=Weather)
    resp = client.responses.parse(model="gpt-4o", input="Weather?", text_format=Weather)
    assert chat.choices[0].message.parsed == Weather(city="Paris") and resp.output_parsed == Weather(city="Paris")
    chat_call, resp_call = _calls(db)
    assert (chat_call["response_text"], chat_call["input_tokens"]) == (PARIS, 120)
    assert (resp_call["response_text"], resp_call["input_tokens"]) == (PARIS, 200)
    assert json.loads(chat_call["request"])["response_format"]["type"] == "json_schema"


def test_an_unknown_model_is_unpriced_not_free(db: Path, server: FakeServer, client: Any) -> None:
    server.push(chat_completion("hi", model="my-finetune", usage=CHAT_USAGE))
    client.chat.completions.create(model="my-finetune", messages=ASK)
    (call,) = _calls(db)
    assert call["input_tokens"] == 120 and call["cost_usd"] is None


# -- Responses API ---------------------------------------------------------------------------
def test_response_text_reasoning_function_calls_and_usage(db: Path, server: FakeServer, client: Any) -> None:
    server.push(response("Checking the weather.", reasoning_summary="The user wants the weather.",
                         function_calls=[("call_a", "get_weather", PARIS), ("call_b", "get_weather", TOKYO)],
                         usage=RESPONSES_USAGE, request_id="req_r1"))
    history: Any = [{"role": "user", "content": "Weather in Paris?"},
                    {"type": "function_call", "call_id": "call_0", "name": "get_weather", "arguments": PARIS},
                    {"type": "function_call_output", "call_id": "call_0", "output": "18°C"},
                    {"role": "user", "content": [{"type": "input_text", "text": "And Tokyo?"}]}]
    result = client.responses.create(model="gpt-4o", instructions=SYSTEM, input=history, max_output_tokens=300)
    assert result.output_text == "Checking the weather."
    (call,) = _calls(db)
    assert (call["status"], call["response_text"], call["stop_reason"]) == ("ok", "Checking the weather.", "completed")
    assert call["reasoning_text"] == "The user wants the weather." and call["request_id"] == "req_r1"
    assert (call["input_tokens"], call["cached_tokens"], call["cache_write_tokens"], call["output_tokens"],
            call["reasoning_tokens"]) == (200, 128, 32, 50, 20)
    assert call["cost_usd"] == pytest.approx(gpt4o_cost(200, 50, cached=128, written=32))
    assert json.loads(call["request"])["max_output_tokens"] == 300
    # The tool call id is call_id (call_…), the one a function_call_output quotes; not the item id (fc_…).
    assert [t[:4] for t in _tools(db)] == [("call_a", "get_weather", {"city": "Paris"}, "requested"),
                                           ("call_b", "get_weather", {"city": "Tokyo"}, "requested")]
    msgs = query(db, "SELECT role, content, tool_call_id, tool_calls FROM messages ORDER BY position")
    assert [(m["role"], m["content"], m["tool_call_id"]) for m in msgs] == [
        ("system", SYSTEM, None), ("user", "Weather in Paris?", None), ("assistant", None, None),
        ("tool", "18°C", "call_0"), ("user", "And Tokyo?", None), ("assistant", "Checking the weather.", None)]
    assert json.loads(msgs[2]["tool_calls"])[0]["id"] == "call_0"


def test_responses_multi_turn_keeps_each_message_once(db: Path, server: FakeServer, client: Any) -> None:
    server.push(response("Checking.", reasoning_summary="Need the weather.",
                         function_calls=[("call_a", "get_weather", PARIS), ("call_b", "get_weather", TOKYO)]),
                response("Paris 18°C, Tokyo 22°C."))
    with agentlog.run("weather"):
        turn: list[Any] = [{"role": "user", "content": "Weather in Paris and Tokyo?"}]
        first = client.responses.create(model="gpt-4o", input=turn)
        turn += [*first.output,  # the SDK's own output items, as callers pass them back
                 {"type": "function_call_output", "call_id": "call_a", "output": "18°C"},
                 {"type": "function_call_output", "call_id": "call_b", "output": "22°C"}]
        client.responses.create(model="gpt-4o", input=turn)
    assert len(_calls(db)) == 2
    msgs = query(db, "SELECT role, content, tool_call_id, tool_calls, direction FROM messages ORDER BY position")
    assert [(m["role"], m["content"], m["tool_call_id"], m["direction"]) for m in msgs] == [
        ("user", "Weather in Paris and Tokyo?", None, "input"), ("assistant", "Checking.", None, "output"),
        ("tool", "18°C", "call_a", "input"), ("tool", "22°C", "call_b", "input"),
        ("assistant", "Paris 18°C, Tokyo 22°C.", None, "output")]
    assert [c["id"] for c in json.loads(msgs[1]["tool_calls"])] == ["call_a", "call_b"]


def test_a_response_without_input_is_read_as_a_response(db: Path, server: FakeServer, client: Any) -> None:
    server.push(response("From the stored prompt.", usage=RESPONSES_USAGE))
    client.responses.create(model="gpt-4o", prompt={"id": "pmpt_123"}, previous_response_id="resp_prev")
    (call,) = _calls(db)
    assert (call["response_text"], call["input_tokens"], call["stop_reason"]) == (
        "From the stored prompt.", 200, "completed")


def test_incomplete_response_is_ok_with_its_reason(db: Path, server: FakeServer, client: Any) -> None:
    server.push(response("Par", status="incomplete"))
    client.responses.create(model="gpt-4o", input="x")
    (call,) = _calls(db)
    assert (call["status"], call["response_text"], call["stop_reason"]) == ("ok", "Par", "max_output_tokens")


def test_response_stream_typed_events(db: Path, server: FakeServer, client: Any) -> None:
    server.push(response_stream(["It is", " sunny."], reasoning_summary="Look it up.", usage=RESPONSES_USAGE,
                                function_calls=[("call_a", "get_weather", PARIS)], request_id="req_rs"))
    events = [e.type for e in client.responses.create(model="gpt-4o", input="Weather?", stream=True)]
    assert events[-1] == "response.completed"
    (call,) = _calls(db)
    assert (call["status"], call["response_text"], call["reasoning_text"]) == ("ok", "It is sunny.", "Look it up.")
    assert (call["input_tokens"], call["cache_write_tokens"], call["output_tokens"]) == (200, 32, 50)
    assert call["request_id"] == "req_rs" and call["ttft_ms"] is not None and call["stop_reason"] == "completed"
    assert [t[:3] for t in _tools(db)] == [("call_a", "get_weather", {"city": "Paris"})]


def test_responses_stream_helper_and_final_response(db: Path, server: FakeServer, client: Any) -> None:
    server.push(response_stream(["Checking", " both."], usage=RESPONSES_USAGE,
                                function_calls=[("call_a", "get_weather", PARIS), ("call_b", "get_weather", TOKYO)]))
    with client.responses.stream(model="gpt-4o", input="Weather?") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.output_text == "Checking both."
    (call,) = _calls(db)
    assert (call["status"], call["response_text"], call["output_tokens"]) == ("ok", "Checking both.", 50)
    assert [t[0] for t in _tools(db)] == ["call_a", "call_b"]


def test_failed_response_stream_is_an_error_though_the_sdk_raises_nothing(
    db: Path, server: FakeServer, client: Any
) -> None:
    server.push(response_failed_stream(["Par"], code="server_error", message="boom", request_id="req_f1"))
    events = [e.type for e in client.responses.create(model="gpt-4o", input="x", stream=True)]
    assert events[-1] == "response.failed"
    (call,) = _calls(db)
    assert (call["status"], call["error"], call["response_text"]) == ("error", "server_error: boom", "Par")
    assert call["request_id"] == "req_f1"
    err = _error(db)
    assert err["kind"] == "server_error" and err["body"] == {"code": "server_error", "message": "boom"}


def test_failed_response_stream_through_the_helper(db: Path, server: FakeServer, client: Any) -> None:
    server.push(response_failed_stream(["Par"], code="rate_limit_exceeded", message="slow down"))
    with client.responses.stream(model="gpt-4o", input="x") as stream:
        stream.until_done()
        with pytest.raises(RuntimeError):
            stream.get_final_response()
    (call,) = _calls(db)
    assert (call["status"], call["error"]) == ("error", "rate_limit: slow down")
    assert _error(db)["kind"] == "rate_limit"


def test_failed_response_is_an_error_though_the_sdk_raises_nothing(
    db: Path, server: FakeServer, client: Any
) -> None:
    server.push(response(status="failed", error_code="server_error", error_message="boom", request_id="req_f2"))
    assert client.responses.create(model="gpt-4o", input="x").status == "failed"
    (call,) = _calls(db)
    assert (call["status"], call["error"], call["request_id"]) == ("error", "server_error: boom", "req_f2")
    err = _error(db)
    assert err["kind"] == "server_error" and err["body"]["code"] == "server_error"


# -- the async client ------------------------------------------------------------------------
def test_async_client_chat_and_responses(db: Path, server: FakeServer) -> None:
    server.push(chat_completion("one", usage=CHAT_USAGE), chat_stream(["t", "wo"], include_usage=True),
                response("three"), response_stream(["fo", "ur"], usage=RESPONSES_USAGE),
                response_stream(["fi", "ve"]), chat_stream(["si", "x"]), chat_stream(["cut ", "short"]),
                chat_stream(["eight"]), chat_stream(["ni", "ne"]))

    async def body(c: Any) -> None:
        await c.chat.completions.create(model="gpt-4o", messages=ASK)
        stream = await c.chat.completions.create(model="gpt-4o", messages=ASK, stream=True,
                                                 stream_options={"include_usage": True})
        assert isinstance(stream, openai.AsyncStream)
        async for _ in stream:
            pass
        await c.responses.create(model="gpt-4o", input="x")
        async for _ in await c.responses.create(model="gpt-4o", input="x", stream=True):
            pass
        async with c.responses.stream(model="gpt-4o", input="x") as helper:
            assert (await helper.get_final_response()).output_text == "five"
        raw = c.chat.completions.with_streaming_response.create(model="gpt-4o", messages=ASK, stream=True)
        async with raw as resp:
            async for _ in await resp.parse():
                pass
        async with await c.chat.completions.create(model="gpt-4o", messages=ASK, stream=True) as stream:
            async for chunk in stream:
                if chunk.choices[0].delta.content:
                    break
        raw = c.chat.completions.with_streaming_response.create(model="gpt-4o", messages=ASK, stream=True)
        async with raw as resp:
            assert [line async for line in resp.iter_lines()]
        legacy = await c.chat.completions.with_raw_response.create(model="gpt-4o", messages=ASK, stream=True)
        async for _ in legacy.parse():
            pass

    run_async(server, body)
    calls = _calls(db)
    assert [(c["response_text"], c["status"]) for c in calls] == [
        ("one", "ok"), ("two", "ok"), ("three", "ok"), ("four", "ok"), ("five", "ok"), ("six", "ok"),
        ("cut ", "interrupted"), (None, "ok"), ("nine", "ok")]
    assert [c["input_tokens"] for c in calls[:5]] == [120, 12, 14, 200, 14]


def test_async_http_error_is_recorded_and_reraised(db: Path, server: FakeServer) -> None:
    server.push(error(429, request_id="req_a429"))

    async def body(c: Any) -> None:
        with pytest.raises(openai.RateLimitError):
            await c.responses.create(model="gpt-4o", input="x")

    run_async(server, body)
    (call,) = _calls(db)
    assert call["status"] == "error" and call["request_id"] == "req_a429"
    assert _error(db)["kind"] == "rate_limit"


# -- errors ------------------------------------------------------------------------------------
class RecordingOpenAI(openai.OpenAI):
    """Keeps the status errors the SDK builds, to check the caller gets the very same object."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.made: list[BaseException] = []

    def _make_status_error(self, err_msg: str, *, body: object, response: Any) -> Any:
        exc = super()._make_status_error(err_msg, body=body, response=response)
        self.made.append(exc)
        return exc


@pytest.mark.parametrize(("status", "exc_type", "kind"), [
    (400, "BadRequestError", "bad_request"),
    (401, "AuthenticationError", "auth"),
    (429, "RateLimitError", "rate_limit"),
    (500, "InternalServerError", "server_error"),
    (503, "InternalServerError", "server_error"),
])
def test_http_errors_are_recorded_and_the_sdk_exception_reraised_unchanged(
    db: Path, server: FakeServer, status: int, exc_type: str, kind: str
) -> None:
    reply = error(status, request_id=f"req_e{status}")
    server.push(reply)
    with RecordingOpenAI(base_url=base_url(server), api_key=KEY, max_retries=0) as c:
        with pytest.raises(openai.APIStatusError) as caught:
            c.chat.completions.create(model="gpt-4o", messages=ASK)
        assert type(caught.value) is getattr(openai, exc_type)
        assert c.made == [caught.value]  # the object the SDK raised, not a copy or a wrapper
    (call,) = _calls(db)
    assert call["status"] == "error" and call["request_id"] == f"req_e{status}"
    assert reply.json["error"]["message"] in call["error"]
    err = _error(db)
    assert (err["kind"], err["http_status"], err["request_id"]) == (kind, status, f"req_e{status}")
    assert err["body"] == reply.json["error"]


def test_timeout_is_recorded_as_timeout(db: Path, server: FakeServer, client: Any) -> None:
    server.push(chat_completion("late", delay=0.5))
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o", messages=ASK, timeout=0.1)
    (call,) = _calls(db)
    assert call["status"] == "error"
    err = _error(db)
    assert err["kind"] == "timeout" and err["http_status"] is None


def test_unreachable_server_is_a_connection_error(db: Path, server: FakeServer) -> None:
    with (
        openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key=KEY, max_retries=0) as c,
        pytest.raises(openai.APIConnectionError),
    ):
        c.responses.create(model="gpt-4o", input="x")
    (call,) = _calls(db)
    assert call["status"] == "error" and _error(db)["kind"] == "connection"


def test_cut_stream_is_an_error_with_partial_text(db: Path, server: FakeServer, client: Any) -> None:
    server.push(chat_stream(["only ", "this ", "much ", "of it"], cut_after=3))
    with pytest.raises(openai.APIConnectionError):
        for _ in client.chat.completions.create(model="gpt-4o", messages=ASK, stream=True):
            pass
    (call,) = _calls(db)
    assert (call["status"], call["response_text"]) == ("error", "only this ")
    assert _error(db)["kind"] == "connection"


def test_error_chunk_mid_stream_is_an_error(db: Path, server: FakeServer, client: Any) -> None:
    inner = {"message": "The server had an error.", "type": "server_error", "param": None, "code": None}
    server.push(chat_stream(["Hal"], error=inner))
    with pytest.raises(openai.APIError) as caught:
        for _ in client.chat.completions.create(model="gpt-4o", messages=ASK, stream=True):
            pass
    assert type(caught.value) is openai.APIError
    (call,) = _calls(db)
    assert (call["status"], call["response_text"]) == ("error", "Hal")
    assert call["error"] == "server_error: The server had an error."
    err = _error(db)
    assert err["kind"] == "server_error" and err["body"] == inner


def test_breaking_out_of_a_stream_is_interrupted_with_partial_text(db: Path, server: FakeServer, client: Any) -> None:
    server.push(chat_stream(["first ", "second ", "third"]))
    with client.chat.completions.create(model="gpt-4o", messages=ASK, stream=True) as stream:
        for chunk in stream:
            if chunk.choices[0].delta.content:
                break
    (call,) = _calls(db)
    assert (call["status"], call["response_text"]) == ("interrupted", "first ")


def test_an_unfinished_stream_collected_is_interrupted(db: Path, server: FakeServer, client: Any) -> None:
    server.push(response_stream(["never ", "finished"]))
    stream = client.responses.create(model="gpt-4o", input="x", stream=True)
    events = iter(stream)
    while next(events).type != "response.output_text.delta":
        pass
    del stream, events
    gc.collect()
    (call,) = _calls(db)
    assert (call["status"], call["response_text"]) == ("interrupted", "never ")


# -- raw responses and retries -----------------------------------------------------------------
def test_with_raw_response_keeps_headers_and_parse(db: Path, server: FakeServer, client: Any) -> None:
    server.push(chat_completion("raw", usage=CHAT_USAGE, request_id="req_raw"),
                chat_stream(["raw ", "stream"], request_id="req_raw2"))
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=ASK)
    assert raw.headers["x-request-id"] == "req_raw"
    assert raw.parse().choices[0].message.content == "raw"
    raw_stream = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=ASK, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in raw_stream.parse()) == "raw stream"
    first, second = _calls(db)
    assert (first["status"], first["response_text"], first["request_id"], first["input_tokens"]) == (
        "ok", "raw", "req_raw", 120)
    assert (second["status"], second["response_text"], second["request_id"]) == ("ok", "raw stream", "req_raw2")


def test_with_streaming_response_parse_and_raw_lines(db: Path, server: FakeServer, client: Any) -> None:
    server.push(response("parsed", function_calls=[("call_p", "get_weather", PARIS)], request_id="req_sr"),
                chat_stream(["streamed ", "parse"]), chat_stream(["raw ", "lines"]), chat_completion("as json"))
    with client.responses.with_streaming_response.create(model="gpt-4o", input="x") as resp:
        assert resp.headers["x-request-id"] == "req_sr"
        assert resp.parse().output_text == "parsed"
        assert resp.parse().output_text == "parsed"  # parse() caches: parsing twice still records once
    with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=ASK, stream=True) as resp:
        assert resp.parse() is resp.parse()
        assert "".join(c.choices[0].delta.content or "" for c in resp.parse()) == "streamed parse"
    with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=ASK, stream=True) as resp:
        lines = list(resp.iter_lines())
    assert "data: [DONE]" in lines
    with client.chat.completions.with_streaming_response.create(model="gpt-4o", messages=ASK) as resp:
        assert resp.json()["choices"][0]["message"]["content"] == "as json"
    parsed, streamed, raw, as_json = _calls(db)
    assert (parsed["status"], parsed["response_text"], parsed["request_id"]) == ("ok", "parsed", "req_sr")
    assert (streamed["status"], streamed["response_text"]) == ("ok", "streamed parse")
    # Lines read by the caller: the call is closed when the response is, without its text.
    assert (raw["status"], raw["response_text"]) == ("ok", None)
    assert (as_json["status"], as_json["response_text"]) == ("ok", "as json")
    assert len(query(db, "SELECT 1 FROM events WHERE type = 'llm.tool_call'")) == 1
    assert len(query(db, "SELECT 1 FROM events WHERE type = 'llm.finished'")) == 4


def test_retries_are_one_inference(db: Path, server: FakeServer) -> None:
    agentlog.instrument("openai", capture_http=True)
    server.push(error(500, retry_after=0.01), chat_completion("second time lucky"))
    with openai.OpenAI(base_url=base_url(server), api_key=KEY, max_retries=1) as c:
        c.chat.completions.create(model="gpt-4o", messages=ASK)
    assert [r.header("x-stainless-retry-count") for r in server.received] == ["0", "1"]
    (call,) = _calls(db)
    assert (call["status"], call["response_text"]) == ("ok", "second time lucky")
    rows = query(db, "SELECT span_id, payload FROM events WHERE type = 'llm.http' ORDER BY seq")
    assert [json.loads(r["payload"])["response"]["status"] for r in rows] == [500, 200]
    assert {r["span_id"] for r in rows} == {call["span_id"]}


# -- secrets, scope and patching --------------------------------------------------------------
def test_api_key_never_reaches_the_database(db: Path, server: FakeServer, client: Any) -> None:
    agentlog.instrument("openai", capture_http=True)
    server.push(chat_completion("ok"), chat_stream(["str", "eam"]), response_stream(["re", "sp"]), error(401))
    client.chat.completions.create(model="gpt-4o", messages=ASK)
    for _ in client.chat.completions.create(model="gpt-4o", messages=ASK, stream=True):
        pass
    for _ in client.responses.create(model="gpt-4o", input="x", stream=True):
        pass
    with pytest.raises(openai.AuthenticationError):
        client.responses.create(model="gpt-4o", input="x")
    assert server.received[-1].header("authorization") == f"Bearer {KEY}"  # it was sent...
    assert len(_calls(db)) == 4
    http = query(db, "SELECT payload FROM events WHERE type = 'llm.http'")
    assert len(http) == 4
    assert all(json.loads(r["payload"])["request"]["headers"]["authorization"] == "[REDACTED]" for r in http)
    agentlog.shutdown()
    files = list(db.parent.glob(db.name + "*"))
    assert files
    for path in files:
        assert KEY.encode() not in path.read_bytes()  # ...and never stored
        assert KEY[8:].encode() not in path.read_bytes()


def test_calls_outside_a_run_go_to_the_implicit_run(db: Path, server: FakeServer, client: Any) -> None:
    server.push(chat_completion("loose"))
    client.chat.completions.create(model="gpt-4o", messages=ASK)
    (call,) = _calls(db)
    (run,) = query(db, "SELECT implicit, llm_calls FROM runs WHERE run_id = ?", call["run_id"])
    assert (run["implicit"], run["llm_calls"]) == (1, 1)


def test_instrumenting_twice_records_once_and_uninstrument_stops(db: Path, server: FakeServer, client: Any) -> None:
    assert agentlog.instrument("openai") == ["openai"]
    server.push(chat_completion("once"), chat_completion("never"))
    client.chat.completions.create(model="gpt-4o", messages=ASK)
    agentlog.uninstrument("openai")
    assert client.chat.completions.create(model="gpt-4o", messages=ASK).choices[0].message.content == "never"
    assert [c["response_text"] for c in _calls(db)] == ["once"]


def test_a_single_client_can_be_instrumented(db: Path, server: FakeServer) -> None:
    agentlog.uninstrument()
    watched = openai.OpenAI(base_url=base_url(server), api_key=KEY, max_retries=0)
    other = openai.OpenAI(base_url=base_url(server), api_key=KEY, max_retries=0)
    assert agentlog.instrument(watched) == ["openai"]
    server.push(chat_completion("watched"), chat_completion("other"), response("watched too"))
    watched.chat.completions.create(model="gpt-4o", messages=ASK)
    other.chat.completions.create(model="gpt-4o", messages=ASK)
    watched.responses.create(model="gpt-4o", input="x")
    assert [c["response_text"] for c in _calls(db)] == ["watched", "watched too"]


def test_a_single_async_client_can_be_instrumented(db: Path, server: FakeServer) -> None:
    agentlog.uninstrument()
    server.push(chat_stream(["async ", "watched"]))

    async def body(c: Any) -> None:
        agentlog.instrument(c)
        async for _ in await c.chat.completions.create(model="gpt-4o", messages=ASK, stream=True):
            pass

    run_async(server, body)
    assert [c["response_text"] for c in _calls(db)] == ["async watched"]


def test_a_stream_still_open_at_exit_is_not_left_running(db: Path, server: FakeServer) -> None:
    import os
    import subprocess
    import sys
    import textwrap

    server.push(chat_stream(["left ", "open"], chunk_delay=0.05))
    code = textwrap.dedent(f"""
        import openai, agentlog
        agentlog.configure({str(db)!r})
        agentlog.instrument("openai")
        client = openai.OpenAI(base_url={base_url(server)!r}, api_key="k", max_retries=0)
        stream = client.chat.completions.create(model="gpt-4o", messages={ASK!r}, stream=True)
        it = iter(stream)
        next(it), next(it)
        KEEP = stream, it   # still referenced when the interpreter exits
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    (call,) = query(db, "SELECT status, response_text FROM llm_calls")
    assert (call["status"], call["response_text"]) == ("interrupted", "left ")


def test_reasoning_of_openai_compatible_servers_is_recorded_from_fields_the_sdk_does_not_declare(
    db: Path, server: FakeServer, client: Any
) -> None:
    """DeepSeek-style servers send ``reasoning_content``, vLLM ``reasoning``: extras of the SDK's models."""
    streamed = chat_stream(["Sunny."])
    assert streamed.sse is not None
    role = streamed.sse[0][1]
    thinking = [(None, {**role, "choices": [{**role["choices"][0], "delta": {"reasoning_content": part}}]})
                for part in ("Look at ", "the sky.")]
    streamed.sse[1:1] = thinking
    server.push(streamed)
    plain = chat_completion("Cloudy.")
    plain.json["choices"][0]["message"]["reasoning"] = "Checked twice."
    server.push(plain)
    assert "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="gpt-4o", messages=ASK, stream=True)) == "Sunny."
    client.chat.completions.create(model="gpt-4o", messages=ASK)
    calls = _calls(db)
    assert [(c["response_text"], c["reasoning_text"]) for c in calls] == [
        ("Sunny.", "Look at the sky."), ("Cloudy.", "Checked twice.")]


def test_a_chat_stream_read_as_plain_dicts_is_recorded_the_same(db: Path, server: FakeServer, client: Any) -> None:
    """``client.post(..., stream_cls=Stream[object])`` yields the chunks as dicts, not the SDK's models."""
    server.push(chat_stream(["It ", "is ", "sunny."], tool_calls=[("call_a", "get_weather", PARIS)]))
    stream = client.post("/chat/completions", body={"model": "gpt-4o", "messages": ASK, "stream": True},
                         cast_to=object, stream=True, stream_cls=openai.Stream[object])
    chunks = list(stream)
    assert isinstance(chunks[0], dict)
    (call,) = _calls(db)
    assert (call["status"], call["response_text"], call["stop_reason"]) == ("ok", "It is sunny.", "tool_calls")
    assert [t[:3] for t in _tools(db)] == [("call_a", "get_weather", {"city": "Paris"})]
