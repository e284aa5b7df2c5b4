"""The fake Gemini API, checked against the official, uninstrumented ``google-genai`` client.

Every builder in ``fakes.gemini_fake`` is parsed here by the real SDK over real HTTP,
so a test that uses the fake exercises the same code paths as production traffic.
The tests also pin the SDK behaviours instrumentation has to live with: one
``generate_content`` call can make several HTTP requests (automatic function
calling, automatic continuation, opt-in retries), a streamed error can arrive
after chunks, and a dropped stream surfaces as an ``httpx2`` error, not an SDK one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("google.genai")

import httpx2
from google import genai
from google.genai import errors, types

from fakes import gemini_fake as gf
from fakes._server import FakeServer

#: How a cut async stream surfaces: google-genai's async client uses aiohttp instead of
#: httpx2 whenever aiohttp is installed (LiteLLM, for one, brings it).
ASYNC_CUT: tuple[type[BaseException], ...] = (httpx2.RemoteProtocolError,)
try:
    import aiohttp

    ASYNC_CUT += (aiohttp.ClientPayloadError,)
except ImportError:
    pass

MODEL = "gemini-2.5-flash"
API_KEY = "AIza-test"
#: For tests that pass Python functions as tools but want exactly one request.
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)

# Environment the SDK reads at construction; any of them would change the URL or auth.
_SDK_ENV = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_ENTERPRISE",
    "GOOGLE_GENAI_API_VERSION",
    "GOOGLE_GENAI_HTTP_CLIENT",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
)


def make_client(server: FakeServer, **http_options: Any) -> genai.Client:
    return genai.Client(
        api_key=API_KEY,
        http_options=types.HttpOptions(base_url=server.url, **http_options),
    )


@pytest.fixture(scope="module")
def _shared() -> Iterator[tuple[FakeServer, genai.Client]]:
    """One server and one client for the module: building a client costs ~0.25 s
    (SSL contexts) and stopping a server ~0.5 s (its poll interval)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in _SDK_ENV:
            mp.delenv(name, raising=False)
        with FakeServer() as server:
            # Held here for the module: the SDK closes its pool when the Client is collected.
            c = make_client(server)
            yield server, c
            c.close()


@pytest.fixture
def server(_shared: tuple[FakeServer, genai.Client]) -> Iterator[FakeServer]:
    """The shared server with an empty script and no recorded requests."""
    server = _shared[0]
    server.script.clear()
    server.received.clear()
    yield server
    assert not server.script, "scripted replies were left unused"


@pytest.fixture
def client(_shared: tuple[FakeServer, genai.Client], server: FakeServer) -> genai.Client:
    return _shared[1]


def run(coro_fn: Any, server: FakeServer) -> Any:
    """Run an async test body on a fresh loop with a fresh client, closing its pools after.

    A client of its own, because ``aio.aclose()`` would close the shared one for good.
    """
    c = make_client(server)

    async def main() -> Any:
        try:
            return await coro_fn(c.aio)
        finally:
            await c.aio.aclose()

    try:
        return asyncio.run(main())
    finally:
        c.close()


# -- generateContent ------------------------------------------------------------------------


def test_generate_content_text_usage_ids_and_request(
    server: FakeServer, client: genai.Client
) -> None:
    usage = gf.usage_metadata(120, 9, cached=100, thoughts=30)
    server.push(
        gf.generate_content(
            "Paris.",
            thoughts=["The user asks for a capital.", "France -> Paris."],
            usage=usage,
            model_version="gemini-2.5-flash-001",
            response_id="resp-1",
        )
    )
    resp = client.models.generate_content(
        model=MODEL,
        contents="Capital of France?",
        config=types.GenerateContentConfig(
            system_instruction="Answer in one word.",
            temperature=0.2,
            max_output_tokens=256,
            thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=512),
        ),
    )

    assert resp.text == "Paris."  # thought parts are not part of .text
    assert resp.response_id == "resp-1"
    assert resp.model_version == "gemini-2.5-flash-001"
    cand = resp.candidates[0]
    assert cand.finish_reason == types.FinishReason.STOP
    parts = cand.content.parts
    assert [(p.text, p.thought) for p in parts] == [
        ("The user asks for a capital.", True),
        ("France -> Paris.", True),
        ("Paris.", None),
    ]
    u = resp.usage_metadata
    assert (u.prompt_token_count, u.candidates_token_count) == (120, 9)
    assert (u.cached_content_token_count, u.thoughts_token_count) == (100, 30)
    assert u.total_token_count == 120 + 9 + 30  # the prompt count already includes the cache
    assert u.prompt_tokens_details[0].token_count == 120

    (req,) = server.received
    assert req.method == "POST"
    assert req.path == f"/v1/models/{MODEL}:generateContent"  # google-genai 3.4 defaults to v1
    assert req.query == ""
    assert req.header("x-goog-api-key") == API_KEY
    assert req.header("authorization") is None
    assert req.header("x-goog-api-client").startswith("google-genai-sdk/")
    assert req.body["contents"] == [{"parts": [{"text": "Capital of France?"}], "role": "user"}]
    assert req.body["systemInstruction"] == {
        "parts": [{"text": "Answer in one word."}],
        "role": "user",
    }
    gen = req.body["generationConfig"]
    assert gen["temperature"] == 0.2
    assert gen["maxOutputTokens"] == 256
    # Nested config objects pass through in snake_case (the service accepts both spellings).
    assert gen["thinkingConfig"] == {"include_thoughts": True, "thinking_budget": 512}


