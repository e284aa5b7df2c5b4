"""Delta consolidation: consecutive chunks of one span merge; nothing is lost."""

from __future__ import annotations

from agentlog import Event
from agentlog.processors import consolidate_deltas


def _ev(seq: int, type: str, span: str, **payload: object) -> Event:
    return Event(type, f"e{seq}", ts=seq * 10, seq=seq, run_id="r", span_id=span, payload=dict(payload))


def test_consecutive_deltas_of_a_span_merge_with_timing_and_count() -> None:
    events = [_ev(1, "llm.started", "a"), _ev(2, "llm.delta", "a", text="Hel"),
              _ev(3, "llm.delta", "a", text="lo"), _ev(4, "llm.finished", "a")]
    out, _ = consolidate_deltas(events, [()] * 4)
    assert [e.type for e in out] == ["llm.started", "llm.delta", "llm.finished"]
    assert out[1].payload == {"text": "Hello", "chunks": 2, "first_ts": 20, "last_ts": 30, "last_seq": 3}
    assert out[1].seq == 2 and out[1].event_id == "e2"


def test_interleaved_streams_merge_separately() -> None:
    events = [_ev(1, "llm.delta", "a", text="a1"), _ev(2, "llm.delta", "b", text="b1"),
              _ev(3, "llm.delta", "a", text="a2"), _ev(4, "llm.delta", "b", text="b2")]
    out, _ = consolidate_deltas(events, [()] * 4)
    assert [(e.span_id, e.payload["text"]) for e in out] == [("a", "a1a2"), ("b", "b1b2")]


def test_other_events_kinds_and_choices_break_a_run_of_deltas() -> None:
    events = [_ev(1, "llm.delta", "a", text="x"), _ev(2, "llm.reasoning", "a", text="think"),
              _ev(3, "llm.delta", "a", text="y"), _ev(4, "llm.tool_call", "a", id="c"),
              _ev(5, "llm.delta", "a", text="z", index=0), _ev(6, "llm.delta", "a", text="w", index=1)]
    out, _ = consolidate_deltas(events, [()] * 6)
    assert [(e.type, e.payload.get("text")) for e in out] == [
        ("llm.delta", "x"), ("llm.reasoning", "think"), ("llm.delta", "y"), ("llm.tool_call", None),
        ("llm.delta", "z"), ("llm.delta", "w")]
    assert "".join(e.payload.get("text", "") for e in out) == "xthinkyzw"


def test_inline_base64_media_is_replaced_by_a_marker_without_touching_the_caller() -> None:
    import base64
    import hashlib

    from agentlog.processors import strip_inline_media

    png = base64.b64encode(b"\x89PNG" + bytes(range(256)) * 20).decode()
    request = {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
    ]}]}
    ev = _ev(1, "llm.started", "a", request=request)
    out = strip_inline_media(ev)
    parts = out.payload["request"]["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "what is this?"}
    marker = parts[1]["image_url"]["url"]
    assert marker["mime"] == "image/png" and marker["size"] == len(png)
    assert marker["sha256"] == hashlib.sha256(png.encode()).hexdigest()
    assert parts[2]["source"]["data"]["$truncated"] is True
    assert request["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/png")  # untouched
    small = _ev(2, "llm.started", "a", request={"messages": [{"role": "user", "content": "hi"}]})
    assert strip_inline_media(small).payload is small.payload  # nothing to do, nothing copied


def test_the_writer_strips_media_by_default_and_keeps_it_on_request(tmp_path: object) -> None:
    import base64
    from pathlib import Path

    import agentlog

    from helpers import query

    png = base64.b64encode(bytes(range(256)) * 8).decode()
    request = {"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]}]}
    for keep, expect_marker in ((False, True), (True, False)):
        db = Path(str(tmp_path)) / f"media-{keep}.db"
        agentlog.configure(db, keep_media=keep)
        with agentlog.inference("openai", "gpt-4o", request=request) as call:
            call.finish("a cat")
        agentlog.shutdown()
        (row,) = query(db, "SELECT request FROM llm_calls")
        assert (png not in row["request"]) is expect_marker
        assert ('"$truncated":true' in row["request"]) is expect_marker
