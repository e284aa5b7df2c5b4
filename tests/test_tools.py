"""Tool executions: the decorator and the context manager, linking to requests, masking, approvals."""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

import agentlog

from helpers import query


def tool_rows(db: Path) -> list[dict[str, Any]]:
    assert agentlog.flush(5)
    rows = query(db, "SELECT * FROM tool_calls ORDER BY started_at")
    out = []
    for r in rows:
        d = dict(r)
        for key in ("arguments", "annotations", "requested_arguments"):
            if d[key] is not None:
                d[key] = json.loads(d[key])
        if d["result"] is not None and d["result"][:1] in "[{":  # text results are stored as text
            d["result"] = json.loads(d["result"])
        out.append(d)
    return out


def ask(*calls: tuple[str, str, Any]) -> None:
    """An inference that asks for tool calls ``(id, name, arguments)``, as the SDK capture records them."""
    with agentlog.inference("openai", "gpt-4o") as call:
        for call_id, name, args in calls:
            call.tool_call(call_id, name, args)
        call.finish(stop_reason="tool_calls")


@agentlog.tool
def get_weather(city: str, unit: str = "C") -> dict[str, Any]:
    return {"city": city, "temp": 21, "unit": unit}


class FlightsUnavailable(Exception):
    pass


# -- the decorator ------------------------------------------------------------------------------
def test_decorated_tool_records_arguments_result_and_duration(db: Path, recorder: agentlog.Recorder) -> None:
    with agentlog.run("r"):
        assert get_weather("Paris", unit="F") == {"city": "Paris", "temp": 21, "unit": "F"}
    (row,) = tool_rows(db)
    assert row["name"] == "get_weather" and row["status"] == "ok"
    assert row["arguments"] == {"city": "Paris", "unit": "F"}  # as passed: defaults are not filled in
    assert row["result"] == {"city": "Paris", "temp": 21, "unit": "F"}
    assert row["duration_ms"] >= 0 and row["tool_call_id"] is None and row["llm_span_id"] is None
    (span,) = query(db, "SELECT kind, status FROM spans WHERE span_id = ?", row["span_id"])
    assert tuple(span) == ("tool", "ok")


def test_decorator_with_arguments_on_an_async_function(db: Path, recorder: agentlog.Recorder) -> None:
    @agentlog.tool(name="flights.search", exclude=("ctx",))
    async def search(ctx: object, to: str, **filters: Any) -> list[str]:
        await asyncio.sleep(0)
        return [f"AF123 to {to}"]

    assert inspect.iscoroutinefunction(search)
    assert list(inspect.signature(search).parameters) == ["ctx", "to", "filters"]

    async def main() -> list[str]:
        async with agentlog.run("r"):
            return await search(object(), "Tokyo", max_stops=1)

    assert asyncio.run(main()) == ["AF123 to Tokyo"]
    (row,) = tool_rows(db)
    assert row["name"] == "flights.search" and row["status"] == "ok"
    assert row["arguments"] == {"to": "Tokyo", "max_stops": 1}
    assert row["result"] == ["AF123 to Tokyo"]


def test_a_failing_tool_is_recorded_and_its_exception_reraised_unchanged(
    db: Path, recorder: agentlog.Recorder
) -> None:
    error = FlightsUnavailable("no seats to Tokyo on 2026-05-01")

    @agentlog.tool
    def book(to: str) -> None:
        raise error

    with agentlog.run("r"), pytest.raises(FlightsUnavailable) as caught:
        book("Tokyo")
    assert caught.value is error
    (row,) = tool_rows(db)
    assert row["status"] == "error" and row["error"] == "FlightsUnavailable: no seats to Tokyo on 2026-05-01"
    assert row["result"] is None and row["duration_ms"] >= 0
    (failed,) = query(db, "SELECT payload FROM events WHERE type = 'tool.failed'")
    assert json.loads(failed["payload"])["error"] == {"type": "FlightsUnavailable",
                                                     "message": "no seats to Tokyo on 2026-05-01"}


def test_a_call_that_does_not_fit_the_signature_is_a_failed_tool_call(
    db: Path, recorder: agentlog.Recorder
) -> None:
    with agentlog.run("r"), pytest.raises(TypeError):
        get_weather(town="Paris")  # type: ignore[call-arg]  # a model's wrong argument name
    (row,) = tool_rows(db)
    assert row["status"] == "error" and row["error"].startswith("TypeError:")
    assert row["arguments"] == {"town": "Paris"}


