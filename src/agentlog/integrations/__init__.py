"""Framework adapters: each maps a framework's own callbacks onto agentlog's runs and spans.

One module per framework, each an optional extra that imports its framework when
the module is imported (and says which ``pip install 'agentlog[...]'`` line is
missing otherwise)::

    agentlog.integrations.openai_agents   OpenAI Agents SDK tracing processor   agentlog[openai-agents]
    agentlog.integrations.langchain       LangChain / LangGraph callback handler agentlog[langchain]
    agentlog.integrations.litellm         LiteLLM callback (CustomLogger)        agentlog[litellm]

They are not re-exported from ``agentlog``: each class subclasses its framework's
own base class, so it can only exist once the framework is imported, and
``import agentlog`` imports no framework. See docs/frameworks.md.
"""

from __future__ import annotations

__all__: list[str] = []
