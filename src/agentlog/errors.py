"""agentlog's exceptions, one tree::

    AgentlogError
    ├── ConfigError          a setting or URL is invalid (also a ValueError)
    ├── StoreError           the store cannot be opened or used
    │   └── UnusableStoreError   the file is damaged, foreign, a directory, or newer: never written
    │       └── SchemaVersionError   the file was written by a newer agentlog
    ├── NotFoundError        no such run / span (also a LookupError)
    └── QueryError           a query's input is invalid, e.g. bad FTS syntax (also a ValueError)

The recorder never raises any of these into the host program: they come from
configuration (``configure``) and from the read side (``open``, the CLI).
"""

from __future__ import annotations

__all__ = [
    "AgentlogError",
    "ConfigError",
    "NotFoundError",
    "QueryError",
    "SchemaVersionError",
    "StoreError",
    "UnusableStoreError",
]


class AgentlogError(Exception):
    """Base class of every exception agentlog raises on purpose."""


class ConfigError(AgentlogError, ValueError):
    """A setting, environment variable or store URL is invalid."""


class StoreError(AgentlogError):
    """The store cannot be opened, migrated or read."""


class UnusableStoreError(StoreError):
    """The file is not one agentlog may write into; it is left untouched.

    Raised for a damaged file, another program's database, a directory in the
    file's place, or a newer schema. The recorder then writes to a fallback file
    next to it instead (see ``docs/guarantees.md``).
    """


class SchemaVersionError(UnusableStoreError):
    """The store was written by a newer agentlog; it is left untouched."""


class NotFoundError(AgentlogError, LookupError):
    """A run or span that was asked for does not exist."""


class QueryError(AgentlogError, ValueError):
    """A query's input is invalid (for example, full-text search syntax)."""
