"""A scripted support-agent session, recorded offline: what ``agentlog demo`` writes.

It doubles as a worked example of the recording API. A support agent helps a
customer whose parcel is late, over three turns:

1. The model streams its reasoning, asks for two tools (``lookup_order``
   succeeds, ``track_shipment`` times out), then answers with what it knows.
   The tools are ``@agentlog.tool`` functions, linked to the model's requests by name.
2. The customer asks for a replacement: the agent logs a mode switch and hands
   the decision to a sub-agent (a span of kind ``agent``) whose ``task`` span
   asks a smaller model and whose second task depends on the first, while the
   sub-agent reports its status as it goes. The agent then runs
   ``ship_replacement``, approved by the sub-agent, noting its side effects.
3. The customer says thanks; the agent signs off.

The "model" is a script, so nothing touches the network and every run records
the same content (only ids, timestamps and durations differ).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import agentlog

from .config import resolve_db_path
from .errors import StoreError

__all__ = ["write_demo"]

PROVIDER = "openai"
AGENT_MODEL = "o4-mini"
POLICY_MODEL = "gpt-4o-mini"

# USD per million tokens: (input, cached input, output). Reasoning tokens are
# billed as output and already counted in output_tokens, as OpenAI reports them.
PRICES = {"o4-mini": (1.10, 0.275, 4.40), "gpt-4o-mini": (0.15, 0.075, 0.60)}

SYSTEM_PROMPT = (
    "You are Parcelly, the support agent of an online shop. Be brief and concrete. "
    "Use the tools to check orders before answering."
)
TOOL_SPECS = [
    {"type": "function", "name": "lookup_order", "parameters": {"order_id": "string"}},
    {"type": "function", "name": "track_shipment", "parameters": {"tracking_number": "string"}},
]


@dataclass(frozen=True)
class Reply:
    """One scripted model response and the usage a provider would report for it."""

    text: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 0
    reasoning: str = ""
    reasoning_tokens: int = 0
    tool_calls: tuple[tuple[str, dict[str, Any]], ...] = ()

    def usage(self) -> dict[str, int | None]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cached_tokens": self.cached_tokens, "reasoning_tokens": self.reasoning_tokens}

    def cost(self, model: str) -> float:
        price_in, price_cached, price_out = PRICES[model]
        fresh = self.input_tokens - self.cached_tokens
        total = fresh * price_in + self.cached_tokens * price_cached + self.output_tokens * price_out
        return round(total / 1_000_000, 8)


# -- the script ----------------------------------------------------------------------
ASK_WHERE = "Hi! My order A-1042 was due on Monday and it still hasn't arrived. Where is it?"
ASK_REPLACE = "It's a birthday present for Saturday. Can you send a new one by express instead?"
SAY_THANKS = "Perfect, thank you so much!"
POLICY_PROMPT = [
    {"role": "system", "content": "You apply the shop's reshipment policy. Answer in JSON."},
    {"role": "user", "content": "Order A-1042, 42 EUR, 3 days late, customer asks for express."},
]

PLAN_LOOKUP = Reply(
    text="Let me check your order.",
    reasoning="The customer gives an order id. I should look the order up, "
              "then ask the carrier where the parcel is.",
    input_tokens=412, output_tokens=96, reasoning_tokens=64,
    tool_calls=(("lookup_order", {"order_id": "A-1042"}),
                ("track_shipment", {"tracking_number": "1Z999AA10123456784"})),
)
HAND_OFF = Reply(
    text="I'm sorry about that! Let me check whether we can send a replacement by express.",
    reasoning="A replacement needs a policy decision: hand it to the replacement agent.",
    input_tokens=751, output_tokens=58, cached_tokens=512, reasoning_tokens=24,
)
ANSWER_WHERE = Reply(
    text="Your order A-1042 (a ceramic teapot) left our warehouse on Friday with UPS, "
         "tracking number 1Z999AA10123456784. The carrier's tracking service isn't answering "
         "right now, so I can't see where the parcel is today. Would you like me to send a "
         "replacement, or wait another day?",
    reasoning="Tracking failed, but I know it shipped on Friday. Be honest and offer options.",
    input_tokens=598, output_tokens=142, cached_tokens=384, reasoning_tokens=48,
)
POLICY_DECISION = Reply(
    text='{"decision": "reship", "shipping": "express", "reason": "order is 3 days late and '
         'under the 100 EUR limit"}',
    input_tokens=233, output_tokens=31,
)
ANSWER_REPLACE = Reply(
    text="Done: a new teapot is on its way by express and should arrive on Thursday. "
         "You'll get the tracking link by email within the hour. If the first parcel "
         "turns up, just refuse it and it comes back to us for free.",
    reasoning="The replacement agent approved an express reshipment. Confirm it and set expectations.",
    input_tokens=850, output_tokens=118, cached_tokens=768, reasoning_tokens=32,
)
ANSWER_THANKS = Reply(
    text="You're welcome! I hope the birthday is a great one.",
    input_tokens=988, output_tokens=22, cached_tokens=896,
)


class CarrierTimeout(Exception):
    """The carrier's tracking API did not answer."""


