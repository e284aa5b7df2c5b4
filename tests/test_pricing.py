"""Cost from usage: the dated table, prefix matching, overrides, and 'unpriced' as NULL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import agentlog
from agentlog.pricing import cost_usd, price_for, prices_as_of


def test_the_table_is_dated_and_matches_dated_model_names() -> None:
    assert price_for("openai", "gpt-4o") is not None
    assert len(prices_as_of()) == 10 and prices_as_of()[4] == "-"  # YYYY-MM-DD
    assert price_for("openai", "gpt-4o-2024-08-06") == price_for("openai", "gpt-4o")
    assert price_for("openai", "gpt-4o-mini-2024-07-18") == price_for("openai", "gpt-4o-mini")
    assert price_for("google", "models/gemini-2.5-flash") == price_for("google", "gemini-2.5-flash")


def test_unknown_models_are_unpriced_not_free() -> None:
    usage = {"input_tokens": 1000, "output_tokens": 10}
    assert cost_usd("openai", "my-finetune", usage) is None
    assert cost_usd("nobody", "gpt-4o", usage) is None
    assert cost_usd("openai", "gpt-4o", None) is None
    assert cost_usd("openai", "gpt-4o", {"input_tokens": None, "output_tokens": None}) is None


def test_cached_and_cache_write_tokens_are_priced_apart_from_fresh_input() -> None:
    usage = {"input_tokens": 1_000_000, "cached_tokens": 400_000, "cache_write_tokens": 100_000,
             "output_tokens": 1_000_000, "reasoning_tokens": 500_000}
    # 500k fresh * 3.0 + 400k cached * 0.3 + 100k written * 3.75 + 1M output * 15.0 (reasoning inside)
    assert cost_usd("anthropic", "claude-sonnet-4-5", usage) == pytest.approx(1.5 + 0.12 + 0.375 + 15.0)


def test_set_price_adds_and_overrides() -> None:
    agentlog.set_price("openai", "my-finetune-v2", input=2.0, output=8.0)
    assert cost_usd("openai", "my-finetune-v2", {"input_tokens": 1000, "output_tokens": 1000}) == pytest.approx(0.01)


def test_a_price_file_from_the_environment_extends_the_table(tmp_path: Path) -> None:
    extra = tmp_path / "prices.json"
    extra.write_text(json.dumps({"prices": {"acme": {"rocket-1": {"input": 1.0, "output": 1.0}}}}))
    code = ("from agentlog.pricing import cost_usd; "
            "print(cost_usd('acme', 'rocket-1', {'input_tokens': 10**6, 'output_tokens': 0}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "AGENTLOG_PRICES": str(extra)}).stdout
    assert out.strip() == "1.0"
