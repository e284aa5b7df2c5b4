"""Idempotent, reversible patching of SDK methods.

Every wrapper carries ``__agentlog_original__``; patching an already-patched
attribute is a no-op, and :func:`restore_all` puts every original back.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from typing import Any

__all__ = ["is_patched", "patch", "restore", "restore_all"]

_lock = threading.Lock()
# (owner, attribute name) -> (provider, original); owners are classes or client instances.
_patched: dict[tuple[int, str], tuple[Any, str, str, Any]] = {}


def is_patched(owner: Any, name: str) -> bool:
    return getattr(getattr(owner, name, None), "__agentlog_original__", None) is not None


def patch(provider: str, owner: Any, name: str, make: Callable[[Any], Any]) -> bool:
    """Replace ``owner.name`` by ``make(original)``; False if it was already patched."""
    with _lock:
        if is_patched(owner, name):
            return False
        if isinstance(owner, type):
            original = owner.__dict__[name]  # the class that defines it, not a subclass
            wrapper = make(original)
            wrapper.__agentlog_original__ = original
            setattr(owner, name, wrapper)
        else:  # one client instance: shadow the class's method with a bound wrapper
            original = getattr(type(owner), name)
            wrapper = make(original)
            wrapper.__agentlog_original__ = original
            owner.__dict__[name] = types.MethodType(wrapper, owner)
        _patched[(id(owner), name)] = (owner, name, provider, original)
        return True


def restore(provider: str | None = None) -> int:
    """Undo the patches of one provider (or all); return how many were undone."""
    with _lock:
        undone = 0
        for key, (owner, name, prov, original) in list(_patched.items()):
            if provider is not None and prov != provider:
                continue
            if isinstance(owner, type):
                setattr(owner, name, original)
            else:
                # An instance patch shadows the class attribute: removing it restores the method.
                owner.__dict__.pop(name, None)
            del _patched[key]
            undone += 1
        return undone


def restore_all() -> int:
    return restore(None)


def patched_providers() -> set[str]:
    with _lock:
        return {prov for (_, _, prov, _) in _patched.values()}
