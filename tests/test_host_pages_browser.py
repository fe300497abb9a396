"""Host and check pages in a real browser: uPlot charts fed by the metrics API, ranges, phones.

Screenshots land in test-artifacts/screenshots/ (host-*, monitor-*).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from opsdesk.core.runtime import Runtime
from opsdesk.ingest.service import gzip_batch
from opsdesk.metrics import Sample, SeriesKey
from opsdesk.monitors.checks import validate
from opsdesk.monitors.models import MaintenanceWindow, Monitor, MonitorEvent, MonitorState
from tests.conftest import LiveServer
from tests.test_monitor_pages import INVENTORY, TOP, agent_batch
from tests.test_pages_browser import CHROMIUM_ARGS, LANGS, assert_labelled, enrich, log_in, shot
from tests.world import PASSWORD, World, seed_world

playwright_sync = pytest.importorskip("playwright.sync_api")
Browser = playwright_sync.Browser
Page = playwright_sync.Page

pytestmark = pytest.mark.browser
HOST_CHARTS = ("cpu", "load", "memory", "fs", "disk", "net", "tcp")
CHARTS_SETTLED = """() => [...document.querySelectorAll('[data-chart]')]
  .every(e => ['ready', 'empty', 'error'].includes(e.dataset.state))"""
SERIES_COUNTS = """() => Object.fromEntries(window.opsdeskCharts
  .map(c => [c.el.closest('figure').id, c.plot ? c.plot.series.length - 1 : 0]))"""
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
# The widest elements sticking out of the screen, outside the scrollable table wrappers.
WIDE_JS = """() => [...document.querySelectorAll('main *')]
  .filter(e => !e.closest('.table-wrap'))
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"""


def host_series(asset: int, customer: int) -> list[tuple[dict[str, str], Any]]:
    """(labels, value at time index i) for every series a real agent would send."""
    wave = math.sin

    def labels(name: str, **more: str) -> dict[str, str]:
        return {"__name__": name, "asset": str(asset), "customer": str(customer), **more}

    return [
        (labels("cpu_usage_percent", mode="total"), lambda i: 30 + 20 * wave(i / 40)),
        (labels("cpu_usage_percent", mode="user"), lambda i: 20 + 12 * wave(i / 40)),
        (labels("cpu_usage_percent", mode="system"), lambda i: 7 + 4 * wave(i / 30)),
        (labels("cpu_usage_percent", mode="iowait"), lambda i: 2 + 2 * wave(i / 9) ** 2),
        (labels("cpu_usage_percent", mode="idle"), lambda i: 70 - 20 * wave(i / 40)),
        (labels("load1"), lambda i: 1.2 + wave(i / 25)),
        (labels("load5"), lambda i: 1.1 + 0.7 * wave(i / 30)),
        (labels("load15"), lambda i: 1.0 + 0.5 * wave(i / 35)),
        (labels("memory_used_percent"), lambda i: 62 + 6 * wave(i / 80)),
        (labels("swap_used_percent"), lambda i: 4 + wave(i / 90)),
        (labels("fs_used_percent", mount="/", device="vda1", fstype="ext4"), lambda i: 41 + i / 2000),
        (labels("fs_used_percent", mount="/data", device="vdb1", fstype="xfs"), lambda i: 70 + i / 1000),
        (labels("disk_read_bytes_per_second", device="vda"), lambda i: 2e6 * (1.2 + wave(i / 15))),
        (labels("disk_write_bytes_per_second", device="vda"), lambda i: 4e6 * (1.1 + wave(i / 20))),
        (labels("net_receive_bytes_per_second", interface="eth0"), lambda i: 8e6 * (1.3 + wave(i / 18))),
        (labels("net_transmit_bytes_per_second", interface="eth0"), lambda i: 3e6 * (1.2 + wave(i / 22))),
        (labels("tcp_connections", state="established"), lambda i: 120 + 40 * wave(i / 50)),
        (labels("tcp_connections", state="time_wait"), lambda i: 30 + 10 * wave(i / 12)),
    ]


def write_history(rt: Runtime, world: World) -> None:
    """30 days at 5-minute spacing, and the last two hours at the agent's 15 s."""
    now = int(time.time())
    series = host_series(world.a.asset, world.a.customer)
    old = range(now - 30 * 86400, now - 7200, 300)
    recent = range(now - 7200, now - 20, 15)
    samples = [
        Sample(SeriesKey(labels), t * 1000, float(value((t - old.start) // 300)))
        for t in (*old, *recent)
        for labels, value in series
    ]
    rt.metrics.write(samples)


def send_inventory(server: LiveServer, world: World) -> None:
    admin = server.login(world.admin, PASSWORD)
    token = admin.post(f"/api/v1/assets/{world.a.asset}/agent-tokens", json={"name": "browser"}).json()[
        "token"
    ]
    agent = httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"}
    )
    now = int(time.time() * 1000)
    events = [
        {"t": now - 3_600_000, "kind": "reboot", "attrs": {"boot_time": int(now / 1000) - 3600}},
        {"t": now - 600_000, "kind": "user_added", "attrs": {"user": "deploy", "uid": 1000}},
        {"t": now - 60_000, "kind": "password_changed", "attrs": {"user": "root"}},
        {"t": now, "kind": "process_stopped", "attrs": {"process": "nginx"}},
    ]
    for body in (
        agent_batch(1, now - 15_000, inventory=INVENTORY, top=TOP),
        agent_batch(2, now, events=events),
    ):
        assert agent.post("/api/v1/ingest/agent", content=gzip_batch(body)).status_code == 200


def add_monitor(rt: Runtime, world: World, url: str) -> int:
    """A check with a week of history: a short outage, a maintenance window and response times."""
    now = datetime.now(UTC)
    config = validate("http", {"url": url, "interval_s": 60}).model_dump(mode="json")
    last = {
        "ok": True, "state": "up", "code": "ok", "message": "status 200 in 41 ms",
        "metrics": {"dns_ms": 1.2, "connect_ms": 3.4, "tls_ms": 12.8, "ttfb_ms": 38.0, "response_ms": 41.0,
                    "status_code": 200.0},
    }  # fmt: skip
    with rt.sessions.begin() as s:
        m = Monitor(
            customer_id=world.a.customer, name="shop-A API health", type="http", config=config,
            state=MonitorState.up, state_since=now - timedelta(hours=30), last_run_at=now, last_result=last,
        )  # fmt: skip
        s.add(m)
        s.flush()
        changes = [
            (now - timedelta(days=7), MonitorState.unknown, MonitorState.up, "ok", "status 200 in 40 ms"),
            (
                now - timedelta(hours=31),
                MonitorState.up,
                MonitorState.down,
                "timeout",
                "timed out after 10 s",
            ),
            (now - timedelta(hours=30), MonitorState.down, MonitorState.up, "ok", "status 200 in 52 ms"),
        ]
        for at, old, new, code, message in changes:
            event = MonitorEvent(
                customer_id=m.customer_id, monitor_id=m.id, at=at, from_state=old, to_state=new,
                code=code, message=message,
            )  # fmt: skip
            s.add(event)
        begins = now - timedelta(days=3)
        reason = "数据库升级 DB upgrade"
        s.add(
            MaintenanceWindow(
                customer_id=m.customer_id,
                starts_at=begins,
                ends_at=begins + timedelta(hours=2),
                reason=reason,
            )
        )
        ident = m.id
    labels = {
        "__name__": "check_response_ms",
        "monitor": str(ident),
        "customer": str(world.a.customer),
        "type": "http",
    }
    start = int(now.timestamp()) - 7 * 86400
    rt.metrics.write(
        Sample(SeriesKey(labels), t * 1000, 40 + 15 * math.sin(t / 5000) + (30 if t % 7 == 0 else 0))
        for t in range(start, int(now.timestamp()) - 60, 60)
    )
    return ident


@pytest.fixture
def monitored(sqlite_runtime: Runtime) -> Iterator[tuple[LiveServer, World, int]]:
    world = seed_world(sqlite_runtime)
    enrich(sqlite_runtime, world)
    write_history(sqlite_runtime, world)
    with LiveServer(sqlite_runtime) as server:
        send_inventory(server, world)
        monitor = add_monitor(sqlite_runtime, world, f"{server.url}/healthz")
        yield server, world, monitor


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def watch_errors(page: Page) -> list[str]:
    """Script errors and failed loads, except the browser's own favicon probe (the app has none)."""
    errors: list[str] = []

    def console(msg: Any) -> None:
        url = str((msg.location or {}).get("url", ""))
        if msg.type == "error" and not url.endswith("/favicon.ico"):
            errors.append(f"{msg.text} {url}")

    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", console)
    return errors


def settled(page: Page) -> None:
    page.wait_for_function(CHARTS_SETTLED, timeout=15_000)


def chart_attr(page: Page, chart: str, name: str) -> str:
    value = page.get_attribute(f"#chart-{chart} [data-chart]", f"data-{name}")
    assert value is not None
    return value


def pick_range(page: Page, label: str) -> None:
    page.locator("[data-range]", has_text=label).click()  # charts are "loading" from the click on
    settled(page)


@pytest.mark.parametrize("lang", LANGS)
def test_host_page_draws_its_charts(
    browser: Browser, monitored: tuple[LiveServer, World, int], lang: str
) -> None:
    server, world, _ = monitored
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = watch_errors(page)
    log_in(page, server.url, world.admin, lang)
    page.goto(f"{server.url}/assets/{world.a.asset}/host")
    settled(page)
    assert page.locator(".chart canvas").count() == len(HOST_CHARTS)
    counts = page.evaluate(SERIES_COUNTS)
    assert counts == {
        "chart-cpu": 4,
        "chart-load": 3,
        "chart-memory": 2,
        "chart-fs": 2,
        "chart-disk": 2,
        "chart-net": 2,
        "chart-tcp": 2,
    }  # fmt: skip  (cpu: idle is left out)
    for chart in HOST_CHARTS:
        assert chart_attr(page, chart, "state") == "ready"
    # 24 h at a 5-minute step, start on a multiple of it: the store answers from its rollups.
    assert chart_attr(page, "cpu", "step") == "300" and int(chart_attr(page, "cpu", "start")) % 300 == 0
    assert page.locator("#host-status .badge.ok").is_visible()
    assert page.locator("#events").get_by_text("root").first.is_visible()
    assert_labelled(page)
    shot(page, f"host-{lang}")

    labels = {"en": ("7 d", "30 d", "1 h"), "zh-CN": ("7 天", "30 天", "1 小时")}[lang]
    pick_range(page, labels[0])
    assert chart_attr(page, "cpu", "step") == "900"
    assert page.locator("[data-range='7d']").get_attribute("aria-pressed") == "true"
    pick_range(page, labels[1])
    assert chart_attr(page, "cpu", "step") == "3600" and int(chart_attr(page, "cpu", "start")) % 3600 == 0
    points = page.evaluate("() => window.opsdeskCharts[0].plot.data[0].length")
    assert 600 <= points <= 1000
    pick_range(page, labels[2])
    assert chart_attr(page, "cpu", "step") == "15"

    # A custom range, typed in Beijing time: two days back to one day back.
    page.fill("#chart-from", (datetime.now(UTC) + timedelta(hours=8, days=-2)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("#chart-to", (datetime.now(UTC) + timedelta(hours=8, days=-1)).strftime("%Y-%m-%dT%H:%M"))
    page.locator("[data-custom-apply]").click()
    page.wait_for_function("() => document.querySelector('#chart-cpu [data-chart]').dataset.step === '300'")
    settled(page)
    span = int(chart_attr(page, "cpu", "end")) - int(chart_attr(page, "cpu", "start"))
    assert 86400 <= span <= 86400 + 600
    assert page.locator("[data-range][aria-pressed='true']").count() == 0
    assert errors == []

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    mobile = phone.new_page()
    mobile_errors = watch_errors(mobile)
    log_in(mobile, server.url, world.admin, lang)
    mobile.goto(f"{server.url}/assets/{world.a.asset}/host")
    settled(mobile)
    assert mobile.evaluate(OVERFLOW) <= 0, mobile.evaluate(WIDE_JS)
    width = mobile.evaluate("() => window.opsdeskCharts[0].plot.width")
    assert 200 <= width <= 390
    shot(mobile, f"host-phone-{lang}", full=False)
    shot(mobile, f"host-phone-full-{lang}")
    assert mobile_errors == []
    phone.close()
    context.close()


@pytest.mark.parametrize("lang", LANGS)
def test_monitor_page_draws_the_response_chart(
    browser: Browser, monitored: tuple[LiveServer, World, int], lang: str
) -> None:
    server, world, monitor = monitored
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = watch_errors(page)
    log_in(page, server.url, world.admin, lang)
    page.goto(f"{server.url}/customers/{world.a.customer}")
    row = page.locator(f"#monitoring tr[data-monitor='{monitor}']")
    row.wait_for()
    assert row.locator(".badge.ok").is_visible()
    shot(page, f"monitor-customer-{lang}")
    row.get_by_role("link", name="shop-A API health", exact=True).click()
    page.wait_for_url(f"**/monitors/{monitor}")
    settled(page)
    assert page.locator("#chart-response canvas").count() == 1
    assert page.evaluate(SERIES_COUNTS) == {"chart-response": 1}
    assert chart_attr(page, "response", "step") == "300"  # 24 h, 1-minute checks: a 5-minute step
    history = page.locator("#history").inner_text()
    assert ("Timed out" if lang == "en" else "超时") in history
    assert "数据库升级" in page.locator("#maintenance").inner_text()
    assert_labelled(page)
    shot(page, f"monitor-{lang}")
    pick_range(page, "7 d" if lang == "en" else "7 天")
    assert chart_attr(page, "response", "step") == "900"
    assert errors == []
    context.close()

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    mobile = phone.new_page()
    log_in(mobile, server.url, world.a.username, lang)
    mobile.locator("#monitoring-body table").first.wait_for()
    assert mobile.locator("#monitoring-body").get_by_text("shop-A API health").is_visible()
    mobile.locator("#monitoring-body").get_by_role("link", name="shop-A API health", exact=True).click()
    mobile.wait_for_url(f"**/monitors/{monitor}")
    settled(mobile)
    assert mobile.locator("main form").count() == 0  # customers read, never change
    assert mobile.evaluate(SERIES_COUNTS) == {"chart-response": 1}
    assert mobile.evaluate(OVERFLOW) <= 0
    shot(mobile, f"monitor-phone-{lang}", full=False)
    mobile.goto(f"{server.url}/assets/{world.a.asset}/host")
    settled(mobile)
    assert mobile.locator("main form").count() == 0
    assert mobile.locator(".chart canvas").count() == len(HOST_CHARTS)
    phone.close()