def test_methods_are_recorded_without_self(db: Path, recorder: agentlog.Recorder) -> None:
    class Calendar:
        @agentlog.tool
        def free_slots(self, day: str) -> list[str]:
            return ["09:00"]

    with agentlog.run("r"):
        assert Calendar().free_slots("monday") == ["09:00"]
    (row,) = tool_rows(db)
    assert row["arguments"] == {"day": "monday"}


def test_an_interrupted_tool_is_interrupted(db: Path, recorder: agentlog.Recorder) -> None:
    @agentlog.tool
    def slow() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), agentlog.run("r"):
        slow()
    (row,) = tool_rows(db)
    assert row["status"] == "interrupted"


# -- linking to the model's requests ------------------------------------------------------------
def test_an_explicit_id_links_the_execution_to_its_request(db: Path, recorder: agentlog.Recorder) -> None:
    with agentlog.run("r"), agentlog.turn():
        ask(("call_1", "lookup", {"id": 1}))
        with agentlog.tool_call("lookup", {"id": 1}, tool_call_id="call_1") as t:
            t.result = "found"
    (row,) = tool_rows(db)
    assert row["tool_call_id"] == "call_1" and row["llm_span_id"] is not None and row["status"] == "ok"
    (started,) = query(db, "SELECT payload FROM events WHERE type = 'tool.started'")
    assert json.loads(started["payload"])["link"] == "given"


def test_the_only_pending_request_of_that_name_in_the_turn_is_linked(
    db: Path, recorder: agentlog.Recorder
) -> None:
    with agentlog.run("r"), agentlog.turn():
        ask(("call_w", "get_weather", {"city": "Paris"}), ("call_t", "get_time", {"city": "Paris"}))
        get_weather("Paris")
    rows = {r["tool_call_id"]: r for r in tool_rows(db)}
    assert rows["call_w"]["status"] == "ok" and rows["call_w"]["span_id"] is not None
    assert rows["call_t"]["status"] == "requested" and rows["call_t"]["span_id"] is None
    (started,) = query(db, "SELECT payload FROM events WHERE type = 'tool.started'")
    assert json.loads(started["payload"])["link"] == "matched"


def test_several_pending_requests_of_one_name_are_told_apart_by_their_arguments(
    db: Path, recorder: agentlog.Recorder
) -> None:
    with agentlog.run("r"), agentlog.turn():
        ask(("call_p", "get_weather", {"city": "Paris"}), ("call_t", "get_weather", {"city": "Tokyo"}))
        get_weather("Tokyo")  # the model's arguments are a subset of what the tool got: still a match
        get_weather(city="Paris", unit="C")
    rows = {r["tool_call_id"]: r for r in tool_rows(db)}
    assert rows["call_t"]["arguments"] == {"city": "Tokyo"} and rows["call_t"]["status"] == "ok"
    assert rows["call_p"]["arguments"] == {"city": "Paris", "unit": "C"}
    assert rows["call_p"]["requested_arguments"] == {"city": "Paris"}


def test_an_ambiguous_execution_stays_unlinked(db: Path, recorder: agentlog.Recorder) -> None:
    with agentlog.run("r"), agentlog.turn():
        ask(("call_1", "get_weather", {"city": "Paris"}), ("call_2", "get_weather", {"city": "Paris"}))
        get_weather("Paris")
    rows = tool_rows(db)
    assert sorted((r["tool_call_id"] or "-", r["status"]) for r in rows) == [
        ("-", "ok"), ("call_1", "requested"), ("call_2", "requested")]


def test_a_request_is_claimed_once_and_only_within_its_turn(db: Path, recorder: agentlog.Recorder) -> None:
    with agentlog.run("r"):
        with agentlog.turn():
            ask(("call_1", "get_weather", {"city": "Paris"}))
            get_weather("Paris")
            get_weather("Paris")  # a second execution does not answer the same request
            ask(("call_2", "get_weather", {"city": "Rome"}))
        with agentlog.turn():
            get_weather("Rome")  # the request was made in the previous turn
    rows = tool_rows(db)
    linked = [r["tool_call_id"] for r in rows if r["span_id"] is not None]
    assert linked == ["call_1", None, None]
    assert [r["status"] for r in rows if r["tool_call_id"] == "call_2"] == ["requested"]


