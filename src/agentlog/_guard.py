"""Recording never breaks the host program.

Instrumentation code runs inside :func:`guard`: an internal error is logged
(once per call site) and swallowed. Under agentlog's own test suite
(``AGENTLOG_STRICT=1``) it re-raises, so bugs are seen instead of hidden.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["guard", "strict"]

log = logging.getLogger("agentlog")
_reported: set[str] = set()


def strict() -> bool:
    return os.environ.get("AGENTLOG_STRICT", "") not in ("", "0")


@contextmanager
def guard(where: str) -> Iterator[None]:
    try:
        yield
    except Exception:
        if strict():
            raise
        if where not in _reported:
            _reported.add(where)
            log.exception("agentlog: internal error in %s (recording continues; reported once)", where)