def test_function_calls_with_and_without_ids(server: FakeServer, client: genai.Client) -> None:
    server.push(
        gf.generate_content(
            function_calls=[("get_weather", {"city": "Paris"}, "call-1"), ("get_time", {})],
            thought_signature=b"sig-123",
        )
    )
    weather = types.FunctionDeclaration(
        name="get_weather",
        description="Weather for a city.",
        parameters=types.Schema(
            type=types.Type.OBJECT,
            properties={"city": types.Schema(type=types.Type.STRING)},
            required=["city"],
        ),
    )
    resp = client.models.generate_content(
        model=MODEL,
        contents="Weather and time in Paris?",
        config=types.GenerateContentConfig(
            tools=[
                types.Tool(
                    function_declarations=[weather, types.FunctionDeclaration(name="get_time")]
                )
            ],
        ),
    )

    calls = resp.function_calls
    assert [(c.name, c.args, c.id) for c in calls] == [
        ("get_weather", {"city": "Paris"}, "call-1"),
        ("get_time", {}, None),
    ]
    assert resp.text is None
    assert resp.candidates[0].content.parts[0].thought_signature == b"sig-123"
    assert resp.usage_metadata.candidates_token_count > 0

    (req,) = server.received
    decls = req.body["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in decls] == ["get_weather", "get_time"]
    assert decls[0]["parameters"] == {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING"}},
        "required": ["city"],
    }


def test_function_call_echoed_back_as_history(server: FakeServer, client: genai.Client) -> None:
    """The manual tool loop: what the SDK sends back after the caller runs a tool itself."""
    server.push(gf.generate_content(function_calls=[("add", {"a": 1, "b": 2}, "c-9")]))
    server.push(gf.generate_content("3"))
    contents: list[Any] = [types.Content(role="user", parts=[types.Part.from_text(text="1+2?")])]
    first = client.models.generate_content(model=MODEL, contents=contents)
    contents.append(first.candidates[0].content)
    contents.append(
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="add", response={"result": 3})],
        )
    )
    assert client.models.generate_content(model=MODEL, contents=contents).text == "3"
    second = server.received[1].body["contents"]
    assert second[1] == {
        "parts": [{"functionCall": {"id": "c-9", "args": {"a": 1, "b": 2}, "name": "add"}}],
        "role": "model",
    }
    assert second[2]["parts"][0]["functionResponse"] == {"name": "add", "response": {"result": 3}}


def test_empty_candidate_and_blocked_prompt(server: FakeServer, client: genai.Client) -> None:
    server.push(
        gf.generate_content(finish_reason="MAX_TOKENS", usage=gf.usage_metadata(8, 0, thoughts=64))
    )
    server.push(gf.prompt_blocked("PROHIBITED_CONTENT"))

    spent = client.models.generate_content(model=MODEL, contents="think hard")
    assert spent.text is None
    assert spent.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert spent.candidates[0].content.parts is None
    assert (
        spent.usage_metadata.candidates_token_count is None
    )  # zero counts are omitted on the wire
    assert spent.usage_metadata.thoughts_token_count == 64

    blocked = client.models.generate_content(model=MODEL, contents="something bad")
    assert blocked.candidates is None
    assert blocked.text is None
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT


