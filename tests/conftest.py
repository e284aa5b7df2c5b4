"""Shared fixtures. Every test that starts a writer shuts it down."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Internal errors in instrumentation re-raise under the test suite (see agentlog._guard).
os.environ["AGENTLOG_STRICT"] = "1"
# LiteLLM fetches its model price map from GitHub when imported, unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import agentlog

from fakes._server import FakeServer


@pytest.fixture(autouse=True)
def _no_leaked_recorder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    # Never let a test write ./agentlog.db in the checkout by accident.
    monkeypatch.setenv("AGENTLOG_DB", str(tmp_path / "default.db"))
    yield
    agentlog.shutdown(timeout=10)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "agentlog.db"


#: The SDK tests: every request they send must come back from the store as it was recorded.
_REQUEST_ROUND_TRIP = {"test_instrument_openai", "test_instrument_anthropic", "test_instrument_gemini"}


@pytest.fixture(autouse=True)
def _requests_come_back_whole(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[None]:
    """Requests are stored by reference (sinks/_requests.py): after each SDK test, every
    llm.started payload the writer handed to the sinks is read back from the store through
    the ``events`` view, ``llm_calls.request`` and ``Store.events()``, and must be equal."""
    if request.module.__name__ not in _REQUEST_ROUND_TRIP:
        yield
        return
    from agentlog.testing import capture_events

    from round_trip import assert_requests_come_back

    with capture_events() as sink:
        yield
    assert_requests_come_back(tmp_path / "agentlog.db", sink.events)


@pytest.fixture
def recorder(db: Path) -> agentlog.Recorder:
    """The process-wide recorder, writing to a fresh file."""
    return agentlog.configure(db)


@pytest.fixture(scope="module")
def _shared_server() -> Iterator[FakeServer]:
    """One fake provider per module: stopping a server costs its poll interval (a module may
    override this fixture, e.g. to quiet client resets)."""
    with FakeServer() as srv:
        yield srv


@pytest.fixture
def server(_shared_server: FakeServer) -> Iterator[FakeServer]:
    """The module's server with an empty script and record, checked after the test
    for replies it scripted but never used."""
    _shared_server.script.clear()
    _shared_server.received.clear()
    yield _shared_server
    assert not _shared_server.script, "scripted replies left unused"
