"""What the middleware and database checks share: the server's address and login, and the
sorting of connection failures into result codes."""

from __future__ import annotations

import base64
import errno
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from pydantic import Field, SecretStr, field_validator

from opsdesk.monitors.checks.base import CheckConfig, CheckResult, http_url
from opsdesk.monitors.checks.http import USER_AGENT
from opsdesk.monitors.checks.tcp import check_host


class ServerConfig(CheckConfig):
    """A server reached by host and port, with an optional login (the password is stored encrypted)."""

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    user: str | None = Field(None, max_length=128)
    password: SecretStr | None = None

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host(value)

    @property
    def target(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def secret(self) -> str | None:
        return self.password.get_secret_value() if self.password is not None else None


def refused(exc: BaseException) -> bool:
    """Whether the error (or one it wraps) is a refused connection: nothing listens there."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if (
            isinstance(current, ConnectionRefusedError)
            or getattr(current, "errno", None) == errno.ECONNREFUSED
        ):
            return True
        if "connection refused" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def unreachable(target: str, exc: BaseException) -> CheckResult:
    """The critical result for a server that cannot be reached or that refused the login."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if refused(exc):
        return CheckResult.down("connect_refused", f"connection to {target} refused")
    if isinstance(exc, TimeoutError):
        return CheckResult.down("timeout", f"no answer from {target} in time")
    return CheckResult.down("connect_error", f"cannot connect to {target}: {text}")


class StatusPageConfig(CheckConfig):
    """A status page served over HTTP(S), optionally behind basic authentication."""

    url: str
    user: str | None = Field(None, max_length=128)
    password: SecretStr | None = None
    verify_tls: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    text: str
    elapsed_s: float


async def fetch_page(config: StatusPageConfig, url: str | None = None) -> Page | CheckResult:
    """GET the status page; a critical CheckResult when it cannot be fetched or is not 200."""
    target = url or config.url
    headers = {"User-Agent": USER_AGENT}
    if config.user:
        password = config.password.get_secret_value() if config.password else ""
        login = base64.b64encode(f"{config.user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {login}"
    timeout = aiohttp.ClientTimeout(total=config.timeout_s)
    connector = aiohttp.TCPConnector(ssl=config.verify_tls, force_close=True)
    start = time.perf_counter()
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout, connector=connector) as session,
            session.get(target, headers=headers, allow_redirects=False) as resp,
        ):
            text = await resp.text(errors="replace")
            status = resp.status
    except TimeoutError:
        return CheckResult.down("timeout", f"no answer from {target} within {config.timeout_s:g} s")
    except aiohttp.ClientConnectorError as exc:
        return unreachable(_where(target), exc.os_error)
    except aiohttp.ClientError as exc:
        return CheckResult.down("connect_error", f"cannot fetch {target}: {exc}")
    elapsed = time.perf_counter() - start
    if status in (401, 403):
        return CheckResult.down("auth_failed", f"{target} answered {status}: user or password refused")
    if status != 200:
        return CheckResult.down("status_mismatch", f"{target} answered {status}, not 200")
    return Page(status, text, elapsed)


def _where(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc or url