def test_api_version_option_changes_the_path(server: FakeServer) -> None:
    c = make_client(server, api_version="v1beta")
    server.push(gf.generate_content("ok"))
    assert c.models.generate_content(model=MODEL, contents="hi").text == "ok"
    assert server.received[0].path == f"/v1beta/models/{MODEL}:generateContent"
    assert gf.parse_path(server.received[0].path) == ("v1beta", MODEL, "generateContent")
    c.close()


# -- streamGenerateContent ------------------------------------------------------------------


def test_stream_chunks_thoughts_and_cumulative_usage(
    server: FakeServer, client: genai.Client
) -> None:
    final = gf.usage_metadata(50, 12, cached=40, thoughts=20)
    server.push(
        gf.stream_generate_content(
            ["The answer", " is", " 42."],
            thought_chunks=["Thinking about it.", "Almost there."],
            usage=final,
            response_id="stream-1",
        )
    )
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL,
            contents="What is the answer?",
            config=types.GenerateContentConfig(
                thinking_config=types.ThinkingConfig(include_thoughts=True),
            ),
        )
    )

    assert len(chunks) == 5
    assert [c.candidates[0].content.parts[0].thought for c in chunks] == [
        True,
        True,
        None,
        None,
        None,
    ]
    assert "".join(c.text or "" for c in chunks) == "The answer is 42."
    assert chunks[0].text is None  # a thought-only chunk has no .text
    assert [c.candidates[0].finish_reason for c in chunks] == [None] * 4 + [types.FinishReason.STOP]
    assert {c.response_id for c in chunks} == {"stream-1"}
    assert {c.model_version for c in chunks} == {gf.DEFAULT_MODEL_VERSION}

    # Every chunk repeats the running total: the last one is the answer, summing over-counts.
    usages = [c.usage_metadata for c in chunks]
    assert all(u is not None and u.prompt_token_count == 50 for u in usages)
    assert all(u.cached_content_token_count == 40 for u in usages)
    totals = [u.total_token_count for u in usages]
    assert totals == sorted(totals)
    assert [u.thoughts_token_count for u in usages] == [10, 20, 20, 20, 20]
    assert [u.candidates_token_count for u in usages] == [None, None, 4, 8, 12]
    last = usages[-1]
    assert (last.candidates_token_count, last.thoughts_token_count, last.total_token_count) == (
        12,
        20,
        82,
    )
    assert sum(u.total_token_count for u in usages) > last.total_token_count

    (req,) = server.received
    assert req.path == f"/v1/models/{MODEL}:streamGenerateContent"
    assert req.query == "alt=sse"
    assert req.header("x-goog-api-key") == API_KEY
    assert req.body["generationConfig"] == {"thinkingConfig": {"include_thoughts": True}}


def test_stream_usage_only_on_last_chunk(server: FakeServer, client: genai.Client) -> None:
    server.push(
        gf.stream_generate_content(
            ["a", "b", "c"], repeat_usage=False, usage=gf.usage_metadata(5, 3)
        )
    )
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="abc"))
    assert [c.usage_metadata is None for c in chunks] == [True, True, False]
    assert chunks[-1].usage_metadata.total_token_count == 8


def test_stream_function_calls_arrive_whole_in_one_chunk(
    server: FakeServer, client: genai.Client
) -> None:
    server.push(
        gf.stream_generate_content(
            ["Let me check."],
            function_calls=[("lookup", {"q": "x"}, "fc-1"), ("lookup", {"q": "y"}, "fc-2")],
        )
    )
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL,
            contents="look up x and y",
            config=types.GenerateContentConfig(
                tools=[
                    types.Tool(function_declarations=[types.FunctionDeclaration(name="lookup")])
                ],
            ),
        )
    )
    assert [c.function_calls is None for c in chunks] == [True, False]
    calls = chunks[-1].function_calls
    assert [(c.name, c.args, c.id) for c in calls] == [
        ("lookup", {"q": "x"}, "fc-1"),
        ("lookup", {"q": "y"}, "fc-2"),
    ]
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert server.received[0].body["tools"] == [{"functionDeclarations": [{"name": "lookup"}]}]


