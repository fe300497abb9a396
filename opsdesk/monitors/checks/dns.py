"""DNS check with dnspython: resolve a record and compare the answer with the expected values.

`match` "equal" wants the answer and the expected values to be the same set; "contains" wants
every expected value in the answer. With no expected values any answer is up. MX values may be
given as "10 mail.example.com" (preference and host) or "mail.example.com" (host only).
"""

from __future__ import annotations

import ipaddress
import re
import time
from typing import Any, ClassVar, Literal

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
from pydantic import Field, ValidationInfo, field_validator

from opsdesk.monitors.checks.base import Check, CheckConfig, CheckResult, ms
from opsdesk.monitors.checks.registry import register

RecordType = Literal["A", "AAAA", "CNAME", "MX", "TXT", "NS"]
_MX = re.compile(r"^(\d{1,5})\s+(\S+)$")


def _hostname(value: str) -> str:
    return value.strip().rstrip(".").lower()


def normalize(record_type: str, value: str) -> str:
    """The comparable form of an expected value; ValueError when it cannot be one of this type."""
    text = value.strip()
    if record_type == "A":
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 address") from None
    if record_type == "AAAA":
        try:
            return str(ipaddress.IPv6Address(text))
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv6 address") from None
    if record_type == "TXT":
        return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text
    if record_type == "MX":
        match = _MX.match(text)
        if match:
            return f"{int(match[1])} {_name(match[2])}"
        return _name(text)
    return _name(text)


def _name(value: str) -> str:
    try:
        dns.name.from_text(value)
    except dns.exception.DNSException as exc:
        raise ValueError(f"{value!r} is not a domain name: {exc}") from None
    if not value.strip() or any(ch.isspace() for ch in value.strip()):
        raise ValueError(f"{value!r} is not a domain name")
    return _hostname(value)


def answer_values(record_type: str, rdata: Any) -> str:
    """The comparable form of one answer record."""
    if record_type in ("A", "AAAA"):
        return str(ipaddress.ip_address(rdata.address))
    if record_type == "MX":
        return f"{int(rdata.preference)} {_hostname(rdata.exchange.to_text())}"
    if record_type == "TXT":
        return b"".join(rdata.strings).decode("utf-8", errors="replace")
    return _hostname(rdata.target.to_text())


def matches(record_type: str, expected: str, actual: str) -> bool:
    if record_type == "MX" and not _MX.match(expected):
        return actual.split(" ", 1)[1] == expected
    return actual == expected


class DnsConfig(CheckConfig):
    name: str
    record_type: RecordType = "A"
    match: Literal["equal", "contains"] = "equal"
    expected: list[str] = Field(default_factory=list)
    nameserver: str | None = Field(None, description="IP address of the server to ask; default: the system's")
    port: int = Field(53, ge=1, le=65535)

    @field_validator("record_type", mode="before")
    @classmethod
    def _record_type(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not value or value.startswith(".") or ".." in value or any(ch.isspace() for ch in value):
            raise ValueError(f"{value!r} is not a domain name")
        _name(value)
        return value

    @field_validator("expected")
    @classmethod
    def _expected(cls, value: list[str], info: ValidationInfo) -> list[str]:
        record_type = info.data.get("record_type")
        if record_type is None:
            return value
        return [normalize(record_type, item) for item in value]

    @field_validator("nameserver")
    @classmethod
    def _nameserver(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value.strip().strip("[]")))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None


@register("dns")
class DnsCheck(Check):
    config_model: ClassVar[type[CheckConfig]] = DnsConfig

    def __init__(self) -> None:
        self._system: dns.asyncresolver.Resolver | None = None

    def _resolver(self, config: DnsConfig) -> dns.asyncresolver.Resolver:
        if config.nameserver is None:
            if self._system is None:
                self._system = dns.asyncresolver.Resolver(configure=True)
            return self._system
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [config.nameserver]
        resolver.port = config.port
        return resolver

    async def run(self, config: DnsConfig) -> CheckResult:
        start = time.perf_counter()
        what = f"{config.record_type} {config.name}"
        try:
            resolver = self._resolver(config)
            answer = await resolver.resolve(
                config.name,
                config.record_type,
                lifetime=config.timeout_s,
                search=False,
                raise_on_no_answer=True,
            )
        except dns.resolver.NXDOMAIN:
            return self._down("dns_nxdomain", f"{config.name} does not exist", start)
        except dns.resolver.NoAnswer:
            return self._down("dns_no_answer", f"no {what} record", start)
        except dns.exception.Timeout:
            return self._down("timeout", f"no DNS answer for {what} within {config.timeout_s:g} s", start)
        except dns.resolver.NoNameservers as exc:
            return self._down("dns_error", f"no server answered {what}: {exc}", start)
        except dns.exception.DNSException as exc:
            return self._down("dns_error", f"lookup of {what} failed: {exc}", start)
        metrics = {"response_ms": ms(time.perf_counter() - start), "records": float(len(answer))}
        actual = sorted({answer_values(config.record_type, rdata) for rdata in answer})
        shown = ", ".join(actual)
        missing = [e for e in config.expected if not any(matches(config.record_type, e, a) for a in actual)]
        extra = [a for a in actual if not any(matches(config.record_type, e, a) for e in config.expected)]
        if config.expected and (missing or (config.match == "equal" and extra)):
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if config.match == "equal" and extra:
                parts.append(f"unexpected {', '.join(extra)}")
            return CheckResult.down("dns_mismatch", f"{what} is {shown}: {'; '.join(parts)}", metrics)
        return CheckResult.up(f"{what} is {shown}", metrics)

    @staticmethod
    def _down(code: str, message: str, start: float) -> CheckResult:
        return CheckResult.down(code, message, {"response_ms": ms(time.perf_counter() - start)})
