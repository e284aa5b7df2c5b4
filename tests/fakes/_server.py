"""The shared HTTP machinery of the fake providers: scripted replies, recorded requests.

A test pushes :class:`Reply` objects; each incoming request takes the next one
(or the provider's default). Replies are JSON bodies or Server-Sent Events,
written with chunked transfer encoding so the client reads a real stream, and
they can fail the way real providers and networks fail: an HTTP error status
with the provider's error body, a delay (for timeouts), or a connection cut in
the middle of a stream.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeServer", "Received", "Reply"]


@dataclass
class Reply:
    """What the fake provider answers to one request."""

    status: int = 200
    json: Any = None
    #: SSE events as (event name or None, data): data is JSON-encoded unless it is a str.
    sse: list[tuple[str | None, Any]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (client timeouts)
    chunk_delay: float = 0.0  # seconds between SSE events
    cut_after: int | None = None  # drop the connection after this many SSE events

    def sse_bytes(self) -> Iterator[bytes]:
        for name, data in self.sse or ():
            text = data if isinstance(data, str) else json.dumps(data)
            lines = [f"event: {name}"] if name else []
            lines += [f"data: {line}" for line in text.split("\n")]
            yield ("\n".join(lines) + "\n\n").encode()


@dataclass
class Received:
    """One request as the fake provider saw it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 with a script of replies.

    ``default`` builds the reply for a request when the script is empty.
    Use as a context manager; ``url`` is the base URL to give the SDK client.
    """

    def __init__(self, default: Callable[[Received], Reply] | None = None) -> None:
        self.script: deque[Reply] = deque()
        self.received: list[Received] = []
        self.default = default
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else each small reply waits ~40 ms for a delayed ACK

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                server._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                # A client dropping a kept-alive connection is normal (the sync
                # SDKs do it after a stream's end): not worth a traceback.
                import sys

                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-provider", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def push(self, *replies: Reply) -> FakeServer:
        with self._lock:
            self.script.extend(replies)
        return self

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- serving ----------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("content-length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        path, _, query = h.path.partition("?")
        req = Received(h.command, path, query, {k.lower(): v for k, v in h.headers.items()}, body)
        with self._lock:
            self.received.append(req)
            reply = self.script.popleft() if self.script else None
        if reply is None:
            if self.default is None:
                reply = Reply(status=500, json={"error": {"message": "fake provider: no reply scripted"}})
            else:
                reply = self.default(req)
        if reply.delay:
            time.sleep(reply.delay)
        try:
            if reply.sse is not None:
                self._write_sse(h, reply)
            else:
                self._write_json(h, reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away (a timeout or an early close): fine

    def _write_json(self, h: BaseHTTPRequestHandler, reply: Reply) -> None:
        data = json.dumps(reply.json).encode()
        h.send_response(reply.status)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(data)))
        for k, v in reply.headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()

    def _write_sse(self, h: BaseHTTPRequestHandler, reply: Reply) -> None:
        h.send_response(reply.status)
        h.send_header("content-type", "text/event-stream")
        h.send_header("cache-control", "no-cache")
        h.send_header("transfer-encoding", "chunked")
        for k, v in reply.headers.items():
            h.send_header(k, v)
        h.end_headers()
        for i, chunk in enumerate(reply.sse_bytes()):
            if reply.cut_after is not None and i >= reply.cut_after:
                h.close_connection = True
                h.wfile.flush()
                # Cut mid-stream: no terminating chunk, the socket just closes.
                h.connection.shutdown(2)
                return
            h.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            h.wfile.flush()
            if reply.chunk_delay:
                time.sleep(reply.chunk_delay)
        h.wfile.write(b"0\r\n\r\n")
        h.wfile.flush()
