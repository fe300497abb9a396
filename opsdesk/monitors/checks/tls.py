"""TLS certificate check: days to expiry, host name match and chain validity.

The first handshake verifies the chain and the host name against the system trust store (or
`ca_file`). When it fails, a second handshake without verification fetches the certificate so
days to expiry and the host name match are still reported for an untrusted or expired one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import ClassVar

from cryptography import x509
from pydantic import Field, field_validator

from opsdesk.monitors.checks import certs
from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, ms
from opsdesk.monitors.checks.registry import register
from opsdesk.monitors.checks.tcp import check_host, resolve


class TlsConfig(CheckConfig):
    host: str
    port: int = Field(443, ge=1, le=65535)
    server_name: str | None = Field(None, description="name to send (SNI) and to match; defaults to host")
    ca_file: str | None = Field(None, description="PEM file of trusted CAs instead of the system store")
    min_days_left: int = Field(14, ge=0, le=3650, description="down with tls_expiring below this many days")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host(value)

    @field_validator("server_name")
    @classmethod
    def _server_name(cls, value: str | None) -> str | None:
        return check_host(value) if value is not None else None


@dataclass(slots=True)
class CertFacts:
    not_before: dt.datetime
    not_after: dt.datetime
    subject: str
    names: list[str]
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address]

    @classmethod
    def from_der(cls, der: bytes) -> CertFacts:
        cert = x509.load_der_x509_certificate(der)
        names: list[str] = []
        ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            names = [str(n) for n in san.get_values_for_type(x509.DNSName)]
            ips = [
                ip
                for ip in san.get_values_for_type(x509.IPAddress)
                if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
            ]
        except x509.ExtensionNotFound:
            pass
        return cls(
            cert.not_valid_before_utc, cert.not_valid_after_utc, cert.subject.rfc4514_string(), names, ips
        )

    def days_left(self, now: dt.datetime) -> float:
        return round((self.not_after - now).total_seconds() / 86400.0, 3)

    def matches(self, hostname: str) -> bool:
        """RFC 6125 matching of subjectAltName: exact or a single leftmost wildcard label."""
        try:
            ip = ipaddress.ip_address(hostname)
        except ValueError:
            ip = None
        if ip is not None:
            return ip in self.ips
        host = hostname.rstrip(".").lower()
        for pattern in (n.rstrip(".").lower() for n in self.names):
            if pattern == host:
                return True
            if pattern.startswith("*.") and "." in host:
                head, _, rest = host.partition(".")
                if head and rest == pattern[2:] and rest.count(".") >= 1:
                    return True
        return False


@dataclass(slots=True)
class _Handshake:
    der: bytes
    tls_s: float


async def _connect(host: str, port: int) -> tuple[socket.socket, float]:
    """A connected non-blocking socket to the first address that accepts, and the connect time."""
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    for family, address in await resolve(host, port):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        start = time.perf_counter()
        try:
            await loop.sock_connect(sock, (address, port))
            return sock, time.perf_counter() - start
        except OSError as exc:
            sock.close()
            last = exc
        except BaseException:
            sock.close()
            raise
    raise last or OSError(errno.EHOSTUNREACH, f"no address for {host}")


async def _handshake(sock: socket.socket, ctx: ssl.SSLContext, server_name: str) -> _Handshake:
    start = time.perf_counter()
    try:
        _reader, writer = await asyncio.open_connection(sock=sock, ssl=ctx, server_hostname=server_name)
    except BaseException:
        sock.close()
        raise
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    finally:
        writer.close()
    if not der:
        raise ssl.SSLError("server sent no certificate")
    return _Handshake(der, time.perf_counter() - start)


@register("tls")
class TlsCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = TlsConfig

    def __init__(self) -> None:
        self._contexts: dict[tuple[bool, str | None], ssl.SSLContext] = {}

    def _context(self, verify: bool, ca_file: str | None) -> ssl.SSLContext:
        key = (verify, ca_file if verify else None)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = certs.client_context(verify, key[1])
            self._contexts[key] = ctx
        return ctx

    async def run(self, config: TlsConfig) -> CheckResult:
        start = time.perf_counter()
        server_name = config.server_name or config.host
        target = f"{config.host}:{config.port}"
        metrics: dict[str, float] = {}
        try:
            verifying = self._context(True, config.ca_file)
        except (OSError, ssl.SSLError) as exc:
            return CheckResult.down("tls_error", f"cannot load ca_file {config.ca_file!r}: {exc}")
        verify_error: tuple[str, str] | None = None
        try:
            async with asyncio.timeout(config.timeout_s):
                try:
                    sock, connect_s = await _connect(config.host, config.port)
                except socket.gaierror as exc:
                    return CheckResult.down("dns_failed", f"cannot resolve {config.host}: {exc.strerror}")
                metrics["connect_ms"] = ms(connect_s)
                try:
                    shake = await _handshake(sock, verifying, server_name)
                except ssl.SSLCertVerificationError as exc:
                    verify_error = certs.verify_error_code(exc)
                    sock, _ = await _connect(config.host, config.port)
                    shake = await _handshake(sock, self._context(False, None), server_name)
        except TimeoutError:
            metrics["response_ms"] = ms(time.perf_counter() - start)
            return CheckResult.down(
                "timeout", f"no TLS handshake with {target} within {config.timeout_s:g} s", metrics
            )
        except ssl.SSLError as exc:
            metrics["response_ms"] = ms(time.perf_counter() - start)
            return CheckResult.down(
                "tls_error", f"TLS handshake with {target} failed: {exc.reason or exc}", metrics
            )
        except OSError as exc:
            metrics["response_ms"] = ms(time.perf_counter() - start)
            if exc.errno == errno.ECONNREFUSED:
                return CheckResult.down("connect_refused", f"connection to {target} refused", metrics)
            return CheckResult.down(
                "connect_error", f"cannot connect to {target}: {exc.strerror or exc}", metrics
            )
        metrics["tls_ms"] = ms(shake.tls_s)
        metrics["response_ms"] = ms(time.perf_counter() - start)
        return judge(config, server_name, CertFacts.from_der(shake.der), verify_error, metrics)


def judge(
    config: TlsConfig,
    server_name: str,
    facts: CertFacts,
    verify_error: tuple[str, str] | None,
    metrics: dict[str, float],
    now: dt.datetime | None = None,
) -> CheckResult:
    """The state from the certificate facts and the verification outcome; the gravest problem wins."""
    now = now or dt.datetime.now(dt.UTC)
    days_left = facts.days_left(now)
    hostname_ok = facts.matches(server_name)
    chain_ok = verify_error is None or verify_error[0] == "tls_hostname"
    metrics.update(
        cert_days_left=days_left,
        cert_not_after=facts.not_after.timestamp(),
        hostname_match=1.0 if hostname_ok else 0.0,
        chain_valid=1.0 if chain_ok else 0.0,
    )
    problems: list[tuple[str, str]] = []
    if days_left < 0:
        problems.append(("tls_expired", f"certificate expired {-days_left:.1f} days ago"))
    elif facts.not_before > now:
        problems.append(("tls_not_yet_valid", f"certificate is not valid before {facts.not_before:%Y-%m-%d}"))
    if verify_error is not None and verify_error[0] not in (
        "tls_expired",
        "tls_not_yet_valid",
        "tls_hostname",
    ):
        problems.append(verify_error)
    if not hostname_ok or (verify_error is not None and verify_error[0] == "tls_hostname"):
        named = ", ".join([*facts.names, *map(str, facts.ips)]) or facts.subject
        problems.append(("tls_hostname", f"certificate does not match {server_name!r} (it names {named})"))
    if not problems and days_left < config.min_days_left:
        problems.append(("tls_expiring", f"certificate expires in {days_left:.1f} days"))
    if problems:
        return CheckResult.down(problems[0][0], "; ".join(msg for _, msg in problems), metrics)
    return CheckResult.up(f"certificate valid for {days_left:.1f} more days", metrics)
