"""The DNS check against a DNS server on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from opsdesk.monitors.checks import CheckResult
from tests.monitors.conftest import DnsServer, run_check


def dns_check(server: DnsServer, **definition: Any) -> CheckResult:
    return run_check("dns", nameserver="127.0.0.1", port=server.port, timeout_s=2, **definition)


@pytest.mark.parametrize(
    ("name", "record_type", "expected", "match"),
    [
        ("www.test.opsdesk", "A", ["192.0.2.11", "192.0.2.10"], "equal"),
        ("www.test.opsdesk", "A", ["192.0.2.10"], "contains"),
        ("www.test.opsdesk", "AAAA", ["2001:DB8:0::10"], "equal"),
        ("alias.test.opsdesk", "CNAME", ["WWW.test.opsdesk."], "equal"),
        ("test.opsdesk", "MX", ["10 mail.test.opsdesk", "20 backup.test.opsdesk"], "equal"),
        ("test.opsdesk", "MX", ["mail.test.opsdesk"], "contains"),
        ("test.opsdesk", "TXT", ["v=spf1 -all"], "equal"),
        ("test.opsdesk", "NS", ["ns1.test.opsdesk"], "equal"),
        ("www.test.opsdesk", "A", [], "equal"),
    ],
)
def test_record_matches(
    dns_server: DnsServer, name: str, record_type: str, expected: list[str], match: str
) -> None:
    result = dns_check(dns_server, name=name, record_type=record_type, expected=expected, match=match)
    assert (result.ok, result.code) == (True, "ok"), result.message
    assert result.metrics["records"] >= 1
    assert result.metrics["response_ms"] > 0


def test_mismatch(dns_server: DnsServer) -> None:
    result = dns_check(dns_server, name="www.test.opsdesk", expected=["192.0.2.99"])
    assert (result.state, result.code) == ("down", "dns_mismatch")
    assert "192.0.2.99" in result.message and "192.0.2.10" in result.message


def test_equal_needs_every_record(dns_server: DnsServer) -> None:
    result = dns_check(dns_server, name="www.test.opsdesk", expected=["192.0.2.10"], match="equal")
    assert result.code == "dns_mismatch"
    assert "unexpected 192.0.2.11" in result.message


def test_mx_preference_compared_when_given(dns_server: DnsServer) -> None:
    result = dns_check(
        dns_server, name="test.opsdesk", record_type="MX", expected=["30 mail.test.opsdesk"], match="contains"
    )
    assert result.code == "dns_mismatch"


def test_nxdomain_and_no_answer(dns_server: DnsServer) -> None:
    assert dns_check(dns_server, name="nope.test.opsdesk").code == "dns_nxdomain"
    assert dns_check(dns_server, name="www.test.opsdesk", record_type="TXT").code == "dns_no_answer"


def test_timeout(dns_server: DnsServer) -> None:
    result = run_check(
        "dns", name="silent.test.opsdesk", nameserver="127.0.0.1", port=dns_server.port, timeout_s=0.5
    )
    assert (result.state, result.code) == ("down", "timeout")
