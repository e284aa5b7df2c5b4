"""The fake OpenAI provider speaks OpenAI's wire format: proven with the official SDK.

Nothing here is instrumented. Each builder in ``fakes.openai_fake`` is (1) validated
strictly against the SDK's own pydantic types, which the client itself only
``construct``s leniently, and (2) sent over real HTTP to the official sync and
async clients, whose parsers and stream helpers must read it as they read the
real service. Later instrumentation tests can then trust that what they see is
what production traffic looks like.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

from fakes._server import FakeServer, Reply
from fakes.openai_fake import (
    base_url,
    chat_completion,
    chat_stream,
    default,
    error,
    models,
    response,
    response_failed_stream,
    response_stream,
)

MESSAGES: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
PARIS = '{"city": "Paris", "unit": "celsius"}'
TOKYO = '{"city": "Tokyo", "unit": "celsius"}'


def quiet_resets(server: FakeServer) -> FakeServer:
    """Don't print tracebacks for clients that hang up between requests.

    The sync SDK closes a stream's connection right after ``[DONE]`` (or an error
    event) without reading the chunked terminator, so the socket may close with
    unread bytes and the kernel sends a reset; the server thread then fails while
    reading the next request line, outside ``FakeServer._serve``'s own guard, and
    socketserver prints the traceback. (Proposed fix in ``_server.py``: catch
    ConnectionResetError/BrokenPipeError in the handler's ``handle()``.)
    """
    httpd = server._httpd
    report = httpd.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            report(request, client_address)

    httpd.handle_error = handle_error  # type: ignore[method-assign]
    return server


@pytest.fixture(scope="module")
def _shared_server() -> Iterator[FakeServer]:
    # One server per module: stopping a FakeServer takes up to its 0.5 s poll interval.
    with quiet_resets(FakeServer()) as s:
        yield s


@pytest.fixture(scope="module")
def client(_shared_server: FakeServer) -> Iterator[openai.OpenAI]:
    # Module-scoped too: building a client (TLS context included) costs ~0.1 s.
    with openai.OpenAI(base_url=base_url(_shared_server), api_key="sk-test", max_retries=0) as c:
        yield c


def run_async(server: FakeServer, body: Any) -> Any:
    """Run ``body(client)`` with a fresh AsyncOpenAI: the client binds to the loop
    that first uses it, so each test makes and closes its own inside the loop."""

    async def main() -> Any:
        async with openai.AsyncOpenAI(
            base_url=base_url(server), api_key="sk-test", max_retries=0
        ) as c:
            return await body(c)

    return asyncio.run(main())


def sse_data(reply: Reply) -> list[Any]:
    assert reply.sse is not None
    return [data for _, data in reply.sse]


# -- 1. strict validation against the SDK's types (no network) ---------------------------
CHAT_REPLIES = {
    "text": lambda: chat_completion("Hi"),
    "tools": lambda: chat_completion(
        tool_calls=[("call_a", "get_weather", PARIS), ("call_b", "get_weather", TOKYO)]
    ),
    "refusal": lambda: chat_completion(refusal="I can't help with that."),
    "usage": lambda: chat_completion(
        "Hi", usage={"prompt_tokens": 100, "cached_tokens": 64, "cache_write_tokens": 5}
    ),
}


@pytest.mark.parametrize("make", CHAT_REPLIES.values(), ids=CHAT_REPLIES.keys())
def test_chat_completion_bodies_validate_strictly(make: Any) -> None:
    reply = make()
    ChatCompletion.model_validate(reply.json)
    assert reply.headers["x-request-id"].startswith("req_")


CHAT_STREAMS = {
    "text": lambda: chat_stream(["Hel", "lo"]),
    "usage": lambda: chat_stream(["Hi"], include_usage=True),
    "tools": lambda: chat_stream(
        tool_calls=[("call_a", "get_weather", PARIS), ("call_b", "get_weather", TOKYO)]
    ),
    "interleaved": lambda: chat_stream(
        ["Let me check."],
        tool_calls=[("call_a", "get_weather", PARIS), ("call_b", "get_weather", TOKYO)],
        interleave=True,
    ),
}


@pytest.mark.parametrize("make", CHAT_STREAMS.values(), ids=CHAT_STREAMS.keys())
def test_chat_stream_chunks_validate_strictly(make: Any) -> None:
    reply = make()
    assert reply.sse is not None
    *chunks, done = reply.sse
    assert done == (None, "[DONE]")
    assert all(name is None for name, _ in chunks), "chat streams have no `event:` lines"
    for _, data in chunks:
        ChatCompletionChunk.model_validate(data)
    assert len({data["id"] for _, data in chunks}) == 1


RESPONSES = {
    "text": lambda: response("Hi"),
    "everything": lambda: response(
        "Hi",
        function_calls=[("call_a", "get_weather", PARIS)],
        reasoning_summary=["First.", "Second."],
        usage={"input_tokens": 50, "cached_tokens": 20, "cache_write_tokens": 7},
    ),
    "incomplete": lambda: response("H", status="incomplete"),
    "failed": lambda: response(status="failed"),
}


@pytest.mark.parametrize("make", RESPONSES.values(), ids=RESPONSES.keys())
def test_response_bodies_validate_strictly(make: Any) -> None:
    Response.model_validate(make().json)


RESPONSE_STREAMS = {
    "text": lambda: response_stream(["Hel", "lo"]),
    "everything": lambda: response_stream(
        ["Let me", " check."],
        function_calls=[("call_a", "get_weather", PARIS), ("call_b", "get_weather", TOKYO)],
        reasoning_summary=["Need weather.", "Two cities."],
    ),
    "tools-only": lambda: response_stream(None, function_calls=[("call_a", "f", "{}")]),
    "incomplete": lambda: response_stream(["Hel"], status="incomplete"),
    "failed": lambda: response_failed_stream(["Hel"], reasoning_summary="Thinking."),
}


@pytest.mark.parametrize("make", RESPONSE_STREAMS.values(), ids=RESPONSE_STREAMS.keys())
def test_response_stream_events_validate_strictly(make: Any) -> None:
    reply = make()
    assert reply.sse is not None
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    for seq, (name, data) in enumerate(reply.sse):
        assert name == data["type"], "the SSE event name repeats the body's type"
        assert data["sequence_number"] == seq
        adapter.validate_python(data)
    assert reply.sse[0][0] == "response.created"
    assert reply.sse[-1][0] in {"response.completed", "response.incomplete", "response.failed"}


def test_error_bodies_have_openai_shape() -> None:
    for status in (400, 401, 403, 404, 429, 500, 503):
        body = error(status).json
        assert set(body) == {"error"}
        assert set(body["error"]) == {"message", "type", "param", "code"}
    assert error(429, retry_after=1.5).headers["retry-after"] == "1.5"
    assert error(400, code=None).json["error"]["code"] is None


# -- 2. Chat Completions over HTTP --------------------------------------------------------------
def test_chat_completion_text_usage_and_request(server: FakeServer, client: openai.OpenAI) -> None:
    server.push(
        chat_completion(
            "It is sunny.",
            model="gpt-4o-2024-08-06",
            id="chatcmpl-abc",
            request_id="req_123",
            usage={
                "prompt_tokens": 120,
                "completion_tokens": 40,
                "cached_tokens": 64,
                "reasoning_tokens": 16,
            },
        )
    )
    result = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, temperature=0.2)

    assert result.id == "chatcmpl-abc"
    assert result.model == "gpt-4o-2024-08-06"
    assert result._request_id == "req_123"
    choice = result.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("It is sunny.", "stop")
    assert choice.message.tool_calls is None
    usage = result.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (120, 40, 160)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 64
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 16

    # The server saw what the SDK sent, secrets included.
    (req,) = server.received
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.header("authorization") == "Bearer sk-test"
    assert req.body == {"model": "gpt-4o", "messages": MESSAGES, "temperature": 0.2}


def test_chat_completion_parallel_tool_calls(server: FakeServer, client: openai.OpenAI) -> None:
    server.push(
        chat_completion(
            tool_calls=[("call_a", "get_weather", PARIS), ("call_b", "get_weather", TOKYO)]
        )
    )
    result = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL])
    message = result.choices[0].message
    assert result.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    calls = message.tool_calls or []
    assert [(c.id, c.type) for c in calls] == [("call_a", "function"), ("call_b", "function")]
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
        ("get_weather", json.loads(PARIS)),
        ("get_weather", json.loads(TOKYO)),
    ]
    assert server.received[0].body["tools"] == [WEATHER_TOOL]


def test_with_raw_response_exposes_headers(server: FakeServer, client: openai.OpenAI) -> None:
    server.push(chat_completion("Hi", request_id="req_raw"))
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=MESSAGES)
    assert raw.headers["x-request-id"] == "req_raw"
    assert raw.request_id == "req_raw"
    assert raw.status_code == 200
    assert raw.parse().choices[0].message.content == "Hi"


def test_chat_stream_without_usage_unless_asked(server: FakeServer, client: openai.OpenAI) -> None:
    server.push(chat_stream(["It ", "is ", "sunny."], request_id="req_s"))
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert stream.response.headers["x-request-id"] == "req_s"
    chunks = list(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "It is sunny."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert server.received[0].body["stream"] is True
    assert "stream_options" not in server.received[0].body


def test_chat_stream_include_usage_final_chunk(server: FakeServer, client: openai.OpenAI) -> None:
    server.push(
        chat_stream(
            ["Hi"],
            include_usage=True,
            usage={"prompt_tokens": 30, "completion_tokens": 5, "cached_tokens": 10},
        )
    )
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    *body, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (30, 5)
    assert last.usage.prompt_tokens_details is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 10
    assert all(c.usage is None for c in body)
    assert body[-1].choices[0].finish_reason == "stop"
    assert server.received[0].body["stream_options"] == {"include_usage": True}


def test_chat_stream_tool_arguments_arrive_in_fragments(
    server: FakeServer, client: openai.OpenAI
) -> None:
    server.push(
        chat_stream(tool_calls=[("call_a", "get_weather", PARIS), ("call_b", "get_weather", TOKYO)])
    )
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL], stream=True
        )
    )
    fragments: dict[int, list[str]] = {}
    ids: dict[int, str] = {}
    for chunk in chunks:
        for call in chunk.choices[0].delta.tool_calls or []:
            if call.id:
                ids[call.index] = call.id
            assert call.function is not None
            fragments.setdefault(call.index, []).append(call.function.arguments or "")
    assert ids == {0: "call_a", 1: "call_b"}
    assert all(len([f for f in frags if f]) >= 2 for frags in fragments.values())
    assert "".join(fragments[0]) == PARIS and "".join(fragments[1]) == TOKYO
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("interleave", [False, True], ids=["sequential", "interleaved"])
def test_chat_stream_helper_reassembles_parallel_calls(
    server: FakeServer, client: openai.OpenAI, interleave: bool
) -> None:
    server.push(
        chat_stream(
            ["Checking ", "both."],
            tool_calls=[
                ("call_a", "get_weather", PARIS),
                ("call_b", "get_weather", ['{"city"', ': "Tok', 'yo", "unit": "celsius"}']),
            ],
            interleave=interleave,
        )
    )
    with client.chat.completions.stream(
        model="gpt-4o", messages=MESSAGES, tools=[WEATHER_TOOL]
    ) as stream:
        events = list(stream)
        final = stream.get_final_completion()

    deltas = [e for e in events if e.type == "tool_calls.function.arguments.delta"]
    assert {e.index for e in deltas} == {0, 1}
    assert len(deltas) >= 6
    done = {e.index: e.arguments for e in events if e.type == "tool_calls.function.arguments.done"}
    if interleave:
        # The helper fires `.done` when the index changes, so interleaved fragments
        # (never sent by OpenAI, seen from some compatible servers) get premature
        # `.done` events; only the final completion is right. Don't trust `.done`.
        assert done != {0: PARIS, 1: TOKYO}
    else:
        assert done == {0: PARIS, 1: TOKYO}
    message = final.choices[0].message
    assert message.content == "Checking both."
    assert [(c.id, c.function.arguments) for c in message.tool_calls or []] == [
        ("call_a", PARIS),
        ("call_b", TOKYO),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    # The helper goes through `create(stream=True)` and says so in a header.
    assert server.received[0].header("x-stainless-helper-method") == "chat.completions.stream"
    assert server.received[0].body["stream"] is True


class Weather(BaseModel):
    city: str
    unit: str


def test_parse_helpers_read_the_fake(server: FakeServer, client: openai.OpenAI) -> None:
    """``parse()`` posts directly (not through ``create``) but parses the same bodies."""
    server.push(chat_completion(PARIS), response(PARIS))
    chat = client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Weather)
    assert chat.choices[0].message.parsed == Weather(city="Paris", unit="celsius")
    resp = client.responses.parse(model="gpt-4o", input="x", text_format=Weather)
    assert resp.output_parsed == Weather(city="Paris", unit="celsius")
    assert server.received[0].header("x-stainless-helper-method") == "chat.completions.parse"
    assert server.received[0].body["response_format"]["type"] == "json_schema"
    assert server.received[1].body["text"]["format"]["type"] == "json_schema"


def test_chat_stream_error_event_raises_api_error(
    server: FakeServer, client: openai.OpenAI
) -> None:
    inner = {
        "message": "The server had an error.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    server.push(chat_stream(["Hal"], error=inner))
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    seen: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "Hal"
    assert not isinstance(info.value, openai.APIStatusError)
    assert info.value.body == inner
    assert info.value.message == "The server had an error."


# -- 3. Responses API over HTTP -------------------------------------------------------------------
def test_response_text_reasoning_calls_and_usage(server: FakeServer, client: openai.OpenAI) -> None:
    server.push(
        response(
            "Checking the weather.",
            function_calls=[("call_a", "get_weather", PARIS), ("call_b", "get_weather", TOKYO)],
            reasoning_summary="The user wants the weather.",
            usage={
                "input_tokens": 200,
                "output_tokens": 50,
                "cached_tokens": 128,
                "cache_write_tokens": 32,
                "reasoning_tokens": 20,
            },
            id="resp_abc",
            request_id="req_r",
        )
    )
    result = client.responses.create(model="gpt-4o", input="Weather in Paris and Tokyo?")

    assert (result.id, result.status, result._request_id) == ("resp_abc", "completed", "req_r")
    assert result.output_text == "Checking the weather."
    assert [item.type for item in result.output] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    reasoning = result.output[0]
    assert reasoning.type == "reasoning"
    assert [s.text for s in reasoning.summary] == ["The user wants the weather."]
    calls = [item for item in result.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_a", "get_weather", PARIS),
        ("call_b", "get_weather", TOKYO),
    ]
    assert all(c.id and c.id.startswith("fc_") for c in calls)
    usage = result.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (200, 50, 250)
    assert usage.input_tokens_details.cached_tokens == 128
    assert usage.input_tokens_details.cache_write_tokens == 32
    assert usage.output_tokens_details.reasoning_tokens == 20
    (req,) = server.received
    assert (req.path, req.body) == (
        "/v1/responses",
        {"model": "gpt-4o", "input": "Weather in Paris and Tokyo?"},
    )
    assert req.header("authorization") == "Bearer sk-test"


def test_response_failed_and_incomplete_do_not_raise(
    server: FakeServer, client: openai.OpenAI
) -> None:
    server.push(response(status="failed"), response("Par", status="incomplete"))
    failed = client.responses.create(model="gpt-4o", input="x")
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "server_error" and failed.usage is None
    incomplete = client.responses.create(model="gpt-4o", input="x")
    assert incomplete.status == "incomplete"
    assert incomplete.incomplete_details is not None
    assert incomplete.incomplete_details.reason == "max_output_tokens"
    assert incomplete.output_text == "Par"


def test_response_raw_stream_event_sequence(server: FakeServer, client: openai.OpenAI) -> None:
    server.push(
        response_stream(
            ["It is", " sunny."],
            function_calls=[("call_a", "get_weather", PARIS)],
            reasoning_summary="Look it up.",
            usage={"input_tokens": 40, "output_tokens": 12, "reasoning_tokens": 4},
        )
    )
    stream = client.responses.create(model="gpt-4o", input="Weather?", stream=True)
    events = list(stream)
    types = [e.type for e in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1]
    assert completed.type == "response.completed"
    assert completed.response.output_text == "It is sunny."
    assert completed.response.usage is not None
    assert completed.response.usage.output_tokens_details.reasoning_tokens == 4
    assert events[0].type == "response.created"
    assert events[0].response.usage is None and events[0].response.output == []
    assert server.received[0].body["stream"] is True


def test_responses_stream_helper_final_response(server: FakeServer, client: openai.OpenAI) -> None:
    server.push(
        response_stream(
            ["Checking", " both."],
            function_calls=[
                ("call_a", "get_weather", PARIS),
                ("call_b", "get_weather", ['{"city": "To', 'kyo", "unit"', ': "celsius"}']),
            ],
            reasoning_summary=["Two cities.", "Call twice."],
        )
    )
    with client.responses.stream(model="gpt-4o", input="Weather?") as stream:
        events = list(stream)
        final = stream.get_final_response()

    text_deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert [e.snapshot for e in text_deltas] == ["Checking", "Checking both."]
    args = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert args[-1].snapshot == TOKYO
    assert final.output_text == "Checking both."
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.arguments) for c in calls] == [("call_a", PARIS), ("call_b", TOKYO)]
    reasoning = final.output[0]
    assert reasoning.type == "reasoning"
    assert [s.text for s in reasoning.summary] == ["Two cities.", "Call twice."]


def test_response_failed_stream_raises_nothing(server: FakeServer, client: openai.OpenAI) -> None:
    server.push(response_failed_stream(["Par"], code="server_error", message="boom"))
    events = list(client.responses.create(model="gpt-4o", input="x", stream=True))
    last = events[-1]
    assert last.type == "response.failed"
    assert last.response.status == "failed"
    assert last.response.error is not None
    assert (last.response.error.code, last.response.error.message) == ("server_error", "boom")
    assert [e.delta for e in events if e.type == "response.output_text.delta"] == ["Par"]

    # The helper iterates without raising too; only asking for a final response fails.
    server.push(response_failed_stream(["Par"]))
    with client.responses.stream(model="gpt-4o", input="x") as stream:
        helper_events = list(stream)
        assert helper_events[-1].type == "response.failed"
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()


def test_response_incomplete_stream_has_no_final_response(
    server: FakeServer, client: openai.OpenAI
) -> None:
    server.push(response_stream(["Par"], status="incomplete"))
    with client.responses.stream(model="gpt-4o", input="x") as stream:
        events = list(stream)
        assert events[-1].type == "response.incomplete"
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()


# -- 4. errors and broken transport --------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_error_statuses_raise_sdk_exceptions(
    server: FakeServer, client: openai.OpenAI, status: int, exc_type: type[Exception]
) -> None:
    reply = error(status, request_id=f"req_err{status}")
    server.push(reply)
    with pytest.raises(exc_type) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    exc = info.value
    assert isinstance(exc, openai.APIStatusError)
    assert exc.status_code == status
    assert exc.request_id == f"req_err{status}"
    assert exc.body == reply.json["error"]  # the inner object, not the envelope
    assert exc.code == reply.json["error"]["code"]
    assert exc.type == reply.json["error"]["type"]
    assert str(exc) == f"Error code: {status} - {reply.json['error']['message']}"


def test_rate_limit_retry_after_header(server: FakeServer, client: openai.OpenAI) -> None:
    server.push(error(429, retry_after=2))
    with pytest.raises(openai.RateLimitError) as info:
        client.responses.create(model="gpt-4o", input="x")
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.code == "rate_limit_exceeded"


def test_sdk_retry_sends_a_second_request(server: FakeServer) -> None:
    """With retries on, one ``create`` call is several HTTP requests."""
    server.push(error(429, retry_after=0.01), chat_completion("Hi"))
    with openai.OpenAI(base_url=base_url(server), api_key="sk-test", max_retries=1) as c:
        result = c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert result.choices[0].message.content == "Hi"
    assert [r.header("x-stainless-retry-count") for r in server.received] == ["0", "1"]


def test_error_on_stream_request_raises_before_iteration(
    server: FakeServer, client: openai.OpenAI
) -> None:
    server.push(error(500))
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)


def test_cut_chat_stream_raises_connection_error(server: FakeServer, client: openai.OpenAI) -> None:
    server.push(chat_stream(["a", "b", "c", "d"], cut_after=3))
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    seen: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content or "")
    assert seen == ["", "a", "b"]


def test_cut_responses_stream_raises_connection_error(
    server: FakeServer, client: openai.OpenAI
) -> None:
    server.push(response_stream(["a", "b", "c"], cut_after=5))
    with (
        pytest.raises(openai.APIConnectionError),
        client.responses.stream(model="gpt-4o", input="x") as stream,
    ):
        for _ in stream:
            pass


def test_delay_gives_a_client_timeout(server: FakeServer, client: openai.OpenAI) -> None:
    server.push(chat_completion("late", delay=1.0))
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, timeout=0.2)


# -- 5. the async client -----------------------------------------------------------------------------
def test_async_client_parses_every_builder(server: FakeServer) -> None:
    server.push(
        chat_completion("one", request_id="req_a1"),
        chat_stream(["t", "wo"], include_usage=True),
        chat_stream(
            tool_calls=[("call_a", "get_weather", PARIS), ("call_b", "get_weather", TOKYO)]
        ),
        response("four"),
        response_stream(["fi", "ve"], function_calls=[("call_c", "get_weather", PARIS)]),
        error(429, request_id="req_a6"),
        chat_stream(["x", "y", "z"], cut_after=2),
    )

    async def body(c: openai.AsyncOpenAI) -> None:
        one = await c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert (one.choices[0].message.content, one._request_id) == ("one", "req_a1")

        stream = await c.chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "two"
        assert chunks[-1].usage is not None and chunks[-1].choices == []

        async with c.chat.completions.stream(model="gpt-4o", messages=MESSAGES) as helper:
            final = await helper.get_final_completion()
        assert [t.function.arguments for t in final.choices[0].message.tool_calls or []] == [
            PARIS,
            TOKYO,
        ]

        four = await c.responses.create(model="gpt-4o", input="x")
        assert four.output_text == "four"

        async with c.responses.stream(model="gpt-4o", input="x") as rstream:
            five = await rstream.get_final_response()
        assert five.output_text == "five"
        assert [i.call_id for i in five.output if i.type == "function_call"] == ["call_c"]

        with pytest.raises(openai.RateLimitError) as info:
            await c.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        assert (info.value.status_code, info.value.request_id) == (429, "req_a6")

        cut = await c.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIConnectionError):
            async for _ in cut:
                pass

    run_async(server, body)
    assert len(server.received) == 7
    assert all(r.header("authorization") == "Bearer sk-test" for r in server.received)
    assert server.received[0].header("x-stainless-async") == "async:asyncio"


# -- 6. the default factory ------------------------------------------------------------------------
def test_default_answers_like_the_api() -> None:
    with (
        quiet_resets(FakeServer(default=default)) as server,
        openai.OpenAI(base_url=base_url(server), api_key="sk-test", max_retries=0) as c,
    ):
        chat = c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert chat.model == "gpt-4o-mini" and chat.choices[0].message.content

        plain = list(c.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True))
        assert all(ch.usage is None for ch in plain)
        asked = list(
            c.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        assert asked[-1].usage is not None

        assert c.responses.create(model="o3", input="x").model == "o3"
        with c.responses.stream(model="gpt-4o", input="x") as stream:
            assert stream.get_final_response().output_text == "Hello from the fake."

        assert [m.id for m in c.models.list()] == ["gpt-4o", "gpt-4o-mini", "o3"]
        with pytest.raises(openai.NotFoundError) as info:
            c.embeddings.create(model="text-embedding-3-small", input="x")
        assert info.value.body == {
            "message": "Invalid URL (POST /v1/embeddings)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }


def test_models_builder_lists_ids(server: FakeServer, client: openai.OpenAI) -> None:
    server.push(models(["a", "b"]))
    assert [m.id for m in client.models.list()] == ["a", "b"]
