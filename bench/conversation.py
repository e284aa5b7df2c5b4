"""A multi-turn agent conversation, for the benchmarks that need a realistic store.

Benchmark 2 sends a fresh two-message request on every call; a real agent
resends the whole conversation so far (system prompt, tool schemas, every
earlier message) on every call. That is what makes a store grow and what the
queries and memory benchmarks must see. Each run here is a tool-using agent:

    turn k: llm.started (system, tools, question, k x (assistant tool call, tool result)),
            a streamed reply asking for a tool, llm.finished (usage, cost),
            the tool's execution (~200 B result), a log line

All content is deterministic (:class:`bench.workload.TextPool`), built turn by
turn as it is published: a million events are never held in memory at once,
which the memory benchmark relies on. ``WORKLOAD_VERSION`` names the cache
files built from it: change it whenever the content changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

import agentlog

from .workload import MODEL, SYSTEM_MESSAGE, USAGE, TextPool

__all__ = [
    "EVENTS_PER_TURN",
    "TURNS_PER_RUN",
    "WORKLOAD_VERSION",
    "RawBytes",
    "publish_run",
    "raw_bytes",
    "runs_for",
    "turns",
]

WORKLOAD_VERSION = 1
TURNS_PER_RUN = 20
#: Rows a turn leaves in al_events with default settings: turn.started, llm.started, one
#: llm.delta (the stream's chunks are gathered), llm.tool_call, llm.finished, tool.started,
#: tool.finished, log, turn.finished. Plus run.started and run.finished per run.
EVENTS_PER_TURN = 9
_DELTAS = 4

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Search the internal documentation and return the best passages.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to look for."},
                    "top_k": {"type": "integer", "description": "How many passages to return."},
                },
                "required": ["query"],
            },
        },
    }
]


@dataclass(frozen=True)
class TurnContent:
    """What one turn publishes; ``request`` is the whole request as sent."""

    index: int
    request: dict[str, Any]
    new_messages: int  # how many of request["messages"] were not in the previous request
    deltas: tuple[str, ...]
    call_id: str
    arguments: dict[str, Any]
    result: str
    log: str


def runs_for(events: int) -> int:
    """How many runs make at least ``events`` rows in al_events."""
    per_run = 2 + EVENTS_PER_TURN * TURNS_PER_RUN
    return -(-events // per_run)


def turns(pool: TextPool, run: int) -> Iterator[TurnContent]:
    """The turns of run number ``run``, each request holding the conversation so far."""
    k = run * TURNS_PER_RUN
    messages: list[dict[str, Any]] = [
        SYSTEM_MESSAGE,
        {"role": "user", "content": pool.get(200, k)},
    ]
    for t in range(TURNS_PER_RUN):
        k += 1
        call_id = f"call_{run:06d}_{t:03d}"
        arguments = {"query": pool.get(50, k + 1), "top_k": 5}
        result = pool.get(200, k + 2)
        yield TurnContent(
            index=t,
            request={"model": MODEL, "messages": list(messages), "tools": TOOLS, "temperature": 0},
            new_messages=len(messages) if t == 0 else 2,
            deltas=tuple(pool.get(50, k * _DELTAS + d) for d in range(_DELTAS)),
            call_id=call_id,
            arguments=arguments,
            result=result,
            log=pool.get(100, k + 3),
        )
        # What the next request resends: the model's tool call and the tool's answer.
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": "search_docs",
                            "arguments": orjson.dumps(arguments).decode(),
                        },
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call_id, "content": result})


def publish_run(pool: TextPool, run: int) -> int:
    """Publish run number ``run`` through the public producers; return refused publishes."""
    refused = 0
    with agentlog.run(f"agent-{run}", metadata={"suite": "bench.conversation"}):
        for t in turns(pool, run):
            with agentlog.turn():
                call = agentlog.inference("openai", MODEL, t.request).start()
                for d in t.deltas:
                    call.delta(d)
                ok = call.tool_call(t.call_id, "search_docs", t.arguments)
                ok &= call.finish(stop_reason="tool_calls", usage=USAGE, cost_usd=0.00042)
                with agentlog.tool_call("search_docs", t.arguments, tool_call_id=t.call_id) as tool:
                    tool.result = t.result
                ok &= agentlog.log(t.log, step=t.index)
                refused += not ok
    return refused


@dataclass
class RawBytes:
    """JSON bytes of what the agent handed to agentlog.

    ``as_sent`` counts every request whole, as it went to the model; ``unique``
    counts each message once, in the first request that carried it (the
    information the run holds). The store is compared with both.
    """

    as_sent: int = 0
    unique: int = 0


def raw_bytes(pool: TextPool, runs: int) -> RawBytes:
    """What ``runs`` runs hand to agentlog, as JSON: requests, streamed text, calls, results, logs."""
    out = RawBytes()
    dumps = orjson.dumps
    for r in range(runs):
        for t in turns(pool, r):
            request = len(dumps(t.request))
            msgs = t.request["messages"]
            resent = len(dumps({**t.request, "messages": msgs[: len(msgs) - t.new_messages]}))
            rest = (
                sum(len(d.encode()) for d in t.deltas)
                + len(dumps({"id": t.call_id, "name": "search_docs", "arguments": t.arguments}))
                + len(dumps({"stop_reason": "tool_calls", "usage": USAGE, "cost_usd": 0.00042}))
                + len(dumps(t.arguments))
                + len(t.result.encode())
                + len(t.log.encode())
            )
            out.as_sent += request + rest
            # the request without the messages it resends (their brackets and commas stay)
            out.unique += request - resent + len(dumps({**t.request, "messages": []})) + rest
    return out
