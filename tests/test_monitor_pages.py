"""Monitoring pages over real HTTP: adding and running checks, a check's page, host pages, walls."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from opsdesk.ingest.service import gzip_batch
from tests.conftest import LiveServer
from tests.test_pages import form_post, switch
from tests.world import PASSWORD, World


def main_of(html: str) -> str:
    return html[html.index("<main") : html.index("</main>")]


def field_error(html: str, field: str) -> str:
    found = re.search(rf'id="check-{re.escape(field)}-err">([^<]*)<', html)
    assert found, f"no error shown for {field}"
    return found.group(1)


def http_form(live: LiveServer, **over: str) -> dict[str, str]:
    data = {
        "type": "http",
        "name": "Health endpoint",
        "runs_on": "platform",
        "enabled": "true",
        "config.url": f"{live.url}/healthz",
        "config.method": "GET",
        "config.expected_status": "200-299",
        "config.keyword_mode": "present",
        "config.keyword": "ok",
        "config.follow_redirects": "true",
        "config.interval_s": "60",
        "config.timeout_s": "5",
        "config.attempts": "1",
        "config.failures_to_alert": "1",
        "config.retry_delay_s": "1",
    }
    return {**data, **over}


def create_via_api(client: httpx.Client, customer: int, url: str, name: str) -> int:
    body = {"name": name, "type": "http", "config": {"url": url}}
    resp = client.post(f"/api/v1/customers/{customer}/monitors", json=body)
    assert resp.status_code == 201, resp.text
    return int(resp.json()["id"])


def test_add_check_through_the_form_run_it_and_see_its_page(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    switch(admin, "en")
    new = admin.get(f"/customers/{world.a.customer}/checks/new?type=http")
    assert new.status_code == 200
    for caption in ("URL", "Method", "Expected statuses", "Keyword", "Follow redirects", "Interval (s)"):
        assert caption in new.text, caption
    assert 'name="csrf_token"' in new.text and 'value="agent:' in new.text  # web-A can run it

    created = form_post(admin, f"/customers/{world.a.customer}/checks", http_form(live))
    assert created.status_code == 303 and created.headers["location"].endswith("#monitoring")
    listing = admin.get(f"/customers/{world.a.customer}/monitoring")
    assert listing.status_code == 200
    row = re.search(r'<tr data-monitor="(\d+)">(.*?)</tr>', listing.text, re.S)
    assert row and "Health endpoint" in row.group(2) and f"{live.url}/healthz" in row.group(2)
    assert "Unknown" in row.group(2)  # not run yet
    monitor = int(row.group(1))
    assert 'hx-get="/customers/' in admin.get(f"/customers/{world.a.customer}").text  # the section loads it
    assert '<option value="tcp">TCP port</option>' in listing.text  # "add check": choose the type

    ran = form_post(admin, f"/monitors/{monitor}/run", {})
    assert ran.status_code == 303 and ran.headers["location"] == f"/monitors/{monitor}"
    detail = admin.get(f"/monitors/{monitor}")
    assert detail.status_code == 200
    result = re.search(r'id="run-result">(.*?)</p>', detail.text, re.S)
    assert result and "Ran now: Up." in result.group(1)
    text = detail.text
    for span in ("Last 24 hours", "Last 7 days", "Last 30 days"):
        assert span in text
    assert "maintenance 0 min (not counted)" in text
    assert re.search(r"100 %", text)  # up since the run, nothing down
    history = text[text.index('id="history"') : text.index('id="maintenance"')]
    assert '<span class="badge ok">Up</span>' in history and "OK" in history
    last = text[text.index('id="last"') : text.index('id="history"')]
    assert "Total" in last and "First byte" in last and "HTTP status" in last
    assert 'data-chart="' in text and f"/api/v1/monitors/{monitor}/metrics" in text
    listing = admin.get(f"/customers/{world.a.customer}/monitoring").text
    assert '<span class="badge ok">Up</span>' in listing and " ms</td>" in listing


def test_bad_url_and_interval_show_field_errors_and_keep_values(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    switch(admin, "en")
    bad = form_post(
        admin,
        f"/customers/{world.a.customer}/checks",
        http_form(live, **{"config.url": "ftp://files.example.com/x", "config.interval_s": "5"}),
    )
    assert bad.status_code == 422
    assert "http:// or https://" in field_error(bad.text, "config.url")
    assert field_error(bad.text, "config.interval_s") == "At least 10."
    assert 'value="ftp://files.example.com/x"' in bad.text and 'value="5"' in bad.text
    assert 'value="Health endpoint"' in bad.text  # the rest of the form is kept too
    assert "Please correct the fields" in bad.text

    switch(admin, "zh-CN")
    timing = form_post(
        admin,
        f"/customers/{world.a.customer}/checks",
        http_form(
            live, **{"config.timeout_s": "30", "config.attempts": "3", "config.failures_to_alert": "4"}
        ),
    )
    assert timing.status_code == 422
    assert field_error(timing.text, "config.failures_to_alert") == "不能多于尝试次数。"
    no_name = form_post(admin, f"/customers/{world.a.customer}/checks", http_form(live, name=""))
    assert no_name.status_code == 422 and field_error(no_name.text, "name") == "必填。"
    assert "Health endpoint" not in admin.get(f"/customers/{world.a.customer}/monitoring").text


@pytest.mark.parametrize(
    ("kind", "fields", "wanted"),
    [
        ("tcp", {"config.host": "127.0.0.1", "config.port": "1"}, "TCP port"),
        ("dns", {"config.name": "example.com", "config.record_type": "A"}, "DNS record"),
        ("tls", {"config.host": "example.com", "config.min_days_left": "14"}, "Certificate (TLS)"),
        ("ping", {"config.host": "127.0.0.1", "config.count": "2"}, "Ping"),
    ],
)
def test_other_types_are_added_from_their_models(
    live: LiveServer, world: World, kind: str, fields: dict[str, str], wanted: str
) -> None:
    admin = live.login(world.admin, PASSWORD)
    switch(admin, "en")
    new = admin.get(f"/customers/{world.a.customer}/checks/new?type={kind}")
    for name in fields:
        assert f'name="{name}"' in new.text
    data = {"type": kind, "name": f"{kind} check", "runs_on": "platform", "enabled": "true", **fields}
    assert form_post(admin, f"/customers/{world.a.customer}/checks", data).status_code == 303
    listing = admin.get(f"/customers/{world.a.customer}/monitoring").text
    assert f"{kind} check" in listing and wanted in listing


def test_toggle_delete_with_confirmation_and_maintenance(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    switch(admin, "en")
    monitor = create_via_api(admin, world.a.customer, f"{live.url}/healthz", "to-remove")
    back = f"/customers/{world.a.customer}#monitoring"
    assert form_post(admin, f"/monitors/{monitor}/toggle", {"next": back}).headers["location"] == back
    assert "Disabled" in admin.get(f"/customers/{world.a.customer}/monitoring").text
    assert form_post(admin, f"/monitors/{monitor}/toggle", {"next": "//evil.example"}).headers[
        "location"
    ] == (f"/monitors/{monitor}")

    wrong = form_post(
        admin,
        f"/monitors/{monitor}/maintenance",
        {"starts_at": "2026-05-02T10:00", "ends_at": "2026-05-02T09:00"},
    )
    assert wrong.status_code == 422 and "The end must be after the start." in wrong.text
    assert 'value="2026-05-02T09:00"' in wrong.text
    added = form_post(
        admin,
        f"/monitors/{monitor}/maintenance",
        {"starts_at": "2099-05-02T10:00", "ends_at": "2099-05-02T12:00", "reason": "kernel upgrade"},
    )
    assert added.status_code == 303
    page = admin.get(f"/monitors/{monitor}").text
    assert "kernel upgrade" in page and "2099-05-02 10:00" in page  # Beijing time, as typed
    windows = admin.get(f"/api/v1/customers/{world.a.customer}/maintenance").json()
    assert windows[0]["starts_at"].startswith("2099-05-02T02:00")  # stored in UTC
    gone = form_post(admin, f"/maintenance/{windows[0]['id']}/delete", {"next": f"/monitors/{monitor}"})
    assert gone.status_code == 303 and "kernel upgrade" not in admin.get(f"/monitors/{monitor}").text

    confirm = admin.get(f"/monitors/{monitor}/delete")
    assert confirm.status_code == 200 and "Delete the check “to-remove”?" in confirm.text
    assert admin.get(f"/monitors/{monitor}").status_code == 200  # asking deletes nothing
    deleted = form_post(admin, f"/monitors/{monitor}/delete", {})
    assert deleted.status_code == 303 and admin.get(f"/monitors/{monitor}").status_code == 404


def test_customer_user_sees_own_check_read_only_and_404_elsewhere(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    mine = create_via_api(admin, world.a.customer, f"{live.url}/healthz", "shop-a homepage")
    theirs = create_via_api(admin, world.b.customer, f"{live.url}/healthz", "shop-b homepage")
    user = live.login(world.a.username, PASSWORD)
    switch(user, "en")
    page = user.get(f"/monitors/{mine}")
    assert page.status_code == 200 and "shop-a homepage" in page.text
    assert "<form" not in main_of(page.text)  # read-only: no run, toggle, delete or maintenance forms
    assert "Last 30 days" in page.text
    for path in (
        f"/monitors/{theirs}",
        f"/assets/{world.b.asset}/host",
        f"/assets/{world.b.asset}/host/status",
    ):
        assert user.get(path).status_code == 404, path
    assert form_post(user, f"/monitors/{mine}/run", {}).status_code == 403
    assert user.get(f"/customers/{world.a.customer}/monitoring").status_code == 404  # staff fragment
    portal = user.get("/portal").text
    assert 'hx-get="/portal/monitoring"' in portal
    monitoring = user.get("/portal/monitoring")
    assert monitoring.status_code == 200
    assert "shop-a homepage" in monitoring.text and "shop-b homepage" not in monitoring.text
    assert f'href="/assets/{world.a.asset}/host"' in monitoring.text and "web-B" not in monitoring.text
    assert "<form" not in monitoring.text
    engineer = live.login(world.engineer_a, PASSWORD)
    assert engineer.get(f"/monitors/{theirs}").status_code == 404
    assert engineer.get(f"/customers/{world.b.customer}/monitoring").status_code == 404
    assert admin.get("/portal/monitoring").status_code == 404


def agent_batch(seq: int, t_ms: int, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "seq": seq,
        "instance": "page-test",
        "t": t_ms,
        "interval": 15,
        "agent": {"version": "0.1.0", "hostname": "web-a-host"},
        "samples": [
            ["cpu_usage_percent", {"mode": "total"}, 23.5],
            ["cpu_usage_percent", {"mode": "user"}, 15.0],
            ["load1", {}, 0.7],
            ["memory_used_percent", {}, 61.0],
            ["fs_used_percent", {"mount": "/", "device": "vda1", "fstype": "ext4"}, 48.0],
        ],
        "events": [],
        "inventory": None,
        "top": None,
        "dropped": 0,
    }
    body.update(over)
    return body


INVENTORY = {
    "hostname": "web-a-host",
    "os": "Debian GNU/Linux 12 (bookworm)",
    "kernel": "6.1.0-18-amd64",
    "arch": "x86_64",
    "cpu_model": "Intel Xeon Gold 6148",
    "cpu_count": 4,
    "memory_bytes": 8 * 1024**3,
    "boot_time": 1_760_000_000,
    "addresses": [{"interface": "eth0", "address": "10.0.0.1"}],
    "listening": [{"proto": "tcp", "address": "0.0.0.0", "port": 443}],
    "users": [
        {"name": "root", "uid": 0, "home": "/root", "shell": "/bin/bash"},
        {"name": "daemon", "uid": 1, "home": "/usr/sbin", "shell": "/usr/sbin/nologin"},
        {"name": "deploy", "uid": 1000, "home": "/home/deploy", "shell": "/bin/bash"},
    ],
}
TOP = {
    "by_cpu": [{"pid": 812, "name": "nginx", "user": "www-data", "cpu_percent": 12.5, "rss_bytes": 52428800}],
    "by_memory": [{"pid": 950, "name": "java", "user": "app", "cpu_percent": 3.0, "rss_bytes": 1073741824}],
}


def send_agent_data(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    token = admin.post(f"/api/v1/assets/{world.a.asset}/agent-tokens", json={"name": "pages"})
    assert token.status_code == 201, token.text
    agent = httpx.Client(
        base_url=live.url,
        headers={"Authorization": f"Bearer {token.json()['token']}", "Content-Encoding": "gzip"},
    )
    now = int(time.time() * 1000)
    events = [
        {"t": now, "kind": "password_changed", "attrs": {"user": "root"}},
        {"t": now, "kind": "hostname_changed", "attrs": {"old": "web-old", "new": "web-a-host"}},
    ]
    first = agent_batch(1, now - 15_000, inventory=INVENTORY, top=TOP)
    for body in (first, agent_batch(2, now, events=events)):
        resp = agent.post("/api/v1/ingest/agent", content=gzip_batch(body))
        assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", ["Up", "The password of user root was changed.", "Listening ports", "CPU (%), by mode"]),
        ("zh-CN", ["在线", "用户 root 的密码已修改。", "监听端口", "CPU（%），按模式"]),
    ],
)
def test_host_page_shows_agent_data(live: LiveServer, world: World, lang: str, words: list[str]) -> None:
    send_agent_data(live, world)
    for username in (world.admin, world.a.username):
        client = live.login(username, PASSWORD)
        switch(client, lang)
        page = client.get(f"/assets/{world.a.asset}/host")
        assert page.status_code == 200, username
        text = page.text
        for word in words:
            assert word in text, (username, word)
        for fact in (
            "Debian GNU/Linux 12",
            "6.1.0-18-amd64",
            "Intel Xeon Gold 6148",
            "8.0 GiB",
            "nginx",
            "java",
        ):
            assert fact in text, fact
        assert "deploy" in text and ">daemon<" not in text  # login users only
        assert "web-old" in text and "443" in text
        assert len(re.findall(r'class="chart-plot" data-chart="', text)) == 7
        assert f"/api/v1/assets/{world.a.asset}/metrics" in text
        status = client.get(f"/assets/{world.a.asset}/host/status")
        assert status.status_code == 200 and words[0] in status.text
    user = live.login(world.a.username, PASSWORD)
    assert "<form" not in main_of(user.get(f"/assets/{world.a.asset}/host").text)
    series = user.get(f"/api/v1/assets/{world.a.asset}/metrics", params={"name": "cpu_usage_percent"})
    assert series.status_code == 200 and {s["labels"]["mode"] for s in series.json()} == {"total", "user"}


def test_host_page_is_for_servers_only_and_says_when_no_agent_reported(
    live: LiveServer, world: World
) -> None:
    admin = live.login(world.admin, PASSWORD)
    switch(admin, "en")
    page = admin.get(f"/assets/{world.a.asset}/host")
    assert page.status_code == 200 and "No agent has reported for this server yet." in page.text
    assert "Unknown" in admin.get(f"/assets/{world.a.asset}/host/status").text
    created = form_post(
        admin,
        f"/customers/{world.a.customer}/assets",
        {"type": "website", "name": "site-A", "url": "https://a.example.com"},
    )
    assert created.status_code == 303
    site = next(
        a for a in admin.get(f"/api/v1/customers/{world.a.customer}/assets").json() if a["name"] == "site-A"
    )
    assert admin.get(f"/assets/{site['id']}/host").status_code == 404
    # a website asset makes its homepage the default of a new http check (R-MON-5)
    new = admin.get(f"/customers/{world.a.customer}/checks/new?type=http").text
    assert 'value="https://a.example.com"' in new
