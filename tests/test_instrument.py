"""The instrument() / uninstrument() surface, independent of any one SDK."""

from __future__ import annotations

import subprocess
import sys

import pytest

import agentlog
from agentlog.instrument import instrumented


@pytest.fixture(autouse=True)
def _undo() -> None:
    yield
    agentlog.uninstrument()


def test_unknown_sdk_name_is_refused_with_the_supported_list() -> None:
    with pytest.raises(ValueError, match="supported: openai, anthropic, google-genai"):
        agentlog.instrument("cohere")


def test_a_missing_sdk_is_named_with_its_pip_line_and_skipped_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'agentlog\[anthropic\]'"):
        agentlog.instrument("anthropic")
    done = agentlog.instrument()
    assert "anthropic" not in done and "openai" in done
    assert instrumented() == set(done)


def test_aliases_and_undo_per_sdk() -> None:
    assert agentlog.instrument("gemini") == ["google-genai"]
    assert agentlog.instrument("openai") == ["openai"]
    assert instrumented() == {"google-genai", "openai"}
    assert agentlog.uninstrument("google") == 4  # request, request_streamed and their async twins
    assert instrumented() == {"openai"}


def test_instrument_refuses_objects_that_are_not_sdk_clients() -> None:
    with pytest.raises(TypeError, match=r"cannot instrument a builtins\.dict"):
        agentlog.instrument({})


def test_instrumenting_imports_no_sdk_until_asked() -> None:
    code = ("import sys, agentlog, agentlog.instrument; "
            "print(sorted(m for m in ('openai', 'anthropic', 'google.genai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
