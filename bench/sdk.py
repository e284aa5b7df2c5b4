"""Benchmark 3: what SDK instrumentation adds to a call, and to each streamed chunk.

The official clients (OpenAI Chat Completions, Anthropic Messages, Google Gen AI
``generate_content``; each plain and streamed) call a local fake provider over
real HTTP: the ``FakeServer`` of ``tests/fakes`` answering with the fakes' own
reply builders (streams of 50 text deltas). The same call is timed uninstrumented
and instrumented in alternation, ``agentlog.uninstrument()`` /
``agentlog.instrument(sdk)`` between blocks of calls ordered AB BA AB ..., so that
the machine's drift hits both modes alike. The recorder writes to a real SQLite
file and its writer thread runs concurrently, as in an agent.

The fake provider runs in a child process (``python -m bench.sdk --serve``):
in-process, its handler threads would take the caller's GIL, which a real local
server does not. It sends without Nagle's delay (``TCP_NODELAY``), as real
servers do (without it every JSON reply waits ~40 ms for a delayed ACK and hides
everything else), and it sends a stream in one write, so the client never waits
between chunks: what is timed is the SDK's and agentlog's work, not the server's pace.

Figures per case and repetition: the median call time of each mode; the time
added per call (see :func:`measure_case`) and its ratio to the plain call; for
streams the time added per chunk, added / chunks the caller iterated, which puts
the per-call part of the cost on the chunks too (an upper bound).
"""

from __future__ import annotations

import gc
import importlib
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import agentlog

from .flow import writer_pids
from .stats import percentile, spread

__all__ = ["CASES", "Case", "run_sdk"]

ROOT = Path(__file__).resolve().parent.parent
ANSWER = (
    "The forecast for Paris tomorrow is mostly sunny with a light breeze from the west, "
    "highs near twenty two degrees and lows around fourteen. Rain is unlikely before the "
    "weekend, when a weak front may bring scattered showers in the afternoon and a cooler "
    "evening. Pack a light jacket for the evening and keep an umbrella close by."
)
_WORDS = ANSWER.split()[:50]
#: 50 token-like text deltas (~280 B in all): the streamed answer; joined, the plain one.
CHUNKS = [_WORDS[0], *(f" {w}" for w in _WORDS[1:])]
TEXT = "".join(CHUNKS)
SYSTEM = "You are a concise weather assistant. Answer in two or three sentences, no lists."
QUESTION = "What will the weather be like in Paris tomorrow, and should I bring an umbrella?"


@dataclass(frozen=True)
class Case:
    """One SDK call: ``sdk`` is the name ``agentlog.instrument()`` takes."""

    name: str
    sdk: str
    stream: bool


CASES = (
    Case("openai chat", "openai", stream=False),
    Case("openai chat stream", "openai", stream=True),
    Case("anthropic messages", "anthropic", stream=False),
    Case("anthropic messages stream", "anthropic", stream=True),
    Case("gemini generate_content", "google-genai", stream=False),
    Case("gemini generate_content stream", "google-genai", stream=True),
)


# -- the fake provider, in a child process --------------------------------------------------
def serve() -> None:
    """Serve the three providers' fixed replies until stdin closes; print the URL first."""
    sys.path.insert(0, str(ROOT / "tests"))
    server_mod: Any = importlib.import_module("fakes._server")

    class OneWriteServer(server_mod.FakeServer):  # type: ignore[misc]
        """Sends a whole stream at once, so the client never waits between chunks: what is
        measured is the SDK's and agentlog's work per chunk, not the server's pace."""

        def _write_sse(self, h: Any, reply: Any) -> None:
            body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in reply.sse_bytes())
            h.send_response(reply.status)
            h.send_header("content-type", "text/event-stream")
            h.send_header("cache-control", "no-cache")
            h.send_header("transfer-encoding", "chunked")
            for k, v in reply.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(body + b"0\r\n\r\n")
            h.wfile.flush()

    with OneWriteServer(default=_replies()) as server:
        # Real servers send without Nagle's delay; FakeServer's handler does not ask for it.
        # The handler class is per FakeServer instance: nothing else is affected.
        server._httpd.RequestHandlerClass.disable_nagle_algorithm = True
        print(server.url, flush=True)
        sys.stdin.read()