def test_stream_error_event_after_chunks(server: FakeServer, client: genai.Client) -> None:
    server.push(
        gf.stream_generate_content(
            ["partial", " answer"], error=gf.error_body(500, "Internal error mid-stream")
        )
    )
    got: list[str | None] = []
    with pytest.raises(errors.ServerError) as exc:
        for chunk in client.models.generate_content_stream(model=MODEL, contents="go"):
            got.append(chunk.text)
    assert got == ["partial", " answer"]
    assert (exc.value.code, exc.value.status, exc.value.message) == (
        500,
        "INTERNAL",
        "Internal error mid-stream",
    )


def test_cut_stream_raises_an_httpx2_error_after_the_first_chunks(
    server: FakeServer, client: genai.Client
) -> None:
    server.push(gf.stream_generate_content(["one", "two", "three"], cut_after=2))
    got: list[str | None] = []
    # The SDK does not wrap transport errors: a dropped stream is httpx2's, not an APIError.
    with pytest.raises(httpx2.RemoteProtocolError):
        for chunk in client.models.generate_content_stream(model=MODEL, contents="count"):
            got.append(chunk.text)
    assert got == ["one", "two"]
    assert len(server.received) == 1  # no reconnect without a continuation token


# -- errors ---------------------------------------------------------------------------------

ERRORS = [
    (400, "INVALID_ARGUMENT", errors.ClientError, "Request contains an invalid argument."),
    (401, "UNAUTHENTICATED", errors.ClientError, "Request had invalid authentication credentials."),
    (403, "PERMISSION_DENIED", errors.ClientError, "Method doesn't allow unregistered callers."),
    (429, "RESOURCE_EXHAUSTED", errors.ClientError, "You exceeded your current quota."),
    (500, "INTERNAL", errors.ServerError, "An internal error has occurred."),
    (503, "UNAVAILABLE", errors.ServerError, "The model is overloaded. Please try again later."),
]


@pytest.mark.parametrize(("status", "status_text", "cls", "message"), ERRORS)
def test_http_errors_raise_sdk_errors_without_retry(
    server: FakeServer,
    client: genai.Client,
    status: int,
    status_text: str,
    cls: type[errors.APIError],
    message: str,
) -> None:
    server.push(gf.error(status, message))
    with pytest.raises(cls) as exc:
        client.models.generate_content(model=MODEL, contents="hi")
    err = exc.value
    assert (err.code, err.status, err.message) == (status, status_text, message)
    # .details is the whole parsed body, not the "details" list inside it.
    assert err.details == {"error": {"code": status, "message": message, "status": status_text}}
    assert len(server.received) == 1  # no retry unless HttpOptions.retry_options asks for it


def test_error_details_and_stream_open_error(server: FakeServer, client: genai.Client) -> None:
    info = {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
    }
    server.push(gf.error(400, "API key not valid. Please pass a valid API key.", details=[info]))
    server.push(gf.error(429, "Quota exceeded.", retry_delay="7s"))
    with pytest.raises(errors.ClientError) as bad_key:
        client.models.generate_content(model=MODEL, contents="hi")
    assert bad_key.value.details["error"]["details"] == [info]
    with pytest.raises(errors.ClientError) as quota:
        # A stream rejected up front raises on the first next(), before any chunk.
        next(iter(client.models.generate_content_stream(model=MODEL, contents="hi")))
    assert quota.value.code == 429
    assert quota.value.details["error"]["details"][-1]["retryDelay"] == "7s"


def test_retry_options_retry_inside_one_call(server: FakeServer) -> None:
    c = make_client(
        server,
        retry_options=types.HttpRetryOptions(attempts=3, initial_delay=0, max_delay=0, jitter=0),
    )
    server.push(
        gf.error(503, "overloaded"), gf.error(429, "slow down"), gf.generate_content("finally")
    )
    assert c.models.generate_content(model=MODEL, contents="hi").text == "finally"
    assert len(server.received) == 3
    c.close()


# -- several requests inside one call -------------------------------------------------------


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"Sunny in {city}"


