"""The console and the portal in a real browser (Debian's chromium through Playwright).

Screenshots of every main page, in English and Chinese, land in test-artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from opsdesk.accounts.models import User
from opsdesk.core.calendar import ServiceWindow
from opsdesk.core.runtime import Runtime
from opsdesk.tenancy.models import (
    Asset,
    AssetType,
    Contact,
    ContactRole,
    ContractService,
    ServiceItem,
    StaffAssignment,
    StaffRole,
)
from tests.conftest import LiveServer
from tests.world import PASSWORD, World, seed_world

playwright_sync = pytest.importorskip("playwright.sync_api")
Browser = playwright_sync.Browser
Page = playwright_sync.Page

pytestmark = pytest.mark.browser
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LANGS = ("en", "zh-CN")
# Every visible form control must have a label (or an aria-label): the accessibility floor.
UNLABELLED_JS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(e => e.labels.length === 0 && !e.getAttribute('aria-label')).map(e => e.name || e.id)"""


def enrich(rt: Runtime, world: World) -> None:
    """More than the bare test world, so the pages (and their screenshots) look like real use."""
    with rt.sessions.begin() as s:
        a = world.a.customer
        s.add_all(
            [
                Asset(
                    customer_id=a,
                    type=AssetType.website,
                    name="shop-A",
                    url="https://shop.a.example.com",
                    ip="203.0.113.10",
                    tags=["prod", "nginx"],
                    notes="Behind the CDN",
                ),
                Asset(
                    customer_id=a, type=AssetType.database, name="pg-main-A", ip="10.0.0.21", tags=["prod"]
                ),
                Asset(customer_id=a, type=AssetType.cloud_resource, name="oss-backup-A", tags=["backup"]),
                Contact(
                    customer_id=a,
                    role=ContactRole.secondary,
                    name="李娜 Li Na",
                    phone="139 0013 9000",
                    email="li.na@a.example.com",
                    wechat="lina-a",
                    qq="123456",
                ),
            ]
        )
        for code, window in (("daily-ops", ServiceWindow.workdays), ("pentest", ServiceWindow.workdays)):
            item = s.scalars(select(ServiceItem).where(ServiceItem.code == code)).one()
            price = Decimal("8000") if code == "pentest" else Decimal("0")
            s.add(
                ContractService(
                    customer_id=a,
                    contract_id=world.a.contract,
                    service_item_id=item.id,
                    window=window,
                    price=price,
                )
            )
        eng_b = s.scalars(select(User).where(User.username == world.engineer_b)).one()
        eng_b.display_name = "王工 Wang Gong"
        s.add(StaffAssignment(customer_id=a, user_id=eng_b.id, role=StaffRole.project_lead))


@pytest.fixture
def site(sqlite_runtime: Runtime) -> Iterator[tuple[LiveServer, World]]:
    world = seed_world(sqlite_runtime)
    enrich(sqlite_runtime, world)
    with LiveServer(sqlite_runtime) as server:
        yield server, world


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def shot(page: Page, name: str, full: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)


def switch_language(page: Page, lang: str) -> None:
    with page.expect_navigation():
        page.select_option("#lang-switch", lang)
    assert page.get_attribute("html", "lang") == lang


def log_in(page: Page, base: str, username: str, lang: str) -> None:
    page.goto(f"{base}/login")
    if page.get_attribute("html", "lang") != lang:
        switch_language(page, lang)
    assert page.evaluate(UNLABELLED_JS) == []
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("form[action='/login'] button[type=submit]")
    if page.get_attribute("html", "lang") != lang:  # a saved language applies unless one was chosen
        switch_language(page, lang)


def assert_labelled(page: Page) -> None:
    assert page.evaluate(UNLABELLED_JS) == [], page.url


