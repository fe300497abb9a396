"""php-fpm check against a real php-fpm pool behind nginx: status figures match the pool's own."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from opsdesk.monitors import checks
from opsdesk.monitors.checks import CheckDefinitionError
from opsdesk.monitors.checks.php_fpm import json_url
from tests.middleware_fixtures import ProbeHarness, WebStack, assert_down_then_recovers, start_web_stack
from tests.middleware_fixtures import harness as harness
from tests.middleware_fixtures import web_stack as web_stack
from tests.monitors.conftest import run_check


def test_status_figures_match_the_pools_own_after_php_requests(web_stack: WebStack) -> None:
    config = checks.validate("php_fpm", {"url": web_stack.fpm_status})
    n = 60

    async def go() -> tuple[checks.CheckResult, checks.CheckResult, float, float]:
        async with checks.Checker() as checker:
            t0 = time.monotonic()
            first = await checker.run(config)
            t1 = time.monotonic()
            with httpx.Client() as client:
                for _ in range(n):
                    resp = client.get(web_stack.base + "/hello.php")
                    assert resp.status_code == 200 and "hello from php" in resp.text
            t2 = time.monotonic()
            second = await checker.run(config)
            return first, second, time.monotonic() - t0, t2 - t1

    first, second, longest, shortest = asyncio.run(go())
    assert first.ok and second.ok, (first, second)
    own = httpx.get(web_stack.fpm_status + "?json").json()  # the pool's counters, read by the test
    m1, m2 = first.metrics, second.metrics
    assert m2["accepted_conn_total"] - m1["accepted_conn_total"] == n + 1  # the load and the 2nd check
    assert own["accepted conn"] == m2["accepted_conn_total"] + 1
    assert m2["total_processes"] == own["total processes"] == 2  # pm = static, max_children 2
    assert m2["idle_processes"] + m2["active_processes"] == m2["total_processes"]
    assert m2["active_processes"] >= 1  # the worker answering the status request
    assert m2["max_children_reached_total"] == own["max children reached"]
    assert m2["slow_requests_total"] == own["slow requests"] == 0
    assert m2["listen_queue"] == own["listen queue"]
    assert m2["uptime_s"] <= own["start since"]
    delta = m2["accepted_conn_total"] - m1["accepted_conn_total"]
    assert delta / longest <= m2["accepted_conn_per_s"] <= delta / shortest
    assert "accepted_conn_per_s" not in m1


def test_json_is_asked_for_once() -> None:
    assert json_url("http://h/fpm-status") == "http://h/fpm-status?json"
    assert json_url("http://h/fpm-status?full") == "http://h/fpm-status?full&json"
    assert json_url("http://h/fpm-status?json") == "http://h/fpm-status?json"


def test_not_a_status_page_is_critical(web_stack: WebStack) -> None:
    result = run_check("php_fpm", url=web_stack.base + "/hello.php")
    assert result.level == "critical" and result.code == "unexpected_response"


@pytest.mark.parametrize(
    ("definition", "field"),
    [({"url": "127.0.0.1/fpm-status"}, "url"), ({"url": "http://h/s", "timeout_s": 0}, "timeout_s")],
)
def test_bad_definitions_are_refused_by_field(definition: dict[str, object], field: str) -> None:
    with pytest.raises(CheckDefinitionError) as caught:
        checks.validate("php_fpm", definition)
    assert field in caught.value.as_dict()


def test_stopped_php_fpm_turns_the_monitor_down_and_recovers(tmp_path: object, harness: ProbeHarness) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    stack = start_web_stack(tmp_path / "own")
    try:
        monitor = harness.add("php_fpm", {"url": stack.fpm_status, "interval_s": 10, "timeout_s": 2})
        # nginx stays up and answers 502 Bad Gateway while the pool is stopped
        assert_down_then_recovers(
            harness, monitor, stack.php_fpm.stop, stack.php_fpm.start, "status_mismatch"
        )
    finally:
        stack.stop()
