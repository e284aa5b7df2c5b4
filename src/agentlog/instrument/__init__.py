"""Capture of the official LLM SDKs: ``agentlog.instrument()`` and ``uninstrument()``.

One call turns capture on for every supported SDK that is installed, or for one
SDK by name, or for one client object. Each provider module patches the SDK's
single request choke point (never the HTTP library), idempotently, and the
shared wrapping in :mod:`agentlog.instrument._calls` records the inference.

Importing this package imports no SDK; an SDK is imported only when it is
instrumented.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from . import _patch

__all__ = ["SUPPORTED", "instrument", "instrumented", "uninstrument"]

#: name -> (module to import to check it is installed, agentlog module, pip extra)
SUPPORTED: dict[str, tuple[str, str, str]] = {
    "openai": ("openai", "agentlog.instrument.openai", "openai"),
    "anthropic": ("anthropic", "agentlog.instrument.anthropic", "anthropic"),
    "google-genai": ("google.genai", "agentlog.instrument.google_genai", "google"),
}
_ALIASES = {"google": "google-genai", "genai": "google-genai", "gemini": "google-genai",
            "google.genai": "google-genai", "google_genai": "google-genai"}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _canonical(name: str) -> str:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in SUPPORTED:
        raise ValueError(f"agentlog cannot instrument {name!r}; supported: {', '.join(SUPPORTED)}")
    return key


def _module(name: str) -> Any:
    sdk, module, extra = SUPPORTED[name]
    if not _installed(sdk):
        raise ImportError(
            f"{name} is not installed; install it with: pip install 'agentlog[{extra}]'"
        )
    return importlib.import_module(module)


def instrument(*targets: Any, capture_http: bool = False) -> list[str]:
    """Record every call of the given SDKs (names) or clients; no argument: all installed SDKs.

    Returns the names of the SDKs instrumented. Instrumenting twice records once.
    An SDK that is not installed is skipped by ``instrument()`` and named in an
    ``ImportError`` (with the pip line) by ``instrument("that-sdk")``.
    ``capture_http=True`` also records each raw HTTP exchange (bodies and SSE
    lines, credentials removed) as an ``llm.http`` event, for debugging.
    """
    if capture_http:
        from . import _http

        _http.enable()
    done: list[str] = []
    if not targets:
        for name, (sdk, _, _) in SUPPORTED.items():
            if _installed(sdk):
                _module(name).instrument()
                done.append(name)
        return done
    for target in targets:
        if isinstance(target, str):
            name = _canonical(target)
            _module(name).instrument()
            done.append(name)
            continue
        name = _client_provider(target)
        _module(name).instrument_client(target)
        done.append(name)
    return done


def uninstrument(*targets: str) -> int:
    """Undo :func:`instrument` for the given SDK names (all when none); return patches undone."""
    if not targets:
        return _patch.restore_all()
    return sum(_patch.restore(_canonical(t)) for t in targets)


def instrumented() -> set[str]:
    """The SDKs currently instrumented (wholly or for some clients)."""
    return _patch.patched_providers()


def _client_provider(client: Any) -> str:
    root = type(client).__module__.split(".")[0]
    if root == "google":
        return "google-genai"
    if root in SUPPORTED:
        return root
    raise TypeError(
        f"agentlog cannot instrument a {type(client).__module__}.{type(client).__name__}; "
        f"pass a client of {', '.join(SUPPORTED)} or an SDK name"
    )
