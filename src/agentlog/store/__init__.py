"""The store: schema migrations, connections and the read-side queries.

Dialect-specific SQL lives in ``migrations/<dialect>/*.sql`` and in
:mod:`agentlog.store.queries`; nothing else in agentlog writes SELECTs.
"""