def test_tool_call_id_block_links_the_first_tool_started_in_it(db: Path, recorder: agentlog.Recorder) -> None:
    @agentlog.tool
    def outer(city: str) -> Any:
        return get_weather(city)  # a tool called by a tool answers no request of its own

    with agentlog.run("r"), agentlog.turn():
        ask(("call_a", "outer", {"city": "Oslo"}), ("call_b", "outer", {"city": "Oslo"}))
        with agentlog.tool_call_id("call_b"):
            outer("Oslo")
    rows = {(r["name"], r["tool_call_id"]): r for r in tool_rows(db)}
    assert rows[("outer", "call_b")]["status"] == "ok"
    assert rows[("outer", "call_a")]["status"] == "requested"
    assert rows[("get_weather", None)]["status"] == "ok"


def test_parallel_tools_in_threads_link_with_their_ids(db: Path, recorder: agentlog.Recorder) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def run_one(call_id: str, city: str) -> Any:
        with agentlog.tool_call_id(call_id):
            return get_weather(city)

    with agentlog.run("r"), agentlog.turn():
        ask(*((f"call_{i}", "get_weather", {"city": "Paris"}) for i in range(4)))
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(agentlog.bind_context(run_one), [f"call_{i}" for i in range(4)], ["Paris"] * 4))
    rows = tool_rows(db)
    assert sorted(r["tool_call_id"] for r in rows) == [f"call_{i}" for i in range(4)]
    assert all(r["status"] == "ok" and r["span_id"] for r in rows)


# -- secrets ----------------------------------------------------------------------------------
def test_arguments_named_like_secrets_are_masked_before_they_are_queued(
    db: Path, recorder: agentlog.Recorder
) -> None:
    @agentlog.tool
    def call_api(url: str, api_key: str, options: dict[str, Any]) -> str:
        return "ok"

    options = {"headers": {"Authorization": "Bearer sk-live-1", "X-API-Key": "k"}, "max_tokens": 5,
               "accounts": [{"user": "bob", "password": "hunter2", "refreshToken": "r"}]}
    with agentlog.run("r"):
        call_api("https://api", "sk-live-2", options)
    (row,) = tool_rows(db)
    assert row["arguments"] == {
        "url": "https://api", "api_key": "[REDACTED]",
        "options": {"headers": {"Authorization": "[REDACTED]", "X-API-Key": "[REDACTED]"}, "max_tokens": 5,
                    "accounts": [{"user": "bob", "password": "[REDACTED]", "refreshToken": "[REDACTED]"}]},
    }
    assert options["headers"]["Authorization"] == "Bearer sk-live-1"  # the caller's objects are untouched
    raw = query(db, "SELECT group_concat(payload) FROM events")[0][0]
    assert "sk-live" not in raw and "hunter2" not in raw


