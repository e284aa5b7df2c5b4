"""LiteLLM adapter: ``litellm.completion`` / ``acompletion`` against the fake OpenAI and Anthropic APIs.

The ``openai/…`` route (LiteLLM drives the official ``openai`` client) and the
``anthropic/…`` route (LiteLLM's own HTTP client), streamed and not, a failing
call, and with ``agentlog.instrument("openai")`` also on, each call recorded once.
"""

from __future__ import annotations

import asyncio
import json
import string
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

litellm = pytest.importorskip("litellm")

import agentlog  # noqa: E402
from agentlog.integrations import litellm as agentlog_litellm  # noqa: E402

from fakes import anthropic_fake as af  # noqa: E402
from fakes._server import FakeServer  # noqa: E402
from fakes.openai_fake import base_url, chat_completion, chat_stream, error  # noqa: E402
from helpers import query  # noqa: E402

KEY = "sk-proj-" + (string.ascii_letters + string.digits)[:40]
ANTHROPIC_KEY = "sk-ant-api03-" + (string.ascii_letters + string.digits)[:40]
ASK = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.fixture(autouse=True)
def _logger(db: Path) -> Iterator[None]:
    agentlog.configure(db)
    agentlog_litellm.instrument()
    yield
    agentlog_litellm.uninstrument()
    agentlog.uninstrument()


def calls(db: Path, n: int) -> list[Any]:
    """The LLM calls, once LiteLLM's background logging thread has reported ``n`` of them."""
    deadline = time.monotonic() + 10
    while True:
        assert agentlog.flush(5)
        rows = query(db, "SELECT * FROM llm_calls WHERE status != 'running' ORDER BY started_at")
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.02)


def openai_call(server: FakeServer, **kwargs: Any) -> Any:
    return litellm.completion(model="openai/gpt-4o", messages=ASK, api_base=base_url(server), api_key=KEY,
                              max_retries=0, **kwargs)


def test_openai_route_records_text_usage_cost_and_the_tool_call(db: Path, server: FakeServer) -> None:
    server.push(chat_completion(tool_calls=[("call_w", "get_weather", '{"city": "Paris"}')],
                                usage={"prompt_tokens": 40, "completion_tokens": 9, "cached_tokens": 16}))
    with agentlog.run("litellm") as run, agentlog.span("step") as step:
        resp = openai_call(server, temperature=0.1)
    assert resp.choices[0].message.tool_calls[0].id == "call_w"
    (call,) = calls(db, 1)
    assert (call["run_id"], call["parent_span_id"]) == (run.run_id, step.span_id)
    assert (call["provider"], call["model"], call["status"], call["stop_reason"]) == (
        "openai", "gpt-4o", "ok", "tool_calls")
    assert (call["input_tokens"], call["output_tokens"], call["cached_tokens"]) == (40, 9, 16)
    assert call["cost_usd"] is not None and call["duration_ms"] is not None
    assert json.loads(call["request"])["temperature"] == 0.1
    (t,) = query(db, "SELECT * FROM tool_calls")
    assert (t["tool_call_id"], t["name"], t["status"], t["llm_span_id"]) == (
        "call_w", "get_weather", "requested", call["span_id"])
    finished = json.loads(query(db, "SELECT payload FROM events WHERE type = 'llm.finished'")[0]["payload"])
    assert "litellm_cost_usd" in finished["response"]
    assert KEY not in Path(db).read_bytes().decode("utf-8", "replace")


def test_openai_route_streamed(db: Path, server: FakeServer) -> None:
    server.push(chat_stream(["It ", "is ", "sunny."]))
    with agentlog.run("litellm"):
        text = "".join(c.choices[0].delta.content or "" for c in openai_call(server, stream=True))
    assert text == "It is sunny."
    (call,) = calls(db, 1)
    assert (call["status"], call["response_text"], call["stop_reason"]) == ("ok", "It is sunny.", "stop")
    assert 0 <= call["ttft_ms"] <= call["duration_ms"]


def test_anthropic_route_streamed_and_not(db: Path, server: FakeServer) -> None:
    server.push(af.message("Sunny.", usage={"input_tokens": 20, "output_tokens": 3}),
                af.message_stream(["Rain", "y."], usage={"input_tokens": 22, "output_tokens": 4}))
    common: dict[str, Any] = {"model": "anthropic/claude-sonnet-4-5", "messages": ASK, "api_base": server.url,
                              "api_key": ANTHROPIC_KEY, "max_tokens": 100}
    with agentlog.run("litellm"):
        plain = litellm.completion(**common)
        streamed = "".join(c.choices[0].delta.content or "" for c in litellm.completion(stream=True, **common))
    assert (plain.choices[0].message.content, streamed) == ("Sunny.", "Rainy.")
    first, second = calls(db, 2)
    assert all(c["provider"] == "anthropic" and c["model"].startswith("claude-sonnet-4-5") for c in (first, second))
    assert (first["response_text"], first["input_tokens"], first["output_tokens"]) == ("Sunny.", 20, 3)
    assert second["response_text"] == "Rainy." and second["output_tokens"] == 4
    assert first["cost_usd"] is not None  # priced from agentlog's table
    assert ANTHROPIC_KEY not in Path(db).read_bytes().decode("utf-8", "replace")


def test_a_failing_call_is_recorded_with_its_kind_and_status(db: Path, server: FakeServer) -> None:
    server.push(error(429))
    with agentlog.run("litellm"), pytest.raises(litellm.RateLimitError):
        openai_call(server)
    (call,) = calls(db, 1)
    assert call["status"] == "error"
    err = json.loads(query(db, "SELECT payload FROM events WHERE type = 'llm.error'")[0]["payload"])["error"]
    assert (err["kind"], err["http_status"]) == ("rate_limit", 429)


def test_async_completion_is_recorded(db: Path, server: FakeServer) -> None:
    server.push(chat_completion("Async hello."))

    async def main() -> Any:
        with agentlog.run("async"):
            result = await litellm.acompletion(model="openai/gpt-4o", messages=ASK, api_base=base_url(server),
                                               api_key=KEY, max_retries=0)
        # LiteLLM logs an async call from a task on this loop: give it the chance to run.
        for _ in range(250):
            await asyncio.sleep(0.02)
            if agentlog.flush(1) and query(db, "SELECT 1 FROM llm_calls"):
                break
        return result

    assert asyncio.run(main()).choices[0].message.content == "Async hello."
    (call,) = calls(db, 1)
    assert (call["status"], call["response_text"]) == ("ok", "Async hello.")


def test_with_the_openai_instrumentation_each_call_is_recorded_once(db: Path, server: FakeServer) -> None:
    agentlog.instrument("openai")
    server.push(chat_completion("Once.", request_id="req_once"), chat_stream(["Twi", "ce."], request_id="req_two"))
    with agentlog.run("litellm"):
        openai_call(server)
        for _ in openai_call(server, stream=True):
            pass
    time.sleep(0.3)  # LiteLLM's logging thread would have reported a duplicate by now
    rows = calls(db, 2)
    assert [(c["request_id"], c["response_text"]) for c in rows] == [("req_once", "Once."), ("req_two", "Twice.")]
