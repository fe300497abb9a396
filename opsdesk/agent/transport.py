"""Sending batches: gzip-compressed JSON over HTTPS (plain HTTP only to a loopback server)."""

from __future__ import annotations

import ipaddress
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

INGEST_PATH = "/api/v1/ingest/agent"


class InsecureServer(ValueError):
    pass


def check_server_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InsecureServer(f"server URL {url!r}: must be https://host[:port]")
    if parsed.scheme == "http":
        host = parsed.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise InsecureServer(f"server URL {url!r}: plain http is allowed only on loopback; use https")
    return url.rstrip("/")


@dataclass
class SendResult:
    ok: bool  # the server has the batch (stored now or before): remove it from the spool
    retry: bool  # keep it and try again later
    status: int
    detail: str = ""
    reply: dict[str, Any] | None = None


class Transport:
    def __init__(self, server: str, token: str, timeout: float = 15.0, cafile: str | None = None) -> None:
        self.server = check_server_url(server)
        self.url = self.server + INGEST_PATH
        self.token = token
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=cafile) if self.url.startswith("https") else None

    def fetch_monitors(self) -> list[dict[str, Any]] | None:
        """The checks assigned to this agent, or None if the server could not be asked."""
        request = urllib.request.Request(
            self.url + "/monitors", headers={"Authorization": f"Bearer {self.token}"}, method="GET"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as resp:
                data = json.loads(resp.read() or b"[]")
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, ValueError):
            return None
        return data if isinstance(data, list) else None

    def send(self, body: bytes) -> SendResult:
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as resp:
                reply = json.loads(resp.read() or b"{}")
                return SendResult(ok=True, retry=False, status=resp.status, reply=reply)
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:500].decode(errors="replace")
            # Auth problems, throttling and server errors may pass; a refused batch will not.
            retry = exc.code in (401, 403, 408, 429) or exc.code >= 500
            return SendResult(ok=False, retry=retry, status=exc.code, detail=detail)
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            return SendResult(ok=False, retry=True, status=0, detail=str(exc))