def test_secret_names_are_configurable_and_per_tool(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    agentlog.configure(db, secret_names=["pin"])
    with agentlog.run("r"):
        with agentlog.tool_call("pay", {"pin": "1234", "token": "t", "card_pin": "9"}):
            pass
        with agentlog.tool_call("pay", {"cvc": "123", "pin": "1"}, mask=["cvc"]):
            pass
    assert [r["arguments"] for r in tool_rows(db)] == [
        {"pin": "[REDACTED]", "token": "t", "card_pin": "[REDACTED]"},
        {"cvc": "[REDACTED]", "pin": "[REDACTED]"},
    ]
    monkeypatch.setenv("AGENTLOG_SECRET_NAMES", "ssn, dob")
    assert agentlog.configure(db).settings.secret_names == ("ssn", "dob")
    with pytest.raises(agentlog.ConfigError, match="secret_names"):
        agentlog.configure(db, secret_names="token")  # type: ignore[arg-type]


def test_mask_secrets_matches_whole_words() -> None:
    from agentlog.tools import mask_secrets

    names = agentlog.Settings().secret_names
    value = {"OPENAI_API_KEY": 1, "apiKey": 2, "access_token": 3, "max_tokens": 4, "tokenizer": 5,
             "author": 6, "client_secret": 7, "passwordHash": 8, "token": None}
    assert mask_secrets(value, names) == {
        "OPENAI_API_KEY": "[REDACTED]", "apiKey": "[REDACTED]", "access_token": "[REDACTED]",
        "max_tokens": 4, "tokenizer": 5, "author": 6, "client_secret": "[REDACTED]",
        "passwordHash": "[REDACTED]", "token": None,
    }
    same = {"a": [1, {"b": 2}]}
    assert mask_secrets(same, names) is same  # nothing to mask: nothing copied


# -- approvals and extra fields -----------------------------------------------------------------
def test_approvals_and_annotations_are_in_the_tool_calls_view(db: Path, recorder: agentlog.Recorder) -> None:
    @agentlog.tool
    def refund(order: str, amount: float) -> str:
        call = agentlog.current_tool()
        assert call is not None and call.name == "refund"
        call.approve(by="alice@shop", reason="under the limit")
        call.annotate(side_effects=["refund issued"], amount_eur=amount)
        call.annotate(ledger_id="L-9")
        return "refunded"

    with agentlog.run("r"):
        refund("A-1", 42.0)
    (row,) = tool_rows(db)
    assert (row["status"], row["approval"], row["approval_by"], row["approval_reason"]) == (
        "ok", "approved", "alice@shop", "under the limit")
    assert row["annotations"] == {"side_effects": ["refund issued"], "amount_eur": 42.0, "ledger_id": "L-9"}
    assert agentlog.current_tool() is None


def test_a_denied_call_ends_with_status_denied(db: Path, recorder: agentlog.Recorder) -> None:
    with agentlog.run("r"):
        with agentlog.tool_call("delete_account", {"user": "u1"}) as call:
            call.approve(by="bot")
            call.deny(by="bob", reason="needs a second reviewer")
            call.annotate(note="kept", temp=None)
            call.result = "not deleted"
        with pytest.raises(PermissionError), agentlog.tool_call("wipe_disk") as call:
            call.deny(by="policy")
            raise PermissionError("denied by policy")
    first, second = tool_rows(db)
    assert (first["status"], first["approval"], first["approval_by"]) == ("denied", "denied", "bob")
    assert first["approval_reason"] == "needs a second reviewer" and first["result"] == "not deleted"
    assert first["annotations"] == {"note": "kept"}
    assert second["status"] == "denied" and second["error"] == "PermissionError: denied by policy"
    decisions = query(db, "SELECT json_extract(payload, '$.decision') AS d FROM events"
                          " WHERE type = 'tool.approval' ORDER BY seq")
    assert [r["d"] for r in decisions] == ["approved", "denied", "denied"]
    with agentlog.open(db) as store:
        assert [h.kind for h in store.search("second reviewer")] == ["approval"]


def test_a_tool_call_can_be_started_and_finished_from_callbacks(db: Path, recorder: agentlog.Recorder) -> None:
    with agentlog.run("r"), agentlog.turn():
        ask(("call_1", "lookup", {"id": 7}))
        call = agentlog.tool_call("lookup", {"id": 7}).start()
        assert call.tool_call_id == "call_1"
        call.finish({"id": 7})
        assert call.finish("again") is False  # one ending only
        failing = agentlog.tool_call("lookup", {"id": 8}).start()
        failing.fail("backend down")
    ok, failed = tool_rows(db)
    assert ok["status"] == "ok" and ok["result"] == {"id": 7} and ok["llm_span_id"] is not None
    assert failed["status"] == "error" and failed["error"] == "error: backend down"


def test_mask_secrets_visits_shared_structures_once_on_the_callers_thread() -> None:
    import time

    from agentlog.tools import mask_secrets

    shared: Any = [{"api_key": "sk-1", "q": "x"}]
    for _ in range(25):  # 2**25 paths to the same dict (and within mask_secrets' depth limit)
        shared = [shared, shared]
    cyclic: dict[str, Any] = {"token": "t"}
    cyclic["self"] = cyclic
    t0 = time.perf_counter()
    masked = mask_secrets({"args": shared, "cyc": cyclic}, ["api_key", "token"])
    assert time.perf_counter() - t0 < 0.1
    leaf = masked["args"]
    for _ in range(25):
        assert leaf[0] is leaf[1]  # still shared, masked once
        leaf = leaf[0]
    assert leaf == [{"api_key": "[REDACTED]", "q": "x"}]
    assert masked["cyc"]["token"] == "[REDACTED]"