@agentlog.tool
def lookup_order(order_id: str) -> dict[str, Any]:
    return {"order_id": order_id, "item": "ceramic teapot", "price_eur": 42.0,
            "status": "shipped", "shipped_on": "Friday", "carrier": "UPS",
            "tracking_number": "1Z999AA10123456784"}


@agentlog.tool
def track_shipment(tracking_number: str, api_key: str = "") -> dict[str, Any]:
    raise CarrierTimeout(f"UPS tracking API did not answer within 10s (tracking {tracking_number})")


@agentlog.tool
def ship_replacement(order_id: str, shipping: str, decision: dict[str, Any]) -> dict[str, Any]:
    """Run by the agent itself (no model request), once the sub-agent has decided."""
    call = agentlog.current_tool()
    if call is not None:
        call.approve(by="replacement-agent", reason=decision["reason"])
        call.annotate(side_effects=["replacement order A-1042-R created", "express label printed"])
    return {"order_id": f"{order_id}-R", "shipping": shipping, "eta": "Thursday"}


TOOLS: dict[str, Callable[..., dict[str, Any]]] = {  # what the model may ask for
    "lookup_order": lookup_order,
    "track_shipment": track_shipment,
}


def _chunks(text: str) -> list[str]:
    """Split text the way a stream arrives: up to four words per delta."""
    return re.findall(r"\S+(?:\s+\S+){0,3}\s*", text)


# -- the agent -----------------------------------------------------------------------
class SupportAgent:
    """Keeps the conversation and records each model call and tool run."""

    def __init__(self, pace: float = 0.0) -> None:
        self.pace = pace  # seconds per streamed chunk, to give the recording real durations
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]
        self.mode = "self-service"
        self.totals = dict.fromkeys(("input_tokens", "output_tokens", "cached_tokens",
                                     "reasoning_tokens"), 0)
        self.cost_usd = 0.0

    def state(self) -> dict[str, Any]:
        """What a snapshot keeps: enough to replay the turn."""
        return {"mode": self.mode, "messages": len(self.messages),
                "last_message": self.messages[-1]["content"]}

    def ask_model(
        self, model: str, reply: Reply, messages: list[dict[str, Any]], tools: list[Any] | None = None
    ) -> dict[str, Any]:
        """Stream one scripted reply through ``agentlog.inference``; return the assistant message."""
        request: dict[str, Any] = {"model": model, "messages": list(messages), "stream": True}
        if tools:
            request["tools"] = tools
        calls = []
        with agentlog.inference(PROVIDER, model, request=request) as call:
            for piece in _chunks(reply.reasoning):
                self._wait()
                call.reasoning(piece)
            for piece in _chunks(reply.text):
                self._wait()
                call.delta(piece)
            for name, arguments in reply.tool_calls:
                # Providers mint tool call ids; they differ on every run, as real ones do.
                calls.append({"id": f"call_{secrets.token_hex(6)}", "name": name,
                              "arguments": arguments})
                call.tool_call(calls[-1]["id"], name, arguments)
            call.finish(stop_reason="tool_calls" if calls else "stop", usage=reply.usage(),
                        cost_usd=reply.cost(model))
        self._count(reply, model)
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if calls:
            message["tool_calls"] = calls
        return message

    def respond(self, reply: Reply) -> dict[str, Any]:
        message = self.ask_model(AGENT_MODEL, reply, self.messages, tools=TOOL_SPECS)
        self.messages.append(message)
        return message

    def run_tool(self, call: dict[str, Any]) -> None:
        """Run a tool the model asked for; a failure goes back to the model as text.

        The execution finds the model's request by itself: it is the only one of
        that name waiting in the turn (``agentlog.tool_call_id(call["id"])`` would
        say so explicitly). The carrier's key is masked before it is recorded.
        """
        arguments = dict(call["arguments"])
        if call["name"] == "track_shipment":
            arguments["api_key"] = "ups_live_demo_key"
        try:
            self._wait(5)  # a tool takes a while longer than a streamed chunk
            content = json.dumps(TOOLS[call["name"]](**arguments))
        except CarrierTimeout as exc:  # recorded as a failed tool call on the way out
            content = f"error: {exc}"
        self.messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})

    def _wait(self, chunks: int = 1) -> None:
        if self.pace:
            time.sleep(self.pace * chunks)

    def _count(self, reply: Reply, model: str) -> None:
        for key, value in reply.usage().items():
            self.totals[key] += value or 0
        self.cost_usd = round(self.cost_usd + reply.cost(model), 8)


