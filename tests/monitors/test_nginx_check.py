"""nginx check against a real nginx: stub_status figures match nginx's own counters after load."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from opsdesk.monitors import checks
from opsdesk.monitors.checks import CheckDefinitionError
from opsdesk.monitors.checks.nginx import parse_stub_status
from tests.middleware_fixtures import ProbeHarness, WebStack, assert_down_then_recovers, start_web_stack
from tests.middleware_fixtures import harness as harness
from tests.middleware_fixtures import web_stack as web_stack
from tests.monitors.conftest import run_check
from tests.nginx_fixture import free_port


async def _twice(
    config: checks.CheckConfig, between: object
) -> tuple[checks.CheckResult, checks.CheckResult, float, float]:
    async with checks.Checker() as checker:
        t0 = time.monotonic()
        first = await checker.run(config)
        t1 = time.monotonic()
        assert callable(between)
        between()
        t2 = time.monotonic()
        second = await checker.run(config)
        t3 = time.monotonic()
    return first, second, t3 - t0, t2 - t1


def test_stub_status_figures_match_nginx_counters_after_load(web_stack: WebStack) -> None:
    import asyncio

    config = checks.validate("nginx", {"url": web_stack.stub_status})
    n = 150

    def load() -> None:
        with httpx.Client() as client:  # one keep-alive connection: n requests, one accept
            for _ in range(n):
                assert client.get(web_stack.base + "/").status_code == 200

    first, second, longest, shortest = asyncio.run(_twice(config, load))
    assert first.ok and second.ok, (first, second)
    assert "requests_per_s" not in first.metrics  # no rate from a single reading
    own = parse_stub_status(httpx.get(web_stack.stub_status).text)  # nginx's counters, read by the test
    assert own is not None
    m1, m2 = first.metrics, second.metrics
    # n requests of the load and the second check's own request
    assert m2["requests_total"] - m1["requests_total"] == n + 1
    # the check opens a fresh connection each run; the load used one
    assert m2["accepts_total"] - m1["accepts_total"] == 2
    assert own["requests_total"] == m2["requests_total"] + 1
    assert own["accepts_total"] == m2["accepts_total"] + 1
    assert m2["handled_total"] == m2["accepts_total"] and m2["dropped_total"] == 0
    assert m2["active_connections"] >= 1 and m2["writing"] >= 1
    delta = m2["requests_total"] - m1["requests_total"]
    assert delta / longest <= m2["requests_per_s"] <= delta / shortest
    assert m2["response_ms"] > 0


def test_not_a_status_page_and_refused_port_are_critical(web_stack: WebStack) -> None:
    wrong = run_check("nginx", url=web_stack.base + "/")
    assert wrong.level == "critical" and wrong.code == "unexpected_response"
    missing = run_check("nginx", url=web_stack.base + "/nothing.php")
    assert missing.level == "critical" and missing.code == "status_mismatch", missing
    port = free_port()
    refused = run_check("nginx", url=f"http://127.0.0.1:{port}/stub_status", timeout_s=2)
    assert refused.level == "critical" and refused.code == "connect_refused"
    assert f"127.0.0.1:{port}" in refused.message


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"url": "ftp://127.0.0.1/stub_status"}, "url"),
        ({"url": "http:///stub_status"}, "url"),
        ({"url": "http://127.0.0.1:99999/stub_status"}, "url"),
        ({}, "url"),
        ({"url": "http://127.0.0.1/s", "interval_s": 1}, "interval_s"),
    ],
)
def test_bad_definitions_are_refused_by_field(definition: dict[str, object], field: str) -> None:
    with pytest.raises(CheckDefinitionError) as caught:
        checks.validate("nginx", definition)
    assert field in caught.value.as_dict(), caught.value.as_dict()


def test_stopped_nginx_turns_the_monitor_down_and_recovers(tmp_path: Path, harness: ProbeHarness) -> None:
    stack = start_web_stack(tmp_path / "own")
    try:
        monitor = harness.add("nginx", {"url": stack.stub_status, "interval_s": 10, "timeout_s": 2})
        assert_down_then_recovers(harness, monitor, stack.nginx.stop, stack.nginx.start)
    finally:
        stack.stop()