def test_automatic_function_calling_makes_two_requests(
    server: FakeServer, client: genai.Client
) -> None:
    server.push(
        gf.generate_content(
            function_calls=[("get_weather", {"city": "Paris"}, "call-1")],
            usage=gf.usage_metadata(20, 5),
        ),
        gf.generate_content("It is sunny in Paris.", usage=gf.usage_metadata(40, 7)),
    )
    resp = client.models.generate_content(
        model=MODEL,
        contents="Weather in Paris?",
        config=types.GenerateContentConfig(tools=[get_weather]),
    )

    assert resp.text == "It is sunny in Paris."
    assert resp.usage_metadata.prompt_token_count == 40  # the last request's usage only
    assert len(server.received) == 2
    first, second = server.received
    # A Python function is declared with a JSON schema, in snake_case on the wire.
    (decl,) = first.body["tools"][0]["functionDeclarations"]
    assert decl["name"] == "get_weather"
    assert decl["parameters_json_schema"]["properties"] == {"city": {"type": "string"}}
    # The SDK ran the function and sent call and result back; the response carries no call id.
    assert [c["role"] for c in second.body["contents"]] == ["user", "model", "user"]
    assert second.body["contents"][1]["parts"][0]["functionCall"]["id"] == "call-1"
    assert second.body["contents"][2]["parts"][0]["functionResponse"] == {
        "name": "get_weather",
        "response": {"result": "Sunny in Paris"},
    }
    # AFC requests are marked in the client header.
    assert all("+afc" in r.header("x-goog-api-client") for r in server.received)
    history = resp.automatic_function_calling_history
    assert [c.role for c in history] == ["user", "model", "user"]


def test_disabled_afc_returns_the_call(server: FakeServer, client: genai.Client) -> None:
    server.push(gf.generate_content(function_calls=[("get_weather", {"city": "Oslo"})]))
    resp = client.models.generate_content(
        model=MODEL,
        contents="Weather in Oslo?",
        config=types.GenerateContentConfig(tools=[get_weather], automatic_function_calling=NO_AFC),
    )
    assert resp.function_calls[0].args == {"city": "Oslo"}
    assert len(server.received) == 1
    assert "+afc" not in server.received[0].header("x-goog-api-client")


def test_automatic_function_calling_in_a_stream(server: FakeServer, client: genai.Client) -> None:
    server.push(
        gf.stream_generate_content(function_calls=[("get_weather", {"city": "Rome"})]),
        gf.stream_generate_content(["Sunny", " in Rome."]),
    )
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL,
            contents="Weather in Rome?",
            config=types.GenerateContentConfig(tools=[get_weather]),
        )
    )
    # Chunks of both requests come out of one iterator.
    assert len(server.received) == 2
    assert chunks[0].function_calls[0].name == "get_weather"
    assert "".join(c.text or "" for c in chunks[1:]) == "Sunny in Rome."
    assert server.received[1].body["contents"][2]["parts"][0]["functionResponse"]["response"] == {
        "result": "Sunny in Rome"
    }


def test_automatic_continuation_merges_two_requests(
    server: FakeServer, client: genai.Client
) -> None:
    server.push(
        gf.generate_content(
            "Hello, ",
            finish_reason="CONTINUATION",
            continuation_token=b"tok-1",
            usage=gf.usage_metadata(10, 2),
        ),
        gf.generate_content("world.", usage=gf.usage_metadata(12, 3)),
    )
    resp = client.models.generate_content(model=MODEL, contents="greet")
    assert resp.text == "Hello, world."
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    # Hops are separate requests: the SDK sums their usage, prompt counts included.
    assert (resp.usage_metadata.prompt_token_count, resp.usage_metadata.candidates_token_count) == (
        22,
        5,
    )
    assert resp.initial_prompt_token_count == 10
    assert len(server.received) == 2
    assert "continuationToken" not in server.received[0].body
    assert server.received[1].body["continuationToken"] == "dG9rLTE="  # base64 of b"tok-1"


def test_stream_resumes_from_a_checkpoint_and_hides_the_error(
    server: FakeServer, client: genai.Client
) -> None:
    # The first hop ends on a checkpoint (token, no finish reason), then fails.
    server.push(
        gf.stream_generate_content(
            ["Hel", "lo"],
            finish_reason=None,
            continuation_token=b"ckpt",
            usage=gf.usage_metadata(6, 2),
            error=gf.error_body(503, "backend restarted"),
        ),
        gf.stream_generate_content([" world"], usage=gf.usage_metadata(7, 1)),
    )
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="greet"))
    assert "".join(c.text or "" for c in chunks) == "Hello world"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.total_token_count == 8 + 8  # running total over both hops
    assert len(server.received) == 2
    assert server.received[1].body["continuationToken"] == "Y2twdA=="  # base64 of b"ckpt"


# -- async ----------------------------------------------------------------------------------


