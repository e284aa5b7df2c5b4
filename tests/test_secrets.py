"""Secrets by shape (agentlog._secrets): each kind is replaced with a visible marker, and
ordinary prose, code, ids, hashes and token counts come through unchanged."""

from __future__ import annotations

import orjson
import pytest

from agentlog._secrets import (
    _CANDIDATE,
    _PRESCAN_BYTES,
    _PRESCAN_TEXT,
    KINDS,
    redact_json,
    redact_text,
    stream_hold_from,
)
from agentlog.processors import redact_deltas

from secrets_corpus import INNOCENT, SECRETS


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_every_shape_of_credential_is_replaced_by_a_marker_naming_its_kind(name: str) -> None:
    text, parts = SECRETS[name]
    out = redact_text(f"before {text} after")
    assert out.startswith("before ") and out.endswith(" after")
    assert "[REDACTED:" in out
    for part in parts:
        assert part not in out


def test_each_marker_names_one_of_the_documented_kinds() -> None:
    for text, _ in SECRETS.values():
        for chunk in redact_text(text).split("[REDACTED:")[1:]:
            assert chunk.split("]")[0] in KINDS


@pytest.mark.parametrize("text", INNOCENT)
def test_ordinary_text_code_ids_hashes_and_token_counts_stay_intact(text: str) -> None:
    assert redact_text(text) == text
    assert redact_json(orjson.dumps({"content": text, "max_tokens": 1024})) is None


def test_the_quick_first_look_lets_through_every_text_a_candidate_can_start_in() -> None:
    # The pre-scan's alternatives are substrings of the candidates: a text holding a
    # candidate holds the pre-scan's match too, so the pre-scan never hides a secret.
    for candidate in _CANDIDATE.split("|"):
        assert _PRESCAN_TEXT.search(candidate) is not None, candidate
        assert _PRESCAN_BYTES.search(candidate.encode()) is not None, candidate
    for text, _ in SECRETS.values():
        assert _PRESCAN_TEXT.search(text) is not None


def test_json_stays_valid_and_only_the_secret_changes() -> None:
    payload = {"request": {"headers": {"Authorization": SECRETS["bearer_token"][0].split(": ")[1]},
                           "url": SECRETS["url_password"][0], "max_tokens": 256,
                           "pem": SECRETS["private_key"][0]},
               "usage": {"prompt_tokens": 812, "completion_tokens": 64}}
    out = redact_json(orjson.dumps(payload))
    assert out is not None
    back = orjson.loads(out)
    assert back["request"]["headers"]["Authorization"] == "Bearer [REDACTED:bearer_token]"
    assert back["request"]["url"] == "postgresql://svc_user:[REDACTED:url_password]@db.internal:5432/app"
    assert back["request"]["pem"] == "[REDACTED:private_key]"
    assert back["usage"] == payload["usage"] and back["request"]["max_tokens"] == 256


def test_a_key_inside_a_json_encoded_string_is_found() -> None:
    raw_arguments = orjson.dumps({"query": f"use {SECRETS['openai_key'][0]}"}).decode()
    out = redact_json(orjson.dumps({"arguments": raw_arguments}))
    assert out is not None and b"Q3xT9vLm" not in out and orjson.loads(orjson.loads(out)["arguments"])


def test_a_stream_is_held_only_while_its_end_may_begin_a_secret() -> None:
    assert stream_hold_from("The weather in Paris is sunny and ") is None
    assert stream_hold_from("The weather in Paris is sunny") is None
    assert stream_hold_from("my key is sk-pr") == len("my key is ")
    assert stream_hold_from("Authorization: Bearer ") == len("Authorization: ")
    assert stream_hold_from("x -----BEGIN RSA PRIVATE KEY-----\nMIIE") == 2
    assert stream_hold_from("connect to postgres://bob:hun") == len("connect to ")


def test_a_key_split_across_chunks_is_replaced_in_the_first_and_cut_from_the_next() -> None:
    from agentlog import Event

    key = SECRETS["anthropic_key"][0]
    texts = ["Here: ", key[:15], key[15:40], key[40:] + " done"]
    events = [Event("llm.delta", f"e{i}", i, i, "r", None, "s", None, {"text": t}) for i, t in enumerate(texts)]
    out, _, held = redact_deltas(events, [()] * len(events), hold=False)
    assert held == [] and len(out) == 4
    assert [e.payload["text"] for e in out] == ["Here: ", "[REDACTED:anthropic_key]", "", " done"]
