"""HTTP(S) check on aiohttp: status, keyword, redirects, and timings split into phases.

Every run opens its own connection (no keep-alive between runs), so DNS, connect and TLS are
measured each time. Phase times come from aiohttp's trace signals (DNS, connection), from the TLS
context noting when the handshake starts, and from the moment the response headers arrive.
With redirects followed, dns_ms, connect_ms and tls_ms add up the hops; ttfb_ms and response_ms
run from the start of the check to the final response's headers and to the end of its body.
"""

from __future__ import annotations

import asyncio
import errno
import re
import ssl
import time
from contextvars import ContextVar
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar, Literal

import aiohttp
from pydantic import Field, ValidationInfo, field_validator

from opsdesk.monitors.checks import certs
from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, http_url, ms
from opsdesk.monitors.checks.registry import register

USER_AGENT = "opsdesk-probe/1"
_STATUS_RANGE = re.compile(r"^([1-5]\d\d)\s*-\s*([1-5]\d\d)$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def parse_status_ranges(items: list[str]) -> list[tuple[int, int]]:
    """["200", "301-302"] -> [(200, 200), (301, 302)]; ValueError naming the bad item."""
    out: list[tuple[int, int]] = []
    for item in items:
        text = str(item).strip()
        if text.isdigit() and 100 <= int(text) <= 599:
            out.append((int(text), int(text)))
            continue
        match = _STATUS_RANGE.match(text)
        if match and int(match[1]) <= int(match[2]):
            out.append((int(match[1]), int(match[2])))
            continue
        raise ValueError(f"{text!r} is not a status code (100-599) or a range like 200-299")
    return out


class HttpConfig(CheckConfig):
    url: str
    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    body: str | None = None
    expected_status: list[str] = Field(default_factory=lambda: ["200-299"], min_length=1)
    keyword_mode: Literal["present", "absent"] = "present"
    keyword_regex: bool = False
    keyword_case_sensitive: bool = True
    keyword: str | None = Field(None, min_length=1)
    follow_redirects: bool = True
    max_redirects: int = Field(10, ge=0, le=30)
    verify_tls: bool = True
    ca_file: str | None = None
    max_body_bytes: int = Field(1_048_576, ge=1024, le=16_777_216)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, val in value.items():
            if not _TOKEN.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
            if "\r" in val or "\n" in val:
                raise ValueError(f"value of header {name!r} must not contain line breaks")
        return value

    @field_validator("expected_status", mode="before")
    @classmethod
    def _expected_status(cls, value: Any) -> Any:
        if isinstance(value, (int, str)):
            value = [value]
        if isinstance(value, list):
            value = [str(v) for v in value]
            parse_status_ranges(value)
        return value

    @field_validator("keyword")
    @classmethod
    def _keyword(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if info.data.get("keyword_regex"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        if info.data.get("method") == "HEAD":
            raise ValueError("a HEAD request has no body to search; use GET")
        return value

    def status_ranges(self) -> list[tuple[int, int]]:
        return parse_status_ranges(self.expected_status)

    def keyword_pattern(self) -> re.Pattern[str] | None:
        if self.keyword is None:
            return None
        flags = 0 if self.keyword_case_sensitive else re.IGNORECASE
        return re.compile(self.keyword if self.keyword_regex else re.escape(self.keyword), flags)


# --- timings --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Timings:
    """Phase times of one check, in perf_counter seconds, summed over redirect hops."""

    start: float
    dns: float = 0.0
    connect: float = 0.0
    tls: float = 0.0
    headers_at: float | None = None
    _dns_start: float | None = None
    _dns_end: float | None = None
    _conn_start: float | None = None
    _tls_start: float | None = None

    def interrupted(self, now: float) -> None:
        """Account for a connection that failed or timed out before it was made."""
        if self._conn_start is None:
            return
        tcp_from = max(self._conn_start, self._dns_end or self._conn_start)
        if self._tls_start is not None and self._tls_start >= tcp_from:
            self.connect += self._tls_start - tcp_from
            self.tls += now - self._tls_start
        elif self._dns_start is None:
            self.connect += now - tcp_from
        else:
            self.dns += now - self._dns_start
        self._conn_start = self._tls_start = self._dns_end = self._dns_start = None

    def metrics(self, end: float | None = None) -> dict[str, float]:
        out = {"dns_ms": ms(self.dns), "connect_ms": ms(self.connect), "tls_ms": ms(self.tls)}
        if self.headers_at is not None:
            out["ttfb_ms"] = ms(self.headers_at - self.start)
        if end is not None:
            out["response_ms"] = ms(end - self.start)
        return out


_current: ContextVar[Timings | None] = ContextVar("opsdesk_http_timings", default=None)


class _TimedTLSContext(ssl.SSLContext):
    """Notes the start of each TLS handshake (asyncio wraps the BIO once the TCP connection is up)."""

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        timings = _current.get()
        if timings is not None:
            timings._tls_start = time.perf_counter()
        return super().wrap_bio(*args, **kwargs)


def _ctx(params: SimpleNamespace) -> Timings | None:
    timings = params.trace_request_ctx
    return timings if isinstance(timings, Timings) else None


async def _dns_start(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
    if (t := _ctx(ctx)) is not None:
        t._dns_start = time.perf_counter()


async def _dns_end(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
    if (t := _ctx(ctx)) is not None and t._dns_start is not None:
        now = time.perf_counter()
        t.dns += now - t._dns_start
        t._dns_end = now
        t._dns_start = None


async def _conn_start(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
    if (t := _ctx(ctx)) is not None:
        t._conn_start = time.perf_counter()
        t._dns_end = None
        t._tls_start = None


async def _conn_end(_s: aiohttp.ClientSession, ctx: SimpleNamespace, _p: Any) -> None:
    if (t := _ctx(ctx)) is None or t._conn_start is None:
        return
    now = time.perf_counter()
    # The connection span holds name resolution, then the TCP connect, then the TLS handshake.
    tcp_from = max(t._conn_start, t._dns_end or t._conn_start)
    tcp_to = t._tls_start if t._tls_start is not None and t._tls_start >= tcp_from else now
    t.connect += tcp_to - tcp_from
    if t._tls_start is not None and t._tls_start >= tcp_from:
        t.tls += now - t._tls_start
    t._conn_start = t._tls_start = t._dns_end = None


def _trace_config() -> aiohttp.TraceConfig:
    tc = aiohttp.TraceConfig()
    tc.on_dns_resolvehost_start.append(_dns_start)
    tc.on_dns_resolvehost_end.append(_dns_end)
    tc.on_connection_create_start.append(_conn_start)
    tc.on_connection_create_end.append(_conn_end)
    return tc


# --- the check ------------------------------------------------------------------------------------


@register("http")
class HttpCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = HttpConfig

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._contexts: dict[tuple[bool, str | None], ssl.SSLContext] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            connector = aiohttp.TCPConnector(limit=0, force_close=True, use_dns_cache=False)
            self._session = aiohttp.ClientSession(
                connector=connector,
                trace_configs=[_trace_config()],
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": USER_AGENT},
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=False,
                auto_decompress=True,
            )
            self._loop = loop
        return self._session

    def _ssl(self, config: HttpConfig) -> ssl.SSLContext:
        key = (config.verify_tls, config.ca_file if config.verify_tls else None)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = certs.client_context(key[0], key[1], cls=_TimedTLSContext)
            self._contexts[key] = ctx
        return ctx

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()

    async def run(self, config: HttpConfig) -> CheckResult:
        timings = Timings(start=time.perf_counter())
        token = _current.set(timings)
        try:
            try:
                ctx = self._ssl(config) if config.url.startswith("https") else None
            except (OSError, ssl.SSLError) as exc:
                return CheckResult.down("tls_error", f"cannot load ca_file {config.ca_file!r}: {exc}")
            try:
                async with asyncio.timeout(config.timeout_s):
                    return await self._request(config, ctx, timings)
            except TimeoutError:
                now = time.perf_counter()
                phase = _phase(timings)
                timings.interrupted(now)
                return CheckResult.down(
                    "timeout",
                    f"timed out after {config.timeout_s:g} s waiting for {phase}",
                    timings.metrics(now),
                )
            except aiohttp.ClientError as exc:
                now = time.perf_counter()
                timings.interrupted(now)
                code, message = _client_error(exc)
                return CheckResult.down(code, message, timings.metrics(now))
        finally:
            _current.reset(token)

    async def _request(self, config: HttpConfig, ctx: ssl.SSLContext | None, timings: Timings) -> CheckResult:
        session = self._get_session()
        async with session.request(
            config.method,
            config.url,
            headers=config.headers,
            data=config.body.encode() if config.body is not None else None,
            allow_redirects=config.follow_redirects,
            max_redirects=config.max_redirects,
            ssl=ctx if ctx is not None else True,
            trace_request_ctx=timings,
        ) as resp:
            timings.headers_at = time.perf_counter()
            body = b""
            if config.method != "HEAD":
                body = await _read_limited(resp, config.max_body_bytes)
            end = time.perf_counter()
            charset = resp.charset or "utf-8"
            status = resp.status
            redirects = len(resp.history)
        metrics = timings.metrics(end)
        metrics.update(status_code=float(status), redirects=float(redirects), body_bytes=float(len(body)))
        return evaluate(config, status, body, charset, metrics)


def _phase(timings: Timings) -> str:
    if timings.headers_at is not None:
        return "the response body"
    if timings._dns_start is not None:
        return "the name to resolve"
    if timings._tls_start is not None:
        return "the TLS handshake"
    if timings._conn_start is not None:
        return "the connection"
    return "response headers"


async def _read_limited(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await resp.content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def evaluate(
    config: HttpConfig, status: int, body: bytes, charset: str, metrics: dict[str, float]
) -> CheckResult:
    """Judge a received response against the definition (status first, then the keyword)."""
    if not any(lo <= status <= hi for lo, hi in config.status_ranges()):
        return CheckResult.down(
            "status_mismatch",
            f"status {status}, expected {', '.join(config.expected_status)}",
            metrics,
        )
    pattern = config.keyword_pattern()
    if pattern is not None:
        try:
            text = body.decode(charset, errors="replace")
        except LookupError:
            text = body.decode("utf-8", errors="replace")
        found = pattern.search(text) is not None
        if config.keyword_mode == "present" and not found:
            return CheckResult.down("keyword_missing", f"keyword {config.keyword!r} not found", metrics)
        if config.keyword_mode == "absent" and found:
            return CheckResult.down("keyword_found", f"keyword {config.keyword!r} found", metrics)
    return CheckResult.up(f"status {status} in {metrics.get('response_ms', 0):.0f} ms", metrics)


def _client_error(exc: aiohttp.ClientError) -> tuple[str, str]:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return certs.verify_error_code(exc.certificate_error)
    if isinstance(exc, aiohttp.ClientSSLError):
        return "tls_error", f"TLS handshake failed: {exc.os_error}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns_failed", f"cannot resolve {exc.host}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        err = exc.os_error
        if err.errno == errno.ECONNREFUSED or isinstance(err, ConnectionRefusedError):
            return "connect_refused", f"connection to {exc.host}:{exc.port} refused"
        return "connect_error", f"cannot connect to {exc.host}:{exc.port}: {err.strerror or err}"
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "too_many_redirects", f"more than {len(exc.history)} redirects"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid_url", f"invalid URL: {exc}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "protocol_error", "server closed the connection without a response"
    return "protocol_error", f"{type(exc).__name__}: {exc}"