def test_async_generate_content_and_stream(server: FakeServer) -> None:
    server.push(
        gf.generate_content("async hi", usage=gf.usage_metadata(4, 2, cached=2, thoughts=3)),
        gf.stream_generate_content(
            ["as", "ync"], thought_chunks=["hmm"], usage=gf.usage_metadata(4, 2, thoughts=3)
        ),
    )

    async def body(aio: Any) -> tuple[Any, list[Any]]:
        resp = await aio.models.generate_content(
            model=MODEL,
            contents="hi",
            config=types.GenerateContentConfig(system_instruction="Be terse."),
        )
        stream = await aio.models.generate_content_stream(model=MODEL, contents="stream")
        return resp, [c async for c in stream]

    resp, chunks = run(body, server)
    assert resp.text == "async hi"
    assert (
        resp.usage_metadata.cached_content_token_count,
        resp.usage_metadata.thoughts_token_count,
    ) == (2, 3)
    assert "".join(c.text or "" for c in chunks) == "async"
    assert chunks[0].candidates[0].content.parts[0].thought is True
    assert chunks[-1].usage_metadata.total_token_count == 9
    assert [r.path.rsplit(":", 1)[1] for r in server.received] == [
        "generateContent",
        "streamGenerateContent",
    ]
    assert server.received[0].body["systemInstruction"]["parts"] == [{"text": "Be terse."}]
    assert all(r.header("x-goog-api-key") == API_KEY for r in server.received)


def test_async_errors_and_cut_stream(server: FakeServer) -> None:
    server.push(
        gf.error(401, "API key missing."), gf.stream_generate_content(["a", "b", "c"], cut_after=1)
    )

    async def body(aio: Any) -> list[str | None]:
        with pytest.raises(errors.ClientError) as exc:
            await aio.models.generate_content(model=MODEL, contents="hi")
        assert (exc.value.code, exc.value.status) == (401, "UNAUTHENTICATED")
        got: list[str | None] = []
        with pytest.raises(ASYNC_CUT):
            async for chunk in await aio.models.generate_content_stream(model=MODEL, contents="x"):
                got.append(chunk.text)
        return got

    assert run(body, server) == ["a"]


def test_async_automatic_function_calling(server: FakeServer) -> None:
    server.push(
        gf.generate_content(function_calls=[("get_weather", {"city": "Lima"})]),
        gf.generate_content("Sunny in Lima."),
    )

    async def body(aio: Any) -> Any:
        return await aio.models.generate_content(
            model=MODEL,
            contents="Weather in Lima?",
            config=types.GenerateContentConfig(tools=[get_weather]),
        )

    assert run(body, server).text == "Sunny in Lima."
    assert len(server.received) == 2
    assert server.received[1].body["contents"][2]["parts"][0]["functionResponse"]["response"] == {
        "result": "Sunny in Lima"
    }


# -- the builders themselves ----------------------------------------------------------------


def test_default_factory_answers_unscripted_requests(
    server: FakeServer, client: genai.Client
) -> None:
    server.default = gf.default
    try:
        assert (
            client.models.generate_content(model=MODEL, contents="hi").text
            == "Hello from the fake Gemini."
        )
        stream = client.models.generate_content_stream(model=MODEL, contents="hi")
        assert "".join(ch.text or "" for ch in stream) == "Hello from the fake Gemini."
        with pytest.raises(errors.ClientError) as exc:
            client.models.get(model=MODEL)  # GET /v1/models/gemini-2.5-flash: not faked
        assert exc.value.status == "NOT_FOUND"
        assert [r.method for r in server.received] == ["POST", "POST", "GET"]
    finally:
        server.default = None


def test_usage_metadata_is_consistent() -> None:
    u = gf.usage_metadata(100, 10, cached=60, thoughts=5, tool_use_prompt=7)
    assert u["totalTokenCount"] == 122
    assert u["cachedContentTokenCount"] == 60
    assert u["cacheTokensDetails"] == [{"modality": "TEXT", "tokenCount": 60}]
    assert "candidatesTokenCount" not in gf.usage_metadata(3, 0)
    # The stream's repeated usage ends exactly on the given total, whatever the chunking.
    reply = gf.stream_generate_content(["x"] * 7, usage=u)
    assert reply.sse is not None
    assert reply.sse[-1][1]["usageMetadata"] == u
    assert all(data["usageMetadata"]["promptTokenCount"] == 100 for _, data in reply.sse)
    assert all(name is None for name, _ in reply.sse)  # data-only events
