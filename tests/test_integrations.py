"""The framework adapters' shared surface: lazy imports, clear errors, masked secrets."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from agentlog.integrations._bridge import scrub

MODULES = {"openai_agents": ("agents", "openai-agents"), "langchain": ("langchain_core", "langchain"),
           "litellm": ("litellm", "litellm")}


def test_importing_the_package_imports_no_framework() -> None:
    code = ("import sys, agentlog, agentlog.integrations; "
            "print([m for m in ('agents', 'langchain_core', 'litellm') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_missing_framework_names_the_pip_line(name: str) -> None:
    framework, extra = MODULES[name]
    code = (f"import sys; sys.modules[{framework!r}] = None\n"
            f"try:\n    import agentlog.integrations.{name}\n"
            "except ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert f"pip install 'agentlog[{extra}]'" in out


@pytest.mark.parametrize("name", sorted(MODULES))
def test_each_adapter_module_has_a_sorted_all(name: str) -> None:
    pytest.importorskip(MODULES[name][0])
    module = importlib.import_module(f"agentlog.integrations.{name}")
    assert module.__all__ == sorted(module.__all__)
    assert all(getattr(module, n) is not None for n in module.__all__)


def test_scrub_masks_credentials_and_header_maps_but_not_token_counts() -> None:
    value = {"api_key": "sk-1", "openai_api_key": "sk-2", "extra_headers": {"Authorization": "Bearer x"},
             "max_tokens": 10, "nested": [{"client_secret": "s", "temperature": 0.2}], "api_base": "http://h"}
    assert scrub(value) == {"api_key": "[REDACTED]", "openai_api_key": "[REDACTED]",
                            "extra_headers": {"Authorization": "[REDACTED]"}, "max_tokens": 10,
                            "nested": [{"client_secret": "[REDACTED]", "temperature": 0.2}],
                            "api_base": "http://h"}
