"""The fleet status board over real HTTP: what each role sees, problems first, the portal's tiles."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from opsdesk.alerting.models import Incident, IncidentStatus
from opsdesk.alerting.rules import Severity
from opsdesk.board.build import build_board
from opsdesk.core.runtime import Runtime
from opsdesk.hosts.models import HostState
from opsdesk.metrics import Sample, SeriesKey
from opsdesk.monitors.models import Monitor, MonitorState, Runner
from opsdesk.tenancy.models import Asset, AssetType
from opsdesk.tenancy.scoping import bind
from tests.conftest import LiveServer
from tests.world import PASSWORD, World


def seed_board(rt: Runtime, world: World) -> dict[str, int]:
    """A healthy A (one host up with figures, one never seen, a service down) and a failing B."""
    now = datetime.now(UTC)
    ids: dict[str, int] = {}
    with rt.sessions.begin() as s:
        spare = Asset(customer_id=world.a.customer, type=AssetType.server, name="spare-A")
        db_b = Asset(customer_id=world.b.customer, type=AssetType.server, name="db-B-hidden")
        s.add_all([spare, db_b])
        s.flush()
        s.add_all(
            [
                HostState(
                    customer_id=world.a.customer, asset_id=world.a.asset, last_seen_at=now, interval_s=15
                ),
                HostState(
                    customer_id=world.b.customer,
                    asset_id=world.b.asset,
                    last_seen_at=now - timedelta(hours=1),
                    interval_s=15,
                ),
                HostState(customer_id=world.b.customer, asset_id=db_b.id, last_seen_at=now, interval_s=15),
                Monitor(
                    customer_id=world.a.customer, asset_id=world.a.asset, name="redis-A-cache", type="redis",
                    config={}, runner=Runner.agent, agent_asset_id=world.a.asset, state=MonitorState.down,
                ),
            ]
        )  # fmt: skip
        incidents = {
            "a": Incident(
                customer_id=world.a.customer, asset_id=world.a.asset, title="Board incident A",
                severity=Severity.p3, status=IncidentStatus.open, opened_at=now,
            ),
            "b": Incident(
                customer_id=world.b.customer, asset_id=world.b.asset, title="Board incident B",
                severity=Severity.p1, status=IncidentStatus.open, opened_at=now,
            ),
        }  # fmt: skip
        s.add_all(incidents.values())
        s.flush()
        ids = {"spare_a": spare.id, "db_b": db_b.id, "inc_a": incidents["a"].id, "inc_b": incidents["b"].id}
    t = int(time.time() * 1000)

    def key(asset: int, customer: int, name: str, **labels: str) -> SeriesKey:
        return SeriesKey({"__name__": name, "asset": str(asset), "customer": str(customer), **labels})

    a, ca, b, cb = world.a.asset, world.a.customer, world.b.asset, world.b.customer
    rt.metrics.write(
        [
            Sample(key(a, ca, "cpu_usage_percent", mode="total"), t, 37.2),
            Sample(key(a, ca, "cpu_usage_percent", mode="idle"), t, 62.8),  # not the busy figure
            Sample(key(a, ca, "memory_used_percent"), t, 58.4),
            Sample(key(a, ca, "fs_used_percent", mount="/", device="vda1", fstype="ext4"), t, 41.0),
            Sample(key(a, ca, "fs_used_percent", mount="/data", device="vdb1", fstype="xfs"), t, 83.3),
            Sample(key(b, cb, "cpu_usage_percent", mode="total"), t, 99.1),
            Sample(key(b, cb, "memory_used_percent"), t, 97.7),
        ]
    )
    return ids


def section(html: str, customer_id: int) -> str:
    start = html.index(f'id="customer-{customer_id}"')
    end = html.find("<section", start)
    return html[start : end if end > 0 else len(html)]


def tile(html: str, asset_id: int) -> str:
    start = html.rindex("<a ", 0, html.index(f'id="host-{asset_id}"'))
    return html[start : html.index("</a>", start)]


@pytest.mark.parametrize("path", ["/board", "/board/live"])
def test_engineer_sees_only_assigned_customers(
    live: LiveServer, world: World, runtime: Runtime, path: str
) -> None:
    ids = seed_board(runtime, world)
    page = live.login(world.engineer_a, PASSWORD).get(path)
    assert page.status_code == 200
    html = page.text
    assert "web-A" in html and "spare-A" in html and "Board incident A" in html
    for marker in ("Customer B", "web-B", "db-B-hidden", "Board incident B", f"/incidents/{ids['inc_b']}"):
        assert marker not in html, marker
    assert f'id="host-{world.b.asset}"' not in html and "99%" not in html and "98%" not in html

    up = tile(html, world.a.asset)
    assert 'data-status="up"' in up and "tile-up" in up
    assert "37%" in up and "58%" in up and "83%" in up and 'title="/data"' in up  # fullest disk
    never = tile(html, ids["spare_a"])
    assert 'data-status="unknown"' in never and ("Unknown" in never or "未知" in never)
    a = section(html, world.a.customer)
    assert 'data-services-down="1"' in a and "redis-A-cache" in a  # non-website monitors are services
    assert 'data-sites-down="1"' not in a  # the tcp check of the world is a site check, not down yet
    assert 'data-incidents-p3="1"' in a and f'href="/incidents/{ids["inc_a"]}"' in a


def test_engineer_b_and_admin_see_problems_first(live: LiveServer, world: World, runtime: Runtime) -> None:
    ids = seed_board(runtime, world)
    html_b = live.login(world.engineer_b, PASSWORD).get("/board").text
    assert "web-A" not in html_b and "Board incident A" not in html_b and "redis-A-cache" not in html_b
    b = section(html_b, world.b.customer)
    assert 'data-hosts-down="1"' in b and 'data-hosts-up="1"' in b and 'data-incidents-p1="1"' in b
    assert 'data-level="bad"' in b
    down = tile(html_b, world.b.asset)
    assert 'data-status="down"' in down and "tile-down" in down and "99%" in down
    # within a customer, the down host comes before the up one
    assert html_b.index(f'id="host-{world.b.asset}"') < html_b.index(f'id="host-{ids["db_b"]}"')

    admin = live.login(world.admin, PASSWORD).get("/board").text
    # B (host down, P1 open) sorts above A although A comes first by name
    assert admin.index(f'id="customer-{world.b.customer}"') < admin.index(f'id="customer-{world.a.customer}"')
    assert "Board incident A" in admin and "Board incident B" in admin
    assert re.search(r'<a href="/board"[^>]*aria-current="page"', admin)  # first in the staff navigation


def test_customer_user_is_sent_to_the_portal(live: LiveServer, world: World, runtime: Runtime) -> None:
    seed_board(runtime, world)
    user = live.login(world.a.username, PASSWORD)
    resp = user.get("/board")
    assert resp.status_code == 303 and resp.headers["location"] == "/portal"
    assert user.get("/board/live").status_code == 403
    tiles = user.get("/portal/board")
    assert tiles.status_code == 200
    assert f'id="host-{world.a.asset}"' in tiles.text and "37%" in tiles.text
    assert "web-B" not in tiles.text and "db-B-hidden" not in tiles.text and "99%" not in tiles.text
    assert 'hx-get="/portal/board"' in user.get("/portal").text
    assert live.login(world.admin, PASSWORD).get("/portal/board").status_code == 404


def test_board_renders_in_both_languages(live: LiveServer, world: World, runtime: Runtime) -> None:
    seed_board(runtime, world)
    admin = live.login(world.admin, PASSWORD)
    for lang, words in (
        ("en", ("Fleet status board", "Needs attention", "Services")),
        ("zh-CN", ("运行状态总览", "需处理", "服务")),
    ):
        admin.cookies.set("lang", lang)
        html = admin.get("/board").text
        assert f'<html lang="{lang}"' in html
        for word in words:
            assert word in html, (lang, word)


def test_board_is_built_with_a_fixed_number_of_queries(world: World, runtime: Runtime) -> None:
    """No query per host: the count stays the same when the fleet grows."""
    seed_board(runtime, world)
    counts = []
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    for extra in (0, 40):
        with runtime.sessions.begin() as s:
            new = (
                Asset(customer_id=world.a.customer, type=AssetType.server, name=f"n{i}") for i in range(extra)
            )
            s.add_all(new)
        statements.clear()
        event.listen(Engine, "before_cursor_execute", count)
        try:
            with runtime.sessions() as s:
                bind(s, None)
                board = build_board(s, runtime.metrics, 3, datetime.now(UTC))
        finally:
            event.remove(Engine, "before_cursor_execute", count)
        counts.append(len(statements))
        assert sum(len(c.hosts) for c in board.customers) >= 4 + extra
    assert counts[0] == counts[1] <= 5, counts
