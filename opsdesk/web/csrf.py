"""CSRF protection for every state-changing request made with a session cookie.

Forms carry a hidden ``csrf_token``; scripts send it as ``X-CSRF-Token``. Requests
authenticated by a bearer token carry no cookie and need none. Checked here, in one place,
so that no form can forget it.
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
SESSION_KEY = "csrf"
FORM_FIELD = "csrf_token"
HEADER = "x-csrf-token"
MAX_FORM_BYTES = 5 * 1024 * 1024


def token_for(session: dict[str, Any]) -> str:
    token = session.get(SESSION_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return str(token)


class CSRFMiddleware:
    """Runs inside SessionMiddleware, so ``scope["session"]`` is the verified cookie content."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if headers.get("authorization", "").lower().startswith("bearer "):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM_BYTES:
                await _refuse(scope, send, 413, "request body too large")
                return
        expected = scope.get("session", {}).get(SESSION_KEY)
        given = headers.get(HEADER) or await _form_token(scope, body)
        if not expected or not given or not hmac.compare_digest(str(expected), str(given)):
            await _refuse(scope, send, 403, "CSRF token missing or invalid; reload the page and try again")
            return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _form_token(scope: Scope, body: bytes) -> str | None:
    content_type = dict(scope["headers"]).get(b"content-type", b"").decode()
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None

    async def once() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(scope, once).form()
    except Exception:
        return None
    value = form.get(FORM_FIELD)
    return value if isinstance(value, str) else None


async def _refuse(scope: Scope, send: Send, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
