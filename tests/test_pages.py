"""Console and portal pages over real HTTP: roles, languages, forms, secrets and tenant walls."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from opsdesk.accounts.models import User
from opsdesk.core.runtime import Runtime
from tests.conftest import LiveServer, csrf_from
from tests.world import PASSWORD, World


def html_lang(page: httpx.Response) -> str:
    found = re.search(r'<html lang="([^"]+)"', page.text)
    assert found, page.text[:200]
    return found.group(1)


def switch(client: httpx.Client, lang: str) -> None:
    resp = client.post("/lang", data={"lang": lang, "next": "/"})
    assert resp.status_code == 303
    assert resp.cookies.get("lang") == lang


def form_post(client: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    """Post like a browser form: the hidden csrf_token field, no script header."""
    token = client.headers.pop("X-CSRF-Token")
    try:
        return client.post(path, data={**data, "csrf_token": token})
    finally:
        client.headers["X-CSRF-Token"] = token


STAFF_PAGES = ("/customers", "/customers/{a}", "/staff", "/audit")


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", ["Customers", "Assets", "Contracts", "Audit log"]),
        ("zh-CN", ["客户", "资产", "合同", "审计日志"]),
    ],
)
def test_admin_pages_render_in_both_languages(
    live: LiveServer, world: World, lang: str, words: list[str]
) -> None:
    admin = live.login(world.admin, PASSWORD)
    switch(admin, lang)
    for path in (*STAFF_PAGES, "/customers/{b}"):
        page = admin.get(path.format(a=world.a.customer, b=world.b.customer))
        assert page.status_code == 200, path
        assert html_lang(page) == lang
    detail = admin.get(f"/customers/{world.a.customer}").text
    for word in words[:3]:
        assert word in detail
    assert words[3] in admin.get("/audit").text
    # Both customers for the admin, with their contract and asset counts.
    listing = admin.get("/customers").text
    assert "Customer A" in listing and "Customer B" in listing
    assert "HT-2026-A" in listing and 'action="/customers"' in listing  # admin sees "new customer"


@pytest.mark.parametrize("kind", ["assets", "contacts", "contracts", "credentials"])
def test_edit_pages_render(live: LiveServer, world: World, kind: str) -> None:
    admin = live.login(world.admin, PASSWORD)
    ident = getattr(world.a, kind[:-1])
    page = admin.get(f"/{kind}/{ident}/edit")
    assert page.status_code == 200
    assert f'action="/{kind}/{ident}/edit"' in page.text
    assert admin.get(f"/{kind}/{getattr(world.b, kind[:-1])}/edit").status_code == 200


def test_engineer_sees_only_assigned_customer(live: LiveServer, world: World) -> None:
    eng = live.login(world.engineer_a, PASSWORD)
    listing = eng.get("/customers")
    assert listing.status_code == 200
    assert "Customer A" in listing.text and "Customer B" not in listing.text
    assert 'action="/customers"' not in listing.text  # no "new customer" form
    detail = eng.get(f"/customers/{world.a.customer}")
    assert detail.status_code == 200
    assert f'action="/customers/{world.a.customer}/assets"' in detail.text  # may edit assigned
    assert f'action="/customers/{world.a.customer}/staff"' not in detail.text  # assigning is for admins
    for path in (
        f"/customers/{world.b.customer}",
        f"/assets/{world.b.asset}/edit",
        f"/contacts/{world.b.contact}/edit",
    ):
        assert eng.get(path).status_code == 404, path
    assert (
        form_post(eng, f"/customers/{world.b.customer}/assets", {"type": "server", "name": "x"}).status_code
        == 404
    )
    assert eng.get("/staff").status_code == 403
    assert eng.get("/audit").status_code == 403


def test_customer_user_gets_404_on_staff_pages(live: LiveServer, world: World) -> None:
    user = live.login(world.a.username, PASSWORD)
    paths = [
        "/customers",
        f"/customers/{world.a.customer}",
        f"/customers/{world.b.customer}",
        "/staff",
        "/audit",
        f"/assets/{world.a.asset}/edit",
        f"/credentials/{world.a.credential}/edit",
        f"/contracts/{world.a.contract}/edit",
    ]
    for path in paths:
        assert user.get(path).status_code == 404, path
    assert user.get("/").headers["location"] == "/portal"


@pytest.mark.parametrize(("lang", "heading"), [("en", "Maintained assets"), ("zh-CN", "维护的资产")])
def test_portal_shows_own_company_only(
    live: LiveServer, world: World, runtime: Runtime, lang: str, heading: str
) -> None:
    user = live.login(world.a.username, PASSWORD)
    switch(user, lang)
    page = user.get("/portal")
    assert page.status_code == 200
    assert html_lang(page) == lang
    text = page.text
    assert heading in text
    assert "Customer A" in text and "web-A" in text and "HT-2026-A" in text and "Contact A" in text
    assert "eng-a" in text  # the assigned engineer, by name
    assert "web-B" not in text and "Customer B" not in text and "HT-2026-B" not in text
    assert "s3cret" not in text and "********" not in text  # no credentials at all
    emergency = runtime.settings.emergency  # R-CON-1, prominently on the portal itself
    card = text[text.index('class="emergency-card"') : text.index("</section>", text.index("emergency-card"))]
    assert emergency.phone in card and emergency.email in card and emergency.person in card
    assert "<form" in text and 'action="/logout"' in text
    assert 'method="post" action="/customers' not in text  # read-only: no data-entry forms


def test_portal_hides_internal_notes(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    edited = form_post(
        admin,
        f"/assets/{world.a.asset}/edit",
        {"type": "server", "name": "web-A", "ip": "10.0.0.1", "notes": "internal-asset-note", "tags": ""},
    )
    assert edited.status_code == 303
    form_post(
        admin,
        f"/customers/{world.a.customer}/edit",
        {"name": "Customer A", "language": "zh-CN", "notes": "internal-customer-note"},
    )
    assert "internal-asset-note" in admin.get(f"/customers/{world.a.customer}").text
    portal = live.login(world.a.username, PASSWORD).get("/portal").text
    assert "internal-asset-note" not in portal and "internal-customer-note" not in portal


def test_staff_sees_portal_redirect(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    assert admin.get("/portal").headers["location"] == "/customers"
    assert admin.get("/").headers["location"] == "/customers"


def test_create_asset_through_form_shows_in_list_and_audit(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    resp = form_post(
        admin,
        f"/customers/{world.a.customer}/assets",
        {
            "type": "database",
            "name": "pg-main-A",
            "url": "",
            "ip": "10.0.0.7",
            "tags": "prod, pg",
            "notes": "",
        },
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/customers/{world.a.customer}#assets"
    detail = admin.get(f"/customers/{world.a.customer}").text
    assert "pg-main-A" in detail and "10.0.0.7" in detail and ">prod<" in detail
    assert admin.get("/customers").text.count(">2<") >= 1  # A now has two assets
    audit = admin.get("/audit", params={"entity": "assets", "customer_id": str(world.a.customer)})
    assert audit.status_code == 200
    assert "pg-main-A" in audit.text and world.admin in audit.text
    other = admin.get("/audit", params={"customer_id": str(world.b.customer)}).text
    assert "pg-main-A" not in other


def test_bad_ip_shows_error_and_keeps_typed_values(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    switch(admin, "en")
    typed = {
        "type": "website",
        "name": "shop-A",
        "url": "https://shop.example.com",
        "ip": "300.1.2.3",
        "tags": "web, shop",
        "notes": "typed note",
    }
    resp = form_post(admin, f"/customers/{world.a.customer}/assets", typed)
    assert resp.status_code == 422
    text = resp.text
    assert "Not a valid IPv4 or IPv6 address." in text
    assert 'aria-invalid="true"' in text
    for value in (
        'value="shop-A"',
        'value="https://shop.example.com"',
        'value="300.1.2.3"',
        'value="web, shop"',
    ):
        assert value in text, value
    assert ">typed note</textarea>" in text
    assert re.search(r'<option value="website"\s+selected', text)
    # Nothing was stored.
    assert "shop-A" not in admin.get(f"/customers/{world.a.customer}").text


def test_contract_period_error_on_edit(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    switch(admin, "zh-CN")
    resp = form_post(
        admin,
        f"/contracts/{world.a.contract}/edit",
        {
            "end_date": "2025-06-30",
            "total_fee": "100",
            "payment_state": "paid",
            "status": "active",
            "notes": "",
        },
    )
    assert resp.status_code == 422
    assert "结束日期必须晚于开始日期。" in resp.text and 'value="2025-06-30"' in resp.text
    assert "2026-12-31" in admin.get(f"/customers/{world.a.customer}").text  # unchanged


def test_contact_form_and_duplicate_names(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    bad = form_post(
        admin,
        f"/customers/{world.a.customer}/contacts",
        {"role": "secondary", "name": "Li", "phone": "abc", "email": "x", "qq": "12a"},
    )
    assert bad.status_code == 422 and bad.text.count('aria-invalid="true"') == 3
    ok = form_post(
        admin,
        f"/customers/{world.a.customer}/contacts",
        {"role": "secondary", "name": "Li Na", "phone": "139 0000 0000", "wechat": "lina"},
    )
    assert ok.status_code == 303
    dup = form_post(admin, f"/customers/{world.a.customer}/assets", {"type": "server", "name": "web-A"})
    assert dup.status_code == 422 and 'value="web-A"' in dup.text


def test_credentials_never_show_the_secret(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    pages = [f"/customers/{world.a.customer}", f"/credentials/{world.a.credential}/edit"]
    assert "********" in admin.get(pages[0]).text
    for path in pages:
        assert "s3cret-A" not in admin.get(path).text, path
    # Replace the secret, and add one with a mistake: neither comes back in the page.
    resp = form_post(
        admin,
        f"/credentials/{world.a.credential}/edit",
        {"name": "root", "username": "root", "secret": "n3w-s3cret-A", "notes": ""},
    )
    assert resp.status_code == 303
    bad = form_post(
        admin,
        f"/customers/{world.a.customer}/credentials",
        {"name": "", "username": "dba", "secret": "typed-s3cret"},
    )
    assert bad.status_code == 422 and 'value="dba"' in bad.text
    assert "typed-s3cret" not in bad.text
    for path in pages:
        text = admin.get(path).text
        assert "n3w-s3cret-A" not in text and "s3cret-A" not in text
    audit = admin.get("/audit", params={"entity": "credentials"}).text
    assert "n3w-s3cret-A" not in audit and "s3cret-A" not in audit


def test_service_assignment_and_customer_login(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    detail = admin.get(f"/customers/{world.a.customer}").text
    options = re.findall(
        r'<option value="(\d+)"\s*>[^<]*Penetration|<option value="(\d+)"\s*>渗透测试', detail
    )
    item = next(v for pair in options for v in pair if v)
    added = form_post(
        admin,
        f"/contracts/{world.a.contract}/services",
        {"service_item_id": item, "window": "", "price": "8000"},
    )
    assert added.status_code == 303
    page = admin.get(f"/customers/{world.a.customer}").text
    assert "8,000.00" in page
    eng_b_id = re.search(r'<option value="(\d+)"\s*>eng-b', page)
    assert eng_b_id
    assigned = form_post(
        admin, f"/customers/{world.a.customer}/staff", {"user_id": eng_b_id.group(1), "role": "project_lead"}
    )
    assert assigned.status_code == 303
    created = form_post(
        admin,
        f"/customers/{world.a.customer}/users",
        {"username": "user-a2", "password": "long-enough-pw", "language": "en"},
    )
    assert created.status_code == 303
    portal = live.login("user-a2", "long-enough-pw").get("/portal").text
    assert "eng-b" in portal and "Penetration testing" in portal


def test_staff_page_create_and_deactivate(live: LiveServer, world: World, runtime: Runtime) -> None:
    admin = live.login(world.admin, PASSWORD)
    typed = {"username": "lead-x", "role": "project_lead", "language": "en", "display_name": "Lead X"}
    short = form_post(admin, "/staff", {**typed, "password": "short"})
    assert short.status_code == 422
    assert 'value="Lead X"' in short.text and 'value="short"' not in short.text  # passwords are not echoed
    assert form_post(admin, "/staff", {**typed, "password": "long-enough-pw"}).status_code == 303
    page = admin.get("/staff").text
    assert "lead-x" in page and "Lead X" in page
    with runtime.sessions() as s:
        user_id = s.scalars(select(User.id).where(User.username == "lead-x")).one()
    assert f'action="/staff/{user_id}/active"' in page
    assert form_post(admin, f"/staff/{user_id}/active", {"active": "false"}).status_code == 303
    client = live.client()
    token = csrf_from(client.get("/login").text)
    refused = client.post(
        "/login", data={"username": "lead-x", "password": "long-enough-pw", "csrf_token": token}
    )
    assert refused.status_code == 401
    assert live.login(world.engineer_a, PASSWORD).get("/staff").status_code == 403


def test_form_without_csrf_token_is_refused(live: LiveServer, world: World) -> None:
    admin = live.login(world.admin, PASSWORD)
    del admin.headers["X-CSRF-Token"]
    resp = admin.post(f"/customers/{world.a.customer}/assets", data={"type": "server", "name": "sneaky"})
    assert resp.status_code == 403
    wrong = admin.post(
        f"/customers/{world.a.customer}/assets",
        data={"type": "server", "name": "sneaky", "csrf_token": "forged"},
    )
    assert wrong.status_code == 403
    admin.headers["X-CSRF-Token"] = csrf_from(admin.get("/account").text)
    assert "sneaky" not in admin.get(f"/customers/{world.a.customer}").text
