"""The HTTP(S) check against the real nginx: states, codes and phase timings."""

from __future__ import annotations

import pytest

from tests.monitors.conftest import assert_timings, run_check
from tests.nginx_fixture import NginxServer

PHASES = ("dns_ms", "connect_ms", "tls_ms", "ttfb_ms")


def test_page_with_keyword_is_up_with_timings(nginx: NginxServer) -> None:
    result = run_check("http", url=nginx.url("/"), keyword=nginx.keyword)
    assert (result.ok, result.state, result.code) == (True, "up", "ok")
    assert result.metrics["status_code"] == 200
    assert result.metrics["redirects"] == 0
    assert_timings(result, PHASES)
    m = result.metrics
    assert m["dns_ms"] + m["connect_ms"] + m["tls_ms"] <= m["ttfb_ms"] <= m["response_ms"]
    assert m["tls_ms"] == 0  # plain HTTP


def test_https_timings_split_connect_and_tls(nginx: NginxServer) -> None:
    result = run_check("http", url=nginx.https_ca + "/", ca_file=nginx.ca_file, keyword=nginx.keyword)
    assert result.code == "ok", result.message
    assert_timings(result, PHASES)
    m = result.metrics
    assert m["tls_ms"] > 0 and m["connect_ms"] > 0
    assert m["dns_ms"] + m["connect_ms"] + m["tls_ms"] <= m["ttfb_ms"] <= m["response_ms"]


def test_keyword_missing(nginx: NginxServer) -> None:
    result = run_check("http", url=nginx.url("/nokeyword"), keyword=nginx.keyword)
    assert (result.state, result.code) == ("down", "keyword_missing")
    assert nginx.keyword in result.message
    assert result.metrics["status_code"] == 200


def test_keyword_absent_mode(nginx: NginxServer) -> None:
    absent = run_check("http", url=nginx.url("/nokeyword"), keyword=nginx.keyword, keyword_mode="absent")
    assert absent.code == "ok"
    present = run_check("http", url=nginx.url("/"), keyword=nginx.keyword, keyword_mode="absent")
    assert (present.state, present.code) == ("down", "keyword_found")


def test_keyword_regex_and_case(nginx: NginxServer) -> None:
    assert run_check("http", url=nginx.url("/"), keyword=r"<h1>opsdesk-\w+</h1>", keyword_regex=True).ok
    assert not run_check("http", url=nginx.url("/"), keyword="OPSDESK-OK").ok
    assert run_check("http", url=nginx.url("/"), keyword="OPSDESK-OK", keyword_case_sensitive=False).ok


def test_status_500_is_down_unless_expected(nginx: NginxServer) -> None:
    result = run_check("http", url=nginx.url("/error"))
    assert (result.state, result.code) == ("down", "status_mismatch")
    assert result.metrics["status_code"] == 500
    assert "500" in result.message
    assert run_check("http", url=nginx.url("/error"), expected_status=["200", "500-599"]).ok


def test_redirect_chain_followed(nginx: NginxServer) -> None:
    result = run_check("http", url=nginx.url("/redirect1"), keyword=nginx.keyword)
    assert result.code == "ok"
    assert result.metrics["status_code"] == 200
    assert result.metrics["redirects"] == 2
    assert_timings(result, PHASES)


def test_redirect_not_followed_counts_as_status(nginx: NginxServer) -> None:
    result = run_check("http", url=nginx.url("/redirect1"), follow_redirects=False)
    assert (result.code, result.metrics["status_code"]) == ("status_mismatch", 302)
    ok = run_check("http", url=nginx.url("/redirect2"), follow_redirects=False, expected_status=["301-302"])
    assert (ok.code, ok.metrics["status_code"], ok.metrics["redirects"]) == ("ok", 301, 0)


def test_redirect_loop(nginx: NginxServer) -> None:
    result = run_check("http", url=nginx.url("/loop"), max_redirects=3)
    assert (result.state, result.code) == ("down", "too_many_redirects")


def test_slow_page_times_out(nginx: NginxServer) -> None:
    result = run_check("http", url=nginx.url("/slow"), timeout_s=0.5)
    assert (result.state, result.code) == ("down", "timeout")
    assert 450 <= result.metrics["response_ms"] < 1500
    assert "body" in result.message


def test_slow_page_within_timeout(nginx: NginxServer) -> None:
    result = run_check("http", url=nginx.url("/slow"), timeout_s=5)
    assert result.code == "ok"
    assert result.metrics["response_ms"] >= 0.7 * nginx.slow_seconds * 1000
    assert result.metrics["ttfb_ms"] < result.metrics["response_ms"] / 2  # headers first, body slowly
    assert result.metrics["body_bytes"] > 0


def test_no_response_headers_times_out(silent_port: int) -> None:
    result = run_check("http", url=f"http://127.0.0.1:{silent_port}/", timeout_s=0.5)
    assert result.code == "timeout"
    assert "headers" in result.message


def test_self_signed_untrusted_unless_verify_off(nginx: NginxServer) -> None:
    result = run_check("http", url=nginx.https_self + "/")
    assert (result.state, result.code) == ("down", "tls_untrusted")
    relaxed = run_check("http", url=nginx.https_self + "/", verify_tls=False, keyword=nginx.keyword)
    assert relaxed.code == "ok"
    assert relaxed.metrics["tls_ms"] > 0


def test_expired_certificate(nginx: NginxServer) -> None:
    result = run_check("http", url=nginx.https_expired + "/", ca_file=nginx.ca_file)
    assert (result.state, result.code) == ("down", "tls_expired")


def test_hostname_mismatch(nginx: NginxServer) -> None:
    result = run_check("http", url=f"https://127.0.0.1:{nginx.https_ca_port}/", ca_file=nginx.ca_file)
    assert (result.state, result.code) == ("down", "tls_hostname")


def test_connection_refused(nginx: NginxServer) -> None:
    result = run_check("http", url=f"http://127.0.0.1:{nginx.closed_port}/")
    assert (result.state, result.code) == ("down", "connect_refused")


def test_unresolvable_host() -> None:
    result = run_check("http", url="http://no-such-host.invalid/", timeout_s=3)
    assert result.state == "down"
    assert result.code in ("dns_failed", "timeout")


def test_method_headers_and_body(nginx: NginxServer) -> None:
    result = run_check(
        "http",
        url=nginx.url("/echo"),
        method="post",
        headers={"X-Opsdesk-Test": "abc"},
        body="hello",
        keyword="method=POST length=5 header=abc",
    )
    assert result.code == "ok", result.message


def test_head_request(nginx: NginxServer) -> None:
    result = run_check("http", url=nginx.url("/"), method="HEAD")
    assert result.code == "ok"
    assert result.metrics["body_bytes"] == 0


@pytest.mark.parametrize("path", ["/", "/error"])
def test_retries_count_failed_attempts(nginx: NginxServer, path: str) -> None:
    result = run_check("http", url=nginx.url(path), attempts=3, failures_to_alert=2, retry_delay_s=0)
    if path == "/":
        assert (result.ok, result.metrics["attempts"], result.metrics["failed_attempts"]) == (True, 2, 0)
    else:
        assert (result.ok, result.metrics["attempts"], result.metrics["failed_attempts"]) == (False, 2, 2)
