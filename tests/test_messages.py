"""The messages view: each message of a conversation stored once per run, in order."""

from __future__ import annotations

from pathlib import Path

import agentlog

from helpers import query


def _call(history: list[dict[str, object]], reply: str) -> None:
    with agentlog.inference("openai", "gpt-4o", request={"messages": list(history)}) as call:
        call.delta(reply)
    history.append({"role": "assistant", "content": reply})


def test_a_growing_conversation_is_stored_once_in_order(db: Path) -> None:
    agentlog.configure(db)
    history: list[dict[str, object]] = [{"role": "system", "content": "be brief"}]
    with agentlog.run("chat"):
        for question in ("hi", "how are you?", "hi"):  # the same words twice, at different points
            history.append({"role": "user", "content": question})
            _call(history, f"answer to {question}")
    assert agentlog.flush(5)
    rows = query(db, "SELECT position, role, content, direction FROM messages ORDER BY position")
    assert [(r["role"], r["content"]) for r in rows] == [
        ("system", "be brief"),
        ("user", "hi"),
        ("assistant", "answer to hi"),
        ("user", "how are you?"),
        ("assistant", "answer to how are you?"),
        ("user", "hi"),
        ("assistant", "answer to hi"),
    ]
    assert [r["position"] for r in rows] == list(range(1, 8))
    # Each request is still reconstructible exactly as sent.
    requests = query(db, "SELECT request FROM llm_calls ORDER BY started_at")
    assert [len(__import__("json").loads(r["request"])["messages"]) for r in requests] == [2, 4, 6]


def test_reply_chains_to_a_request_written_in_an_earlier_batch(db: Path) -> None:
    agentlog.configure(db)
    with agentlog.run("chat"):
        call = agentlog.inference("openai", "m", request={"messages": [{"role": "user", "content": "q"}]})
        call.start()
        assert agentlog.flush(5)  # the request lands in its own batch
        agentlog.get_recorder().close()  # and the writer (with its memory of the chain) goes away
        agentlog.configure(db)
        call.finish("a")
        assert agentlog.flush(5)
    history = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    with agentlog.run("other"):
        pass
    rows = query(db, "SELECT role, content FROM messages ORDER BY position")
    assert [(r["role"], r["content"]) for r in rows] == [(m["role"], m["content"]) for m in history]


def test_tool_results_and_tool_call_messages(db: Path) -> None:
    agentlog.configure(db)
    history: list[dict[str, object]] = [{"role": "user", "content": "weather?"}]
    with agentlog.run("tools"):
        with agentlog.inference("openai", "m", request={"messages": list(history)}) as call:
            call.tool_call("call_9", "weather", {"city": "Oslo"})
            call.finish(None, stop_reason="tool_calls")
        history.append({"role": "assistant", "content": None,
                        "tool_calls": [{"id": "call_9", "name": "weather", "arguments": {"city": "Oslo"}}]})
        history.append({"role": "tool", "tool_call_id": "call_9", "content": "rainy"})
        with agentlog.inference("openai", "m", request={"messages": list(history)}) as call:
            call.finish("Bring an umbrella.")
    assert agentlog.flush(5)
    rows = query(db, "SELECT role, content, tool_call_id, tool_calls FROM messages ORDER BY position")
    assert [r["role"] for r in rows] == ["user", "assistant", "tool", "assistant"]
    assert rows[1]["tool_calls"] is not None and rows[2]["tool_call_id"] == "call_9"
    assert rows[3]["content"] == "Bring an umbrella."
