"""Tomcat check against a real Tomcat 10 (Debian's) and its manager status page."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET

import httpx
import pytest

from opsdesk.monitors import checks
from opsdesk.monitors.checks import CheckDefinitionError
from opsdesk.monitors.checks.tomcat import parse_status, xml_url
from tests.middleware_fixtures import ProbeHarness, TomcatServer, assert_down_then_recovers
from tests.middleware_fixtures import harness as harness
from tests.middleware_fixtures import tomcat as tomcat
from tests.monitors.conftest import run_check


def _definition(server: TomcatServer, **over: object) -> dict[str, object]:
    return {"url": server.status_url, "user": server.user, "password": server.password, **over}


def test_manager_figures_match_tomcats_own_after_load(tomcat: TomcatServer) -> None:
    config = checks.validate("tomcat", _definition(tomcat))
    n = 80

    async def go() -> tuple[checks.CheckResult, checks.CheckResult, float, float]:
        async with checks.Checker() as checker:
            t0 = time.monotonic()
            first = await checker.run(config)
            t1 = time.monotonic()
            with httpx.Client() as client:
                for _ in range(n):
                    assert client.get(tomcat.root_url).status_code == 200
            t2 = time.monotonic()
            second = await checker.run(config)
            return first, second, time.monotonic() - t0, t2 - t1

    first, second, longest, shortest = asyncio.run(go())
    assert first.ok and second.ok, (first, second)
    own_xml = httpx.get(tomcat.status_url + "?XML=true", auth=(tomcat.user, tomcat.password)).text
    root = ET.fromstring(own_xml)
    memory = root.find("./jvm/memory")
    request_info = root.find("./connector/requestInfo")
    thread_info = root.find("./connector/threadInfo")
    assert memory is not None and request_info is not None and thread_info is not None
    m1, m2 = first.metrics, second.metrics
    assert m2["jvm_max_bytes"] == float(memory.get("max", "0")) > 0
    assert 0 < m2["jvm_used_bytes"] <= m2["jvm_total_bytes"] <= m2["jvm_max_bytes"]
    assert m2["threads_max"] == float(thread_info.get("maxThreads", "0"))
    assert 1 <= m2["threads_busy"] <= m2["threads_current"]
    # the load's requests and the first check's status request (counted once it has finished)
    delta = m2["requests_total"] - m1["requests_total"]
    assert n <= delta <= n + 2, (m1["requests_total"], m2["requests_total"])
    own_count = float(request_info.get("requestCount", "0"))
    assert m2["requests_total"] <= own_count <= m2["requests_total"] + 2
    assert m2["errors_total"] == float(request_info.get("errorCount", "0"))
    assert delta / longest <= m2["requests_per_s"] <= delta / shortest
    connector = {s.labels["connector"] for s in second.series}
    assert len(connector) == 1 and str(tomcat.port) in connector.pop()
    assert any(s.name == "requests_per_s" for s in second.series)


def test_wrong_password_is_critical_auth_failed(tomcat: TomcatServer) -> None:
    result = run_check("tomcat", **_definition(tomcat, password="not-the-password"))
    assert result.level == "critical" and result.code == "auth_failed"
    anonymous = run_check("tomcat", url=tomcat.status_url)
    assert anonymous.code == "auth_failed"


def test_parse_refuses_other_xml_and_adds_xml_once() -> None:
    assert parse_status("<html><body>hi</body></html>") is None
    assert parse_status("not xml") is None
    assert xml_url("http://h/manager/status") == "http://h/manager/status?XML=true"
    assert xml_url("http://h/manager/status?XML=true") == "http://h/manager/status?XML=true"


@pytest.mark.parametrize(
    ("definition", "field"),
    [({"url": "tomcat:8080"}, "url"), ({"url": "http://h/manager/status", "attempts": 9}, "attempts")],
)
def test_bad_definitions_are_refused_by_field(definition: dict[str, object], field: str) -> None:
    with pytest.raises(CheckDefinitionError) as caught:
        checks.validate("tomcat", definition)
    assert field in caught.value.as_dict()


def test_stopped_tomcat_turns_the_monitor_down_and_recovers(
    tomcat: TomcatServer, harness: ProbeHarness
) -> None:
    from tests.middleware_fixtures import _wait_manager

    monitor = harness.add("tomcat", _definition(tomcat, interval_s=10, timeout_s=5))

    def start() -> None:
        tomcat.process.start()
        _wait_manager(tomcat, time.monotonic() + 60)

    assert_down_then_recovers(harness, monitor, tomcat.process.stop, start)
