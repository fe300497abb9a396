"""Agent batches taken in front of the middleware stack.

Agents post a batch per host every interval: it is the server's busiest request by far. Passing
each through session, CSRF and body-limit middleware, then FastAPI's router, route matching and
dependency machinery cost about as much CPU as validating the batch, and none of it applies: an
agent sends no cookie, authenticates with its token and is answered in JSON. So a well-formed agent
request (POST, bearer token, declared length within the ingest limit) is answered here by the same
code as the route (api.take_batch), and counted in the same request figures. Anything else goes
down the ordinary stack to the route, whose answers are the reference.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from fastapi import HTTPException
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsdesk.ingest.api import take_batch

if TYPE_CHECKING:
    from opsdesk.web.observability import Figures

PATH = "/api/v1/ingest/agent"


class IngestFastPath:
    def __init__(self, app: ASGIApp, state: State, figures: Figures) -> None:
        self.app, self.state, self.figures = app, state, figures

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        auth = encoding = length = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value
            elif name == b"content-encoding":
                encoding = value
            elif name == b"content-length":
                length = value
        limit = self.state.runtime.settings.ingest.max_body_bytes
        if auth[:7].lower() != b"bearer " or not length.isdigit() or int(length) > limit:
            await self.app(scope, receive, send)  # unusual: the route answers it
            return
        start = time.perf_counter()
        body = await _read_body(receive)
        if body is None:
            return  # the client went away
        status = 500
        try:
            try:
                token, coding = auth.decode("latin-1"), encoding.decode("latin-1")
                payload, headers = await take_batch(self.state, token, body, coding), []
                status = 200
            except HTTPException as exc:
                # As the app's handler answers an API path: {"detail": ...} and the exception's headers.
                status = exc.status_code
                payload = json.dumps(
                    {"detail": exc.detail}, ensure_ascii=False, separators=(",", ":")
                ).encode()
                headers = [
                    (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (exc.headers or {}).items()
                ]
            await _answer(send, status, payload, headers)
        finally:
            self.figures.requests.labels("POST", PATH, str(status)).inc()
            self.figures.latency.labels(PATH).observe(time.perf_counter() - start)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(send: Send, status: int, payload: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-length", str(len(payload)).encode()),
                (b"content-type", b"application/json"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
