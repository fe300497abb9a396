"""Reports in Debian's chromium: an engineer drafts and publishes October's report, the customer
finds it in the portal and downloads the PDF. Screenshots: docs/screenshots/report-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from opsdesk.core.runtime import Runtime
from tests.conftest import LiveServer
from tests.reports.test_reports import pdf_text, seed_october
from tests.test_pages_browser import LANGS, assert_labelled, browser, log_in
from tests.world import World, seed_world

playwright_sync = pytest.importorskip("playwright.sync_api")
Browser = playwright_sync.Browser

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the shared chromium fixture
DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SUMMARY = {"en": "October ran smoothly apart from a 6-hour outage of the shop on 10 October (upstream CDN).",
           "zh-CN": "十月整体运行平稳，仅 10 月 10 日商城因上游 CDN 故障中断 6 小时。"}  # fmt: skip


@pytest.fixture
def site(sqlite_runtime: Runtime) -> Iterator[tuple[LiveServer, World]]:
    world = seed_world(sqlite_runtime)
    seed_october(sqlite_runtime, world)
    with LiveServer(sqlite_runtime) as server:
        yield server, world


@pytest.mark.parametrize("lang", LANGS)
def test_engineer_publishes_and_customer_downloads(
    browser: Browser, site: tuple[LiveServer, World], lang: str, tmp_path: Path
) -> None:
    server, world = site
    staff = browser.new_context(viewport={"width": 1280, "height": 900})
    page = staff.new_page()
    log_in(page, server.url, world.engineer_a, lang)
    page.goto(f"{server.url}/reports")
    assert_labelled(page)
    page.select_option("#monthly-customer_id", str(world.a.customer))
    page.fill("#monthly-month", "2026-10")
    with page.expect_navigation():
        page.click("form[action='/reports/monthly'] button[type=submit]")
    assert "/reports/" in page.url
    report_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    preview = page.frame_locator("iframe.report-preview")
    assert "64.52%" in preview.locator("body").inner_text()
    page.fill("#text-summary", SUMMARY[lang])
    with page.expect_navigation():
        page.click(f"form[action='/reports/{report_id}/edit'] button[type=submit]")
    assert_labelled(page)
    page.screenshot(path=str(DOCS_SHOTS / f"report-draft-{lang}.png"), full_page=False)
    with page.expect_navigation():
        page.click(f"form[action='/reports/{report_id}/publish'] button[type=submit]")
    assert page.locator(f"form[action='/reports/{report_id}/edit']").count() == 0  # frozen
    document = staff.new_page()
    document.set_viewport_size({"width": 900, "height": 1200})
    document.goto(f"{server.url}/api/v1/reports/{report_id}/html?lang={lang}")
    assert SUMMARY[lang] in document.locator("body").inner_text()
    document.screenshot(path=str(DOCS_SHOTS / f"report-monthly-{lang}.png"), full_page=False)
    staff.close()

    customer = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, accept_downloads=True
    )
    portal = customer.new_page()
    log_in(portal, server.url, world.a.username, lang)
    section = portal.locator("#reports")
    section.locator(f"a[href='/reports/{report_id}']").wait_for()
    overflow = portal.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0  # usable on a phone
    with portal.expect_download() as info:
        section.locator(f"a[href='/api/v1/reports/{report_id}/pdf?lang=zh-CN']").click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert saved.name.startswith("monthly-report-") and saved.name.endswith("-zh-CN.pdf")
    text = pdf_text(saved.read_bytes())
    assert "月度运维报告" in text and "64.52%" in text and SUMMARY[lang][:8] in text
    assert "Incident B" not in portal.locator("main").inner_text()
    customer.close()
