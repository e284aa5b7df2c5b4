"""Deterministic event content shared by the benchmarks.

Text is built from a fixed pseudo-vocabulary so that the full-text index sees a
realistic spread of distinct words (an index fed the same sentence over and
over is unrealistically cheap), while every run of the suite writes the same
bytes. Everything here is built before any timer starts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MODEL",
    "SYSTEM_MESSAGE",
    "USAGE",
    "TextPool",
    "Turn",
    "build_runs",
    "events_per_run",
    "typical_payloads",
]

MODEL = "gpt-4o-mini-2024-07-18"
USAGE: dict[str, int | None] = {
    "input_tokens": 1234,
    "output_tokens": 56,
    "cached_tokens": 1024,
    "cache_write_tokens": 0,
    "reasoning_tokens": 0,
}
_SYLLABLES = (
    "ka",
    "lo",
    "mi",
    "ren",
    "tas",
    "vo",
    "qui",
    "der",
    "ul",
    "bes",
    "ny",
    "pra",
    "st",
    "om",
)


class TextPool:
    """A few thousand distinct snippets of English-like text, picked by index."""

    def __init__(self, size: int = 4096, seed: int = 7) -> None:
        rng = random.Random(seed)
        vocab = [self._word(rng) for _ in range(6000)]
        self._texts = {n: [self._text(rng, vocab, n) for _ in range(size)] for n in (50, 100, 200)}

    @staticmethod
    def _word(rng: random.Random) -> str:
        return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4)))

    @staticmethod
    def _text(rng: random.Random, vocab: list[str], size: int) -> str:
        words: list[str] = []
        length = 0
        while length < size:
            word = rng.choice(vocab)
            words.append(word)
            length += len(word) + 1
        return " ".join(words)[:size]

    def get(self, size: int, i: int) -> str:
        """Snippet number ``i`` (any int) of about ``size`` bytes (50, 100 or 200)."""
        texts = self._texts[size]
        return texts[(i * 7919) % len(texts)]


def typical_payloads(pool: TextPool, n: int = 1024) -> list[dict[str, Any]]:
    """Payloads of a finished LLM call: ~200 B of text plus ~300 B of JSON-able fields.

    Distinct dicts (not one reused object), as a real caller builds a new one per event.
    """
    return [
        {
            "response_text": pool.get(200, i),
            "provider": "openai",
            "model": MODEL,
            "status": "ok",
            "stop_reason": "stop",
            "usage": dict(USAGE, output_tokens=40 + i % 50),
            "cost_usd": 0.000123 + i * 1e-9,
            "ttft_ms": 312.5,
            "duration_ms": 1456.25 + i,
            "request_id": f"req_{i:024x}",
        }
        for i in range(n)
    ]


SYSTEM_MESSAGE = {
    "role": "system",
    "content": "You are a careful research assistant. Use the search_docs tool to look things up, "
    "cite the documents you used, and answer in at most three short paragraphs. "
    "If the documents do not answer the question, say so plainly.",
}


@dataclass(frozen=True)
class Turn:
    """The content of one agent turn: a model call that asks for a tool, the tool, a log line."""

    user: str
    deltas: tuple[str, ...]
    call_id: str
    arguments: dict[str, Any]
    result: str
    log: str


#: run.started + run.finished, and per turn: turn.started, llm.started, 4 x llm.delta,
#: llm.tool_call, llm.finished, tool.started, tool.finished, log, turn.finished.
_EVENTS_PER_TURN = 12
_DELTAS_PER_TURN = 4


def events_per_run(turns: int) -> int:
    return 2 + _EVENTS_PER_TURN * turns


def build_runs(pool: TextPool, runs: int, turns: int) -> list[list[Turn]]:
    """The content of ``runs`` agent runs of ``turns`` turns each."""
    out: list[list[Turn]] = []
    k = 0
    for r in range(runs):
        run: list[Turn] = []
        for t in range(turns):
            k += 1
            run.append(
                Turn(
                    user=pool.get(200, k),
                    deltas=tuple(
                        pool.get(50, k * _DELTAS_PER_TURN + d) for d in range(_DELTAS_PER_TURN)
                    ),
                    call_id=f"call_{r:05d}_{t:03d}",
                    arguments={"query": pool.get(50, k + 1), "top_k": 5},
                    result=pool.get(200, k + 2),
                    log=pool.get(100, k + 3),
                )
            )
        out.append(run)
    return out