def _replies() -> Callable[[Any], Any]:
    openai_fake = importlib.import_module("fakes.openai_fake")
    anthropic_fake = importlib.import_module("fakes.anthropic_fake")
    gemini_fake = importlib.import_module("fakes.gemini_fake")

    def reply(req: Any) -> Any:
        body = req.body if isinstance(req.body, dict) else {}
        stream = bool(body.get("stream"))
        if req.path.endswith("/chat/completions"):
            return openai_fake.chat_stream(CHUNKS) if stream else openai_fake.chat_completion(TEXT)
        if req.path == "/v1/messages":
            if stream:
                return anthropic_fake.message_stream(CHUNKS)
            return anthropic_fake.message(TEXT)
        method = gemini_fake.parse_path(req.path)[2]
        if method == "streamGenerateContent":
            return gemini_fake.stream_generate_content(CHUNKS)
        if method == "generateContent":
            return gemini_fake.generate_content(TEXT)
        return gemini_fake.error(404, f"bench.sdk: nothing at {req.path}")

    return reply


@contextmanager
def fake_provider() -> Iterator[str]:
    """Start the child server; yield its base URL; stop it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.sdk", "--serve"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        url = proc.stdout.readline().strip()
        if not url:
            raise RuntimeError("bench.sdk: the fake provider did not start (see its stderr)")
        yield url
    finally:
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()  # the server exits when its stdin closes
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the calls --------------------------------------------------------------------------------
Call = Callable[[], int]  # makes one call; returns the chunks iterated (1 for a plain call)


def make_calls(url: str) -> tuple[dict[str, Call], list[Any], dict[str, str]]:
    """One call per case whose SDK is installed, the clients to close, and the SDKs skipped."""
    calls: dict[str, Call] = {}
    clients: list[Any] = []
    skipped: dict[str, str] = {}
    for sdk, build in (("openai", _openai), ("anthropic", _anthropic), ("google-genai", _gemini)):
        try:
            client, plain, streamed = build(url)
        except ImportError as exc:
            skipped[sdk] = str(exc)
            continue
        clients.append(client)
        for case in CASES:
            if case.sdk == sdk:
                calls[case.name] = streamed if case.stream else plain
    return calls, clients, skipped


def _count(items: Iterable[Any]) -> int:
    n = 0
    for _ in items:
        n += 1
    return n


def _stainless_calls(create: Callable[[bool], Any]) -> tuple[Call, Call]:
    """A plain and a streamed call from one ``create(stream)`` (OpenAI and Anthropic alike)."""

    def plain() -> int:
        create(False)
        return 1

    def streamed() -> int:
        with create(True) as stream:
            return _count(stream)

    return plain, streamed


def _openai(url: str) -> tuple[Any, Call, Call]:
    import openai

    client = openai.OpenAI(base_url=url + "/v1", api_key="sk-bench", max_retries=0)

    def create(stream: bool) -> Any:
        return client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
            max_tokens=200,
            stream=stream,
        )

    return (client, *_stainless_calls(create))


def _anthropic(url: str) -> tuple[Any, Call, Call]:
    import anthropic

    client = anthropic.Anthropic(base_url=url, api_key="sk-ant-bench", max_retries=0)

    def create(stream: bool) -> Any:
        return client.messages.create(
            model="claude-sonnet-4-5",
            max_tokens=200,
            system=SYSTEM,
            messages=[{"role": "user", "content": QUESTION}],
            stream=stream,
        )

    return (client, *_stainless_calls(create))


def _gemini(url: str) -> tuple[Any, Call, Call]:
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="AIza-bench", http_options=types.HttpOptions(base_url=url))
    config = types.GenerateContentConfig(system_instruction=SYSTEM, max_output_tokens=200)

    def plain() -> int:
        client.models.generate_content(model="gemini-2.5-flash", contents=QUESTION, config=config)
        return 1

    def streamed() -> int:
        return _count(
            client.models.generate_content_stream(
                model="gemini-2.5-flash", contents=QUESTION, config=config
            )
        )

    return client, plain, streamed


# -- the measurement --------------------------------------------------------------------------
@dataclass(frozen=True)
class Plan:
    """``pairs`` pairs of blocks (one plain, one instrumented) of about ``block_s`` seconds.

    A full-mode block lasts a few of the writer's flush intervals (0.1 s), so that most of
    its batches run while the calls are being timed, as they would in an agent.
    """

    pairs: int
    block_s: float
    warmup: int = 5
    paused: bool = True  # the diagnostic block with the writer process stopped (full mode)


def plan(quick: bool) -> Plan:
    return Plan(pairs=4, block_s=0.12, paused=False) if quick else Plan(pairs=10, block_s=0.25)


def _set_mode(sdk: str, instrumented: bool) -> None:
    agentlog.uninstrument()
    if instrumented:
        agentlog.instrument(sdk)


def _block(call: Call, n: int) -> tuple[list[int], int]:
    """``n`` calls, each timed on its own (ns); and the chunks the last one iterated."""
    pc = time.perf_counter_ns
    out = [0] * n
    chunks = 0
    for i in range(n):
        t0 = pc()
        chunks = call()
        out[i] = pc() - t0
    return out, chunks


def calibrate(case: Case, call: Call, p: Plan) -> int:
    """Warm both modes up; return the calls per block (about ``p.block_s`` of plain calls)."""
    _set_mode(case.sdk, True)
    _block(call, p.warmup)
    _set_mode(case.sdk, False)
    times, _ = _block(call, p.warmup)
    return max(3, round(p.block_s * 1e9 / percentile(sorted(times), 50)))


def measure_case(case: Case, call: Call, n: int, p: Plan) -> dict[str, Any]:
    """One repetition of one case: ``p.pairs`` plain and as many instrumented blocks of ``n``.

    ``added_us`` is the median over pairs of the difference in mean call time between
    the pair's two blocks: neighbouring blocks share the host's state of the moment,
    and a mean (unlike a median) keeps the costs that hit one call in many (a garbage
    collection, the writer's batch taking the GIL). An instrumented block's time
    includes ``agentlog.flush()``: the writer's work on those calls that was still
    queued is charged to them rather than to the next block, at full price (an
    overstatement when it would have overlapped the agent's waits); ``writer_tail_us``
    is that part, per call.
    """
    calls: dict[bool, list[int]] = {False: [], True: []}
    means: dict[bool, list[float]] = {False: [], True: []}
    paused: list[float] = []
    tails: list[float] = []
    chunks = 0
    agentlog.flush(30)
    gc.collect()
    writers: list[int] = []
    for pair in range(p.pairs):
        # The order alternates (AB, BA, AB, ...), so a drift within a pair cancels out.
        for instrumented in (False, True) if pair % 2 == 0 else (True, False):
            _set_mode(case.sdk, instrumented)
            t0 = time.perf_counter_ns()
            times, chunks = _block(call, n)
            if instrumented:
                t1 = time.perf_counter_ns()
                agentlog.flush(30)
                tails.append((time.perf_counter_ns() - t1) / n / 1000)
            means[instrumented].append((time.perf_counter_ns() - t0) / n / 1000)
            calls[instrumented] += times
        # The writer process starts on the recorder's first drain with work, so look after a block.
        writers = writers or (writer_pids() if p.paused else [])
        if writers:
            paused.append(_paused_block(case, call, n, writers))
    agentlog.uninstrument()
    pairs = list(zip(means[False], means[True], strict=True))
    added = statistics.median(i - q for q, i in pairs)
    out: dict[str, Any] = {
        "plain_us": percentile(sorted(calls[False]), 50) / 1000,
        "instrumented_us": percentile(sorted(calls[True]), 50) / 1000,
        "added_us": added,
        "added_pct": statistics.median((i / q - 1) * 100 for q, i in pairs),
        "writer_tail_us": statistics.median(tails),
        "chunks": chunks,
        "instrumented_blocks": p.pairs + len(paused),
    }
    if paused:
        # Against the plain block of the same pair: what the agent's process itself pays.
        # (The last pairs: the writer process may have started during the first.)
        plain = means[False][-len(paused):]
        out["added_paused_us"] = statistics.median(x - q for x, q in zip(paused, plain, strict=True))
        out["added_paused_pct"] = statistics.median((x / q - 1) * 100 for x, q in zip(paused, plain, strict=True))
    if case.stream:
        out["added_per_chunk_us"] = added / chunks
    return out


def _paused_block(case: Case, call: Call, n: int, writers: list[int]) -> float:
    """Mean call time (µs) of an instrumented block with the writer process stopped.

    A diagnostic, not a target: what agentlog costs the agent's own process (its calling
    thread, the forwarder, the pickling) apart from the CPU its writer process takes from
    the machine, which here also runs the fake provider. The block's events wait in the
    host's queue and are written once the writer process continues (not timed).
    """
    _set_mode(case.sdk, True)
    for pid in writers:
        os.kill(pid, signal.SIGSTOP)
    try:
        t0 = time.perf_counter_ns()
        _block(call, n)
        mean = (time.perf_counter_ns() - t0) / n / 1000
    finally:
        for pid in writers:
            os.kill(pid, signal.SIGCONT)
    agentlog.flush(30)
    return mean


def _recorded(db: Path, expected: dict[str, int]) -> dict[str, Any]:
    """Did every instrumented call land in the store, ok and with its whole text?"""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT provider, count(*), sum(status = 'ok' AND response_text = ?) "
            "FROM llm_calls GROUP BY provider",
            (TEXT,),
        ).fetchall()
    finally:
        conn.close()
    found = {str(provider): (int(n), int(ok or 0)) for provider, n, ok in rows}
    return {
        "expected": expected,
        "found": {p: {"calls": n, "ok": ok} for p, (n, ok) in found.items()},
        "ok": all(found.get(p, (0, 0)) == (n, n) for p, n in expected.items()),
    }


#: The provider name agentlog records, per SDK name.
_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "google-genai": "google"}


def measure_all(
    calls: dict[str, Call], blocks: dict[str, int], p: Plan
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """One repetition of every case, into a fresh store; and what that store holds."""
    out: dict[str, dict[str, Any]] = {}
    expected: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="agentlog-bench-sdk-") as tmp:
        db = Path(tmp) / "bench.db"
        agentlog.configure(db)
        try:
            for case in CASES:
                if case.name in calls:
                    out[case.name] = measure_case(case, calls[case.name], blocks[case.name], p)
                    provider = _PROVIDER[case.sdk]
                    done = out[case.name]["instrumented_blocks"] * blocks[case.name]
                    expected[provider] = expected.get(provider, 0) + done
            flushed = agentlog.flush(60)
        finally:
            agentlog.uninstrument()
            agentlog.shutdown(timeout=60)
        recorded = _recorded(db, expected)
    recorded["ok"] = recorded["ok"] and flushed
    return out, recorded


def run_sdk(quick: bool, reps: int) -> dict[str, Any]:
    """Every case ``reps`` times; per figure, the median and min-max over repetitions."""
    p = plan(quick)
    runs: list[dict[str, dict[str, Any]]] = []
    checks: list[dict[str, Any]] = []
    with fake_provider() as url:
        calls, clients, skipped = make_calls(url)
        try:
            # Calibrated against a throw-away store, so each repetition's store holds
            # exactly the calls it timed.
            with tempfile.TemporaryDirectory(prefix="agentlog-bench-sdk-") as tmp:
                agentlog.configure(Path(tmp) / "warmup.db")
                try:
                    blocks = {
                        c.name: calibrate(c, calls[c.name], p) for c in CASES if c.name in calls
                    }
                finally:
                    agentlog.uninstrument()
                    agentlog.shutdown(timeout=60)
            for _ in range(reps):
                figures, recorded = measure_all(calls, blocks, p)
                runs.append(figures)
                checks.append(recorded)
        finally:
            for client in clients:
                _close(client)
    return {
        "text_chunks": len(CHUNKS),
        "pairs": p.pairs,
        "block_s": p.block_s,
        "server": "tests/fakes FakeServer in a child process; TCP_NODELAY; a stream sent in one write",
        "skipped": skipped,
        "all_recorded_ok": all(c["ok"] for c in checks),
        "recorded": checks,
        "cases": {name: _summary(name, blocks[name], [r[name] for r in runs]) for name in blocks},
    }


def _summary(name: str, block: int, per_rep: list[dict[str, Any]]) -> dict[str, Any]:
    case = next(c for c in CASES if c.name == name)
    out: dict[str, Any] = {
        "sdk": case.sdk,
        "stream": case.stream,
        "block_calls": block,
        "chunks": per_rep[0]["chunks"],
    }
    figures = ("plain_us", "instrumented_us", "added_us", "added_pct", "added_per_chunk_us",
               "added_paused_us", "added_paused_pct")
    for key in (*figures, "writer_tail_us"):
        if key in per_rep[0]:
            out[key] = spread([float(r[key]) for r in per_rep])
    return out


def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if callable(close):
        close()


if __name__ == "__main__":
    if sys.argv[1:] != ["--serve"]:
        raise SystemExit(
            "usage: python -m bench.sdk --serve  (the suite starts it: python -m bench)"
        )
    serve()
