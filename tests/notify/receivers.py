"""Loopback stand-ins for the services channels talk to: an HTTP receiver and an SMTP server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from tests.conftest import free_port


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


# respond(request) -> (status, JSON body text)
Responder = Callable[[Received], tuple[int, str]]


@dataclass
class HttpReceiver:
    """A threaded HTTP server on a free loopback port that records every request."""

    respond: Responder = field(default=lambda r: (200, '{"errcode": 0, "code": 0, "Code": "OK"}'))
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                req = Received(
                    method="POST",
                    path=parts.path,
                    query={k: v[0] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                    at=time.monotonic(),
                )
                with receiver.lock:
                    receiver.requests.append(req)
                if receiver.delay:
                    time.sleep(receiver.delay)
                status, text = receiver.respond(req)
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender died mid-request: the crash test does that on purpose

            def log_message(self, *args: object) -> None:
                pass

        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def keys(self) -> list[str]:
        with self.lock:
            return [r.headers.get("idempotency-key", "") for r in self.requests]


class MailBox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: object, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 OK"


def smtp_server() -> tuple[Controller, MailBox]:
    box = MailBox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    return controller, box
