"""Cost from token usage, with a dated price table that ships with the package.

Prices are USD per million tokens, per provider and model, in ``prices.json``
(its ``as_of`` date says when they were checked). A model is matched exactly,
else by the longest known prefix (``gpt-4o-2024-08-06`` → ``gpt-4o``). A model
that is not in the table is *unpriced*: its cost is None, never $0.

Override or extend the table with :func:`set_price`, or point ``$AGENTLOG_PRICES``
at a JSON file of the same shape (``{"prices": {provider: {model: {...}}}}``).

Usage is the normalised form: ``input_tokens`` includes cache reads and writes,
``output_tokens`` includes reasoning. So the uncached input is
``input - cached - cache_write``, and reasoning is billed within output.
"""

from __future__ import annotations

import json
import os
import threading
from importlib import resources
from typing import Any

__all__ = ["cost_usd", "price_for", "prices_as_of", "set_price"]

_lock = threading.Lock()
_table: dict[str, dict[str, dict[str, float]]] | None = None
_as_of = ""
_resolved: dict[tuple[str, str], dict[str, float] | None] = {}


def _load() -> dict[str, dict[str, dict[str, float]]]:
    global _table, _as_of
    with _lock:
        if _table is None:
            data = json.loads((resources.files("agentlog") / "prices.json").read_text("utf-8"))
            _as_of = data.get("as_of", "")
            table: dict[str, dict[str, dict[str, float]]] = {
                p: dict(models) for p, models in data["prices"].items()
            }
            extra = os.environ.get("AGENTLOG_PRICES")
            if extra:
                with open(extra, encoding="utf-8") as f:
                    for provider, models in json.load(f).get("prices", {}).items():
                        table.setdefault(provider, {}).update(models)
            _table = table
        return _table


def prices_as_of() -> str:
    """The date (YYYY-MM-DD) the shipped prices were checked."""
    _load()
    return _as_of


def set_price(
    provider: str,
    model: str,
    *,
    input: float,
    output: float,
    cached_input: float | None = None,
    cache_write: float | None = None,
) -> None:
    """Add or replace a model's price (USD per million tokens)."""
    entry: dict[str, float] = {"input": float(input), "output": float(output)}
    if cached_input is not None:
        entry["cached_input"] = float(cached_input)
    if cache_write is not None:
        entry["cache_write"] = float(cache_write)
    table = _load()
    with _lock:
        table.setdefault(provider, {})[model] = entry
        _resolved.clear()
        _rates.clear()


def price_for(provider: str, model: str | None) -> dict[str, float] | None:
    """The price entry of ``model`` (exact, then without a path, then the longest prefix)."""
    if not model:
        return None
    key = (provider, model)
    try:
        return _resolved[key]  # every call asks: resolve each (provider, model) once
    except KeyError:
        pass
    price = _resolve(provider, model)
    with _lock:
        if len(_resolved) > 4096:
            _resolved.clear()
        _resolved[key] = price
    return price


def _resolve(provider: str, model: str) -> dict[str, float] | None:
    models = _load().get(provider)
    if not models:
        return None
    if model in models:
        return models[model]
    base = model.rsplit("/", 1)[-1]  # e.g. "models/gemini-2.5-flash"
    if base in models:
        return models[base]
    best = max((m for m in models if base.startswith(m + "-") or base.startswith(m + "@")), key=len, default=None)
    return models[best] if best else None


def cost_usd(provider: str, model: str | None, usage: dict[str, Any] | None) -> float | None:
    """The cost of one call, or None when the model is unpriced or usage is unknown."""
    if not usage or not model:
        return None
    try:
        rates = _rates[(provider, model)]  # on every call: the rates of a model are resolved once
    except KeyError:
        rates = _rates_for(provider, model)
    if rates is None:
        return None
    inp = usage.get("input_tokens")
    out = usage.get("output_tokens")
    if inp is None and out is None:
        return None
    cached = usage.get("cached_tokens") or 0
    written = usage.get("cache_write_tokens") or 0
    uncached = max(0, (inp or 0) - cached - written)
    total = uncached * rates[0] + cached * rates[1] + written * rates[2] + (out or 0) * rates[3]
    return round(total / 1_000_000, 10)


#: (provider, model) -> (input, cached input, cache write, output) USD per million tokens, or None.
_rates: dict[tuple[str, str], tuple[float, float, float, float] | None] = {}


def _rates_for(provider: str, model: str) -> tuple[float, float, float, float] | None:
    price = price_for(provider, model)
    rates = None
    if price is not None:
        base = price["input"]
        rates = (base, price.get("cached_input", base), price.get("cache_write", base), price["output"])
    with _lock:
        if len(_rates) > 4096:
            _rates.clear()
        _rates[(provider, model)] = rates
    return rates
