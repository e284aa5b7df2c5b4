"""agentlog benchmark suite (run with ``python -m bench``)."""
