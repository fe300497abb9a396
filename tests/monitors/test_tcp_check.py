"""The TCP port check."""

from __future__ import annotations

from tests.monitors.conftest import run_check
from tests.nginx_fixture import NginxServer


def test_open_port(nginx: NginxServer) -> None:
    result = run_check("tcp", host="localhost", port=nginx.http_port)
    assert (result.ok, result.code) == (True, "ok")
    m = result.metrics
    assert 0 <= m["connect_ms"] <= m["response_ms"] and 0 <= m["dns_ms"] <= m["response_ms"]


def test_closed_port(nginx: NginxServer) -> None:
    result = run_check("tcp", host="127.0.0.1", port=nginx.closed_port)
    assert (result.state, result.code) == ("down", "connect_refused")
    assert str(nginx.closed_port) in result.message


def test_timeout(full_port: int) -> None:
    result = run_check("tcp", host="127.0.0.1", port=full_port, timeout_s=0.5)
    assert (result.state, result.code) == ("down", "timeout")
    assert 450 <= result.metrics["response_ms"] < 1500