@pytest.mark.parametrize("lang", LANGS)
def test_console_in_a_browser(browser: Browser, site: tuple[LiveServer, World], lang: str) -> None:
    server, world = site
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{server.url}/login")
    switch_language(page, lang)
    shot(page, f"login-{lang}")

    log_in(page, server.url, world.admin, lang)
    assert page.url.endswith("/customers")
    assert page.locator("h1").inner_text() == ("Customers" if lang == "en" else "客户")
    assert page.get_by_role("link", name="Customer B").is_visible()
    assert_labelled(page)
    shot(page, f"customers-{lang}")
    # The first Tab reaches the skip link, and Enter on it moves focus to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    page.get_by_role("link", name="Customer A").click()
    page.wait_for_url(f"**/customers/{world.a.customer}")
    assert page.locator("#assets strong", has_text="shop-A").is_visible()
    assert "s3cret-A" not in page.content()
    assert_labelled(page)

    # Create a contact through the form, finding the fields by their visible labels.
    contacts = page.locator("#contacts")
    contacts.locator("summary").click()
    form = page.locator("#contact-form")
    name_label, phone_label = ("Name", "Phone") if lang == "en" else ("姓名", "电话")
    form.get_by_label(name_label).fill(f"Zhao Min {lang}")
    form.get_by_label(phone_label).fill("137 0000 1111")
    form.get_by_label("Email" if lang == "en" else "邮箱").fill("zhao.min@a.example.com")
    form.get_by_label("WeChat" if lang == "en" else "微信").fill("zhaomin")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    assert page.locator("p.alert.ok").is_visible()
    assert contacts.locator("strong", has_text=f"Zhao Min {lang}").is_visible()
    shot(page, f"customer-{lang}")

    # Edit an asset on its own page: the change shows up in the audit log as before -> after.
    page.goto(f"{server.url}/assets/{world.a.asset}/edit")
    assert_labelled(page)
    page.fill("#asset-ip", "10.0.0.99")
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert page.locator("#assets").get_by_text("10.0.0.99").is_visible()

    page.goto(f"{server.url}/audit")
    audit = page.locator("table.audit")
    assert audit.get_by_text(f"Zhao Min {lang}").first.is_visible()
    assert audit.locator("del", has_text="10.0.0.1").first.is_visible()
    assert audit.locator("ins", has_text="10.0.0.99").first.is_visible()
    assert_labelled(page)
    shot(page, f"audit-{lang}")
    page.goto(f"{server.url}/staff")
    assert_labelled(page)
    shot(page, f"staff-{lang}")
    context.close()


def test_language_switch_keeps_the_page(browser: Browser, site: tuple[LiveServer, World]) -> None:
    server, world = site
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, server.url, world.admin, "en")
    page.goto(f"{server.url}/customers/{world.a.customer}")
    assert page.locator("#assets-title").inner_text().startswith("Assets")
    switch_language(page, "zh-CN")
    assert page.url.endswith(f"/customers/{world.a.customer}")
    assert page.locator("#assets-title").inner_text().startswith("资产")
    switch_language(page, "en")
    assert page.locator("#assets-title").inner_text().startswith("Assets")
    context.close()


@pytest.mark.parametrize("lang", LANGS)
def test_portal_in_a_browser(browser: Browser, site: tuple[LiveServer, World], lang: str) -> None:
    server, world = site
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    log_in(page, server.url, world.a.username, lang)
    assert page.url.endswith("/portal")
    text = page.locator("main").inner_text()
    for name in ("web-A", "shop-A", "pg-main-A", "Customer A", "王工 Wang Gong"):
        assert name in text
    assert "web-B" not in text and "Customer B" not in text and "Behind the CDN" not in text
    assert page.locator(".emergency-card").is_visible()
    assert page.locator("main form").count() == 0  # read-only
    shot(page, f"portal-{lang}")

    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    mobile = phone.new_page()
    log_in(mobile, server.url, world.a.username, lang)
    # Nothing wider than the screen except inside the scrollable table wrappers.
    overflow = mobile.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0
    shot(mobile, f"portal-phone-{lang}", full=False)
    shot(mobile, f"portal-phone-full-{lang}")
    phone.close()
    context.close()


def test_customer_user_cannot_open_the_console(browser: Browser, site: tuple[LiveServer, World]) -> None:
    server, world = site
    context = browser.new_context()
    page = context.new_page()
    log_in(page, server.url, world.a.username, "en")
    response = page.goto(f"{server.url}/customers/{world.b.customer}")
    assert response is not None and response.status == 404
    assert "web-B" not in page.content()
    context.close()
