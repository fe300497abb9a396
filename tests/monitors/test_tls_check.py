"""The TLS certificate check: days to expiry, host name match and chain validity."""

from __future__ import annotations

import datetime as dt

import pytest

from opsdesk.monitors.checks import validate
from opsdesk.monitors.checks.tls import CertFacts, TlsConfig, judge
from tests.monitors.conftest import run_check
from tests.nginx_fixture import NginxServer


def test_ca_signed_with_ca_file_is_up(nginx: NginxServer) -> None:
    result = run_check("tls", host="localhost", port=nginx.https_ca_port, ca_file=nginx.ca_file)
    assert (result.ok, result.code) == (True, "ok"), result.message
    m = result.metrics
    assert abs(m["cert_days_left"] - nginx.ca_leaf_days) <= 1
    assert (m["chain_valid"], m["hostname_match"]) == (1, 1)
    assert m["tls_ms"] > 0 and m["connect_ms"] >= 0
    assert m["response_ms"] >= m["tls_ms"] and m["response_ms"] >= m["connect_ms"]


def test_ca_signed_without_ca_file_is_untrusted(nginx: NginxServer) -> None:
    result = run_check("tls", host="localhost", port=nginx.https_ca_port)
    assert result.code == "tls_untrusted"
    assert abs(result.metrics["cert_days_left"] - nginx.ca_leaf_days) <= 1


def test_self_signed_reports_days_left(nginx: NginxServer) -> None:
    result = run_check("tls", host="localhost", port=nginx.https_self_port)
    assert (result.state, result.code) == ("down", "tls_untrusted")
    assert "self-signed" in result.message
    assert abs(result.metrics["cert_days_left"] - nginx.self_signed_days) <= 1
    assert result.metrics["chain_valid"] == 0
    assert result.metrics["hostname_match"] == 1


@pytest.mark.parametrize("with_ca", [True, False])
def test_expired(nginx: NginxServer, with_ca: bool) -> None:
    extra = {"ca_file": nginx.ca_file} if with_ca else {}
    result = run_check("tls", host="localhost", port=nginx.https_expired_port, **extra)
    assert (result.state, result.code) == ("down", "tls_expired")
    assert result.metrics["cert_days_left"] <= 0
    assert abs(result.metrics["cert_days_left"] + nginx.expired_days_ago) <= 1


def test_hostname_mismatch_by_ip(nginx: NginxServer) -> None:
    result = run_check("tls", host="127.0.0.1", port=nginx.https_ca_port, ca_file=nginx.ca_file)
    assert (result.state, result.code) == ("down", "tls_hostname")
    assert result.metrics["hostname_match"] == 0
    assert result.metrics["chain_valid"] == 1
    assert "localhost" in result.message


def test_hostname_mismatch_by_server_name(nginx: NginxServer) -> None:
    result = run_check(
        "tls",
        host="127.0.0.1",
        port=nginx.https_ca_port,
        server_name="shop.example.com",
        ca_file=nginx.ca_file,
    )
    assert result.code == "tls_hostname"
    assert "shop.example.com" in result.message


def test_expiring_soon(nginx: NginxServer) -> None:
    result = run_check(
        "tls", host="localhost", port=nginx.https_ca_port, ca_file=nginx.ca_file, min_days_left=60
    )
    assert (result.state, result.code) == ("down", "tls_expiring")
    assert abs(result.metrics["cert_days_left"] - nginx.ca_leaf_days) <= 1


def test_not_tls(nginx: NginxServer) -> None:
    result = run_check("tls", host="127.0.0.1", port=nginx.http_port, timeout_s=3)
    assert (result.state, result.code) == ("down", "tls_error")


def test_refused_and_timeout(nginx: NginxServer, silent_port: int) -> None:
    assert run_check("tls", host="127.0.0.1", port=nginx.closed_port).code == "connect_refused"
    result = run_check("tls", host="127.0.0.1", port=silent_port, timeout_s=0.5)
    assert result.code == "timeout"


def _facts(names: list[str]) -> CertFacts:
    now = dt.datetime.now(dt.UTC)
    return CertFacts(now - dt.timedelta(days=1), now + dt.timedelta(days=100), "CN=x", names, [])


@pytest.mark.parametrize(
    ("pattern", "host", "ok"),
    [
        ("www.example.com", "WWW.example.com.", True),
        ("*.example.com", "shop.example.com", True),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", "example.com", False),
        ("*.com", "example.com", False),
        ("example.com", "example.org", False),
    ],
)
def test_hostname_matching(pattern: str, host: str, ok: bool) -> None:
    assert _facts([pattern]).matches(host) is ok


def test_judge_reports_every_problem_gravest_first() -> None:
    config = validate("tls", {"host": "shop.example.com"})
    assert isinstance(config, TlsConfig)
    now = dt.datetime.now(dt.UTC)
    facts = CertFacts(now - dt.timedelta(days=30), now - dt.timedelta(days=2), "CN=x", ["other.example"], [])
    result = judge(config, "shop.example.com", facts, ("tls_untrusted", "certificate is not trusted: x"), {})
    assert result.code == "tls_expired"
    assert "not trusted" in result.message and "does not match" in result.message
