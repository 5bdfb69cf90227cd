"""A scripted OpenAI-compatible server (stdlib ``http.server`` in a thread) for failure injection.

Each POST to ``/v1/chat/completions`` takes the next :class:`Reply` from the script (the last one
repeats); the server records every request body and how many requests were in flight at once.
``GET /v1/models`` lists :attr:`FakeServer.models`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GATHER_TIMEOUT = 5.0


@dataclass
class Reply:
    """What the server does for one request: wait until ``gather`` requests are in flight (at most
    ``GATHER_TIMEOUT`` s: a client that sends one at a time is seen, not hung), then ``delay`` s,
    then send ``status``, ``headers`` and ``body`` (a dict is sent as JSON; a str as is)."""

    status: int = 200
    body: dict | str | None = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    gather: int = 0


def completion(content, *, refusal=None, logprobs=None) -> dict:
    """A chat-completion body whose only choice says ``content`` (may be ``None``)."""
    message = {"role": "assistant", "content": content}
    if refusal is not None:
        message["refusal"] = refusal
    choice = {"index": 0, "finish_reason": "stop", "message": message}
    if logprobs is not None:
        choice["logprobs"] = logprobs
    return {"id": "fake", "object": "chat.completion", "created": 0, "model": "fake-model", "choices": [choice]}


def echo(body: dict) -> dict:
    """A completion answering with the last user turn's text (so answers tell requests apart)."""
    content = body["messages"][-1]["content"]
    text = content if isinstance(content, str) else " ".join(p["text"] for p in content if p["type"] == "text")
    return completion(f"echo: {text}")


class FakeServer:
    """Run with ``with FakeServer([Reply(...), ...]) as server:``; ``server.url`` ends in ``/v1``.
    A reply whose ``body`` is ``"ECHO"`` answers with :func:`echo`."""

    def __init__(self, script: list[Reply] | None = None, models: tuple[str, ...] = ("fake-model",)):
        self.script = list(script or [Reply(body="ECHO")])
        self.models = models
        self.requests: list[dict] = []
        self.times: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # notified whenever a request arrives
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def _next(self, body: dict) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.times.append(time.monotonic())
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._arrived.notify_all()
            reply = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            self._arrived.wait_for(lambda: self.max_in_flight >= reply.gather, timeout=GATHER_TIMEOUT)
            return reply

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body, headers: dict | None = None):
                data = (json.dumps(body) if isinstance(body, dict) else str(body or "")).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, str(value))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                    pass

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in server.models]})
                else:
                    self._send(404, {"error": {"message": "no such route"}})

            def do_POST(self):
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"detail": "Not Found"})
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                reply = server._next(body)
                try:
                    time.sleep(reply.delay)
                    self._send(reply.status, echo(body) if reply.body == "ECHO" else reply.body, reply.headers)
                finally:
                    with server._lock:
                        server.in_flight -= 1

        return Handler

    def __enter__(self) -> FakeServer:
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def free_port() -> int:
    """A port nothing listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
