"""TCP port check: resolve, connect, report the connect time; refused and timeout are codes of their own."""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from typing import ClassVar

from pydantic import Field, field_validator

from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, ms
from opsdesk.monitors.checks.registry import register

_HOST_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]%")


def check_host(value: str) -> str:
    """A host name or IP literal (brackets around IPv6 are removed)."""
    host = value.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError("host must not be empty")
    if len(host) > 253 or not set(host) <= _HOST_CHARS or "://" in value:
        raise ValueError(f"{value!r} is not a host name or IP address")
    return host


async def resolve(host: str, port: int | None, family: int = socket.AF_UNSPEC) -> list[tuple[int, str]]:
    """(family, address) pairs for `host`, in the resolver's order, without duplicates."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
    out: list[tuple[int, str]] = []
    for fam, _type, _proto, _name, addr in infos:
        item = (int(fam), str(addr[0]))
        if item not in out:
            out.append(item)
    return out


class TcpConfig(CheckConfig):
    host: str
    port: int = Field(ge=1, le=65535)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return check_host(value)


@register("tcp")
class TcpCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = TcpConfig

    async def run(self, config: TcpConfig) -> CheckResult:
        start = time.perf_counter()
        metrics: dict[str, float] = {}
        target = f"{config.host}:{config.port}"
        try:
            async with asyncio.timeout(config.timeout_s):
                try:
                    addrs = await resolve(config.host, config.port)
                except socket.gaierror as exc:
                    return CheckResult.down("dns_failed", f"cannot resolve {config.host}: {exc.strerror}")
                resolved = time.perf_counter()
                metrics["dns_ms"] = ms(resolved - start)
                writer = await _connect(addrs, config.port)
                connected = time.perf_counter()
                writer.close()
        except TimeoutError:
            metrics["response_ms"] = ms(time.perf_counter() - start)
            return CheckResult.down(
                "timeout", f"no connection to {target} within {config.timeout_s:g} s", metrics
            )
        except OSError as exc:
            metrics["response_ms"] = ms(time.perf_counter() - start)
            if exc.errno == errno.ECONNREFUSED:
                return CheckResult.down("connect_refused", f"connection to {target} refused", metrics)
            return CheckResult.down(
                "connect_error", f"cannot connect to {target}: {exc.strerror or exc}", metrics
            )
        metrics["connect_ms"] = ms(connected - resolved)
        metrics["response_ms"] = ms(connected - start)
        return CheckResult.up(
            f"port {config.port} open, connected in {metrics['connect_ms']:.1f} ms", metrics
        )


async def _connect(addrs: list[tuple[int, str]], port: int) -> asyncio.StreamWriter:
    """Connect to the first address that accepts; the last error if none does."""
    last: OSError | None = None
    for _family, address in addrs:
        try:
            _reader, writer = await asyncio.open_connection(address, port)
            return writer
        except OSError as exc:
            last = exc
    raise last or OSError(errno.EHOSTUNREACH, "no address to connect to")
