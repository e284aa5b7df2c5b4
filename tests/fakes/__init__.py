"""Local fake LLM providers speaking each provider's real wire format (JSON and SSE).

The official SDK clients talk to these over real HTTP on 127.0.0.1. Tests script
what the "model" answers and read back what the SDK actually sent.
"""
