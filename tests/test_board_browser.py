"""The engineer's scenario in a real browser, with a real agent process feeding the server.

The agent reports every 2 s and a host counts as down after two silent intervals; the alert
loop sweeps every second instead of every 15 s. An engineer watches the board turn the host from
up to down without reloading, opens the host-down incident from the board and acknowledges it.
Screenshots: docs/screenshots/board-en.png and board-zh-CN.png.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from opsdesk.accounts.models import User
from opsdesk.alerting.models import Alert, Incident, IncidentEvent, IncidentStatus
from opsdesk.alerting.rules import Severity
from opsdesk.core import migrate
from opsdesk.core.runtime import Runtime, build_runtime
from opsdesk.hosts.models import HostState
from opsdesk.metrics import Sample, SeriesKey
from opsdesk.monitors.models import Monitor, MonitorState, Runner
from opsdesk.tenancy.models import Asset, AssetType, Customer, StaffAssignment
from opsdesk.web import app as web_app
from tests.conftest import LiveServer, make_settings
from tests.test_pages_browser import CHROMIUM_ARGS, assert_labelled, log_in
from tests.world import PASSWORD, World, seed_world

playwright_sync = pytest.importorskip("playwright.sync_api")
Page = playwright_sync.Page

pytestmark = pytest.mark.browser
OPSDESK = str(Path(sys.executable).with_name("opsdesk"))
DOCS_SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
AGENT_INTERVAL_S = 2  # 1 s works on a quiet machine; 2 s leaves room when the CPU is shared
DOWN_AFTER_INTERVALS = 2
POLL_S = 2  # the board's refresh period in this test (?refresh=), 10 s by default
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@pytest.fixture
def fast_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    """Short intervals by configuration: down after 2 silent intervals, alert sweeps every second."""
    monkeypatch.setattr(web_app, "ALERTS_EVERY_S", 1.0)
    url = f"sqlite:///{tmp_path / 'opsdesk.db'}"
    migrate.upgrade(url)
    rt = build_runtime(make_settings(tmp_path, url, ingest={"down_after_intervals": DOWN_AFTER_INTERVALS}))
    yield rt
    rt.close()


def start_agent(server: LiveServer, token: str, state_dir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSDESK_")}
    log = (state_dir.parent / "agent.log").open("ab")
    cmd = [OPSDESK, "agent", "--server", server.url, "--token", token]
    cmd += ["--interval", str(AGENT_INTERVAL_S), "--state-dir", str(state_dir)]
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=log)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def add_neighbours(rt: Runtime, world: World) -> int:
    """More of engineer A's fleet, so the board (and its screenshot) looks like real use.

    Customer A gets more hosts, a website check and services; a healthy customer named to sort
    first alphabetically is assigned to engineer A too, so problems-first ordering shows.
    These hosts report hourly, so they stay up while the test runs; returns that customer's id.
    """
    now = datetime.now(UTC)
    rng = random.Random(3)
    t = int(time.time() * 1000)
    samples: list[Sample] = []
    with rt.sessions.begin() as s:
        eng_a = s.scalars(select(User).where(User.username == world.engineer_a)).one()
        calm = Customer(code="AAA", name="AAA Logistics 物流")
        s.add(calm)
        s.flush()
        s.add(StaffAssignment(customer_id=calm.id, user_id=eng_a.id))
        names = {
            world.a.customer: ("app-A1", "app-A2", "db-A1", "cache-A1"),
            calm.id: ("erp-1", "erp-2", "wms-1"),
        }
        for customer_id, hosts in names.items():
            for name in hosts:
                asset = Asset(customer_id=customer_id, type=AssetType.server, name=name)
                s.add(asset)
                s.flush()
                s.add(
                    HostState(customer_id=customer_id, asset_id=asset.id, last_seen_at=now, interval_s=3600)
                )
                labels = {"asset": str(asset.id), "customer": str(customer_id)}
                samples += [
                    Sample(
                        SeriesKey({**labels, "__name__": "cpu_usage_percent", "mode": "total"}),
                        t,
                        rng.uniform(3, 60),
                    ),
                    Sample(SeriesKey({**labels, "__name__": "memory_used_percent"}), t, rng.uniform(20, 80)),
                    Sample(
                        SeriesKey({**labels, "__name__": "fs_used_percent", "mount": "/"}),
                        t,
                        rng.uniform(20, 88),
                    ),
                ]
        s.add(Asset(customer_id=world.a.customer, type=AssetType.server, name="new-A3"))  # no agent yet
        checks = (
            (world.a.customer, "shop-A homepage", "http", MonitorState.up),
            (world.a.customer, "shop-A certificate", "tls", MonitorState.warning),
            (world.a.customer, "mysql-A", "mysql", MonitorState.up),
            (world.a.customer, "redis-A", "redis", MonitorState.up),
            (calm.id, "erp.example.cn", "http", MonitorState.up),
            (calm.id, "nginx-erp", "nginx", MonitorState.up),
        )
        for customer_id, name, kind, state in checks:
            # "agent" runner with no agent: nothing runs them, their state stays as set here
            s.add(
                Monitor(
                    customer_id=customer_id, name=name, type=kind, config={}, runner=Runner.agent,
                    agent_asset_id=None, state=state,
                )
            )  # fmt: skip
        calm_id = calm.id
    rt.metrics.write(samples)
    return calm_id


def host_down_incident(rt: Runtime, asset_id: int) -> int | None:
    with rt.sessions() as s:
        alert = s.scalars(
            select(Alert).where(Alert.rule_key == "host_down", Alert.asset_id == asset_id)
        ).first()
        return alert.incident_id if alert is not None else None


def test_engineer_sees_host_go_down_and_acknowledges_from_the_board(
    fast_runtime: Runtime, tmp_path: Path
) -> None:
    rt = fast_runtime
    world: World = seed_world(rt)
    with rt.sessions.begin() as s:  # the world's tcp check would open an incident of its own
        s.execute(update(Monitor).values(enabled=False))
    calm = add_neighbours(rt, world)
    asset = world.a.asset
    started = time.monotonic()
    with LiveServer(rt) as server, playwright_sync.sync_playwright() as p:
        admin = server.login(world.admin, PASSWORD)
        token = admin.post(f"/api/v1/assets/{asset}/agent-tokens", json={"name": "board"}).json()["token"]
        agent = start_agent(server, token, tmp_path / "agent")
        try:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page: Page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            log_in(page, server.url, world.engineer_a, "en")
            page.goto(f"{server.url}/board?refresh={POLL_S}")
            assert page.locator("nav .nav-main li").nth(1).inner_text() == "Status board"  # first staff link
            assert_labelled(page)
            tile = page.locator(f"#host-{asset}")
            page.locator(f"#host-{asset}[data-status=up]").wait_for(timeout=20_000)
            assert "Up" in tile.inner_text() and "tile-up" in (tile.get_attribute("class") or "")
            assert "web-B" not in page.content()  # engineer A's board holds customer A only

            page.evaluate("window.boardNotReloaded = true")  # gone if the page were reloaded
            agent.send_signal(signal.SIGKILL)
            agent.wait(10)
            page.locator(f"#host-{asset}[data-status=down]").wait_for(timeout=20_000)
            assert "Down" in tile.inner_text() and "tile-down" in (tile.get_attribute("class") or "")
            assert page.evaluate("window.boardNotReloaded === true")
            # the tile is red as soon as it says down: no colour fade (read in one step: the board
            # may refresh in between)
            red = page.evaluate(
                f"""() => {{ const e = document.getElementById('host-{asset}');
                    return [e.dataset.status, getComputedStyle(e).backgroundColor] }}"""
            )
            assert red == ["down", "rgb(180, 35, 24)"], red
            assert tile.evaluate("e => getComputedStyle(e).transitionDuration") == "0s"

            incident_id = wait_for(lambda: host_down_incident(rt, asset), 20, "the host-down incident")
            link = page.locator(f"#board-incident-{incident_id}")
            link.wait_for(timeout=20_000)  # appears by polling, still without a reload
            assert page.evaluate("window.boardNotReloaded === true")
            assert "P1" in link.inner_text()
            section = page.locator(f"#customer-{world.a.customer}")
            assert section.locator("[data-level=bad]").count() == 1
            order = page.eval_on_selector_all(".board-customer", "els => els.map(e => e.id)")
            assert order == [f"customer-{world.a.customer}", f"customer-{calm}"]  # problems first
            assert section.locator("[data-sites-warning]").get_attribute("data-sites-warning") == "1"
            page.screenshot(path=str(DOCS_SHOTS / "board-en.png"), full_page=True)

            with page.expect_navigation():
                link.click()
            assert page.url.endswith(f"/incidents/{incident_id}")
            with page.expect_navigation():
                page.click("#acknowledge")
            assert page.locator("#incident-status [data-status=acknowledged]").inner_text() == "Acknowledged"

            with page.expect_navigation():
                page.select_option("#lang-switch", "zh-CN")
            page.goto(f"{server.url}/board")
            assert page.get_attribute("html", "lang") == "zh-CN"
            assert "运行状态总览" in page.inner_text("h1")
            assert "离线" in page.locator(f"#host-{asset}").inner_text()
            page.screenshot(path=str(DOCS_SHOTS / "board-zh-CN.png"), full_page=True)

            page.set_viewport_size({"width": 390, "height": 844})  # a phone
            page.goto(f"{server.url}/board?refresh={POLL_S}")
            assert page.evaluate(OVERFLOW) <= 1
            # a tile keeps the keyboard focus across a refresh of the board
            page.focus(f"#host-{asset}")
            updated = page.inner_text("#board-updated")
            wait_for(lambda: page.inner_text("#board-updated") != updated, 10, "a refresh")
            assert page.evaluate("document.activeElement.id") == f"host-{asset}"
            browser.close()
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait(10)

    with rt.sessions() as s:
        incident = s.get(Incident, incident_id)
        assert incident is not None
        assert incident.severity is Severity.p1
        assert incident.status is IncidentStatus.acknowledged and incident.acknowledged_at is not None
        events = s.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)).all()
        acks = [e for e in events if e.kind == "status" and (e.data or {}).get("after") == "acknowledged"]
        assert len(acks) == 1 and acks[0].actor == world.engineer_a
    assert time.monotonic() - started < 60