def where_is_my_order(agent: SupportAgent) -> None:
    with agentlog.turn():
        agent.messages.append({"role": "user", "content": ASK_WHERE})
        agentlog.snapshot(agent.state(), phase="pre")
        plan = agent.respond(PLAN_LOOKUP)
        for call in plan["tool_calls"]:
            agent.run_tool(call)
        agent.respond(ANSWER_WHERE)
        agentlog.snapshot(agent.state(), phase="post")


def send_a_replacement(agent: SupportAgent) -> None:
    with agentlog.turn():
        agent.messages.append({"role": "user", "content": ASK_REPLACE})
        agentlog.snapshot(agent.state(), phase="pre")
        agent.respond(HAND_OFF)
        agentlog.log("mode switched", old=agent.mode, new="escalation",
                     reason="customer asked for a replacement")
        agent.mode = "escalation"
        decision = decide_replacement(agent)
        shipped = ship_replacement("A-1042", shipping=decision["shipping"], decision=decision)
        agent.messages.append({"role": "system",
                               "content": f"replacement-agent decided: {json.dumps(decision)}; "
                                          f"shipped: {json.dumps(shipped)}"})
        agent.respond(ANSWER_REPLACE)
        agentlog.snapshot(agent.state(), phase="post")


def decide_replacement(agent: SupportAgent) -> dict[str, Any]:
    """A sub-agent: its own span, its own model, its status reported as it works."""
    goal = "Decide whether order A-1042 can be reshipped by express"
    with agentlog.span("replacement-agent", kind="agent", goal=goal, label="2") as sub:
        sub.set_status("checking policy")
        policy = agentlog.span("check_reship_policy", kind="task", goal="Apply the late-delivery policy",
                               label="2.1")
        with policy as task:
            answer = agent.ask_model(POLICY_MODEL, POLICY_DECISION, POLICY_PROMPT)
            task.result = json.loads(answer["content"])
        with agentlog.span("pick_courier", kind="task", label="2.2") as courier:
            courier.link(task.span_id or "", "depends_on")  # an edge besides parent and child
            courier.result = {"courier": "UPS Express", "shipping": task.result["shipping"]}
        sub.set_status("approved", note="express reshipment within policy")
        sub.result = task.result
    return dict(task.result)


def thank_you(agent: SupportAgent) -> None:
    with agentlog.turn():
        agent.messages.append({"role": "user", "content": SAY_THANKS})
        agent.respond(ANSWER_THANKS)


def support_session(pace: float = 0.0) -> str:
    """Record the whole session in the current recorder; return the run id."""
    metadata = {"customer": "cus_demo_0042", "channel": "chat", "demo": True}
    run = agentlog.run("support-bot", metadata=metadata, tags=["demo", "support"])
    with run:
        agent = SupportAgent(pace)
        where_is_my_order(agent)
        send_a_replacement(agent)
        thank_you(agent)
        agentlog.usage(**agent.totals, cost_usd=agent.cost_usd)
    assert run.run_id is not None  # minted when the run was entered
    return run.run_id


def _check_writable(db_path: str | os.PathLike[str]) -> None:
    """Open the store once on this thread, so a bad path fails here with a clear error
    instead of on the writer thread, where failed batches are retried until shutdown."""
    from .store.sqlite import connect_writer

    try:
        # Creates and migrates the store; an unusable file raises instead of
        # sending the demo to a fallback file.
        connect_writer(resolve_db_path(os.fspath(db_path))).close()
    except sqlite3.Error as exc:
        raise StoreError(f"Cannot write to {os.fspath(db_path)}: {exc}") from None


def write_demo(db_path: str | os.PathLike[str], *, pace: float = 0.0) -> str:
    """Record the demo session into the SQLite store at ``db_path``; return the run id.

    This (re)configures the process-wide recorder for ``db_path`` and shuts it
    down afterwards, so call it from a program that is not recording elsewhere.
    ``pace`` is a delay in seconds per streamed chunk, for lifelike durations.
    Raises :class:`~agentlog.StoreError` if the store could not take the run.
    """
    _check_writable(db_path)
    recorder = agentlog.configure(db_path)
    try:
        run_id = support_session(pace)
        written = recorder.flush(10.0)
        problems = [s["last_error"] for s in recorder.stats()["sinks"].values() if s["last_error"]]
    finally:
        agentlog.shutdown()
    if not written or problems:
        detail = problems[0] if problems else "timed out"
        raise StoreError(f"Could not write the demo run to {os.fspath(db_path)}: {detail}")
    return run_id
