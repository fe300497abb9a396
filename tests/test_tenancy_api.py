"""Customers, contracts, services, assets and contacts through the REST API, on both stores."""

from __future__ import annotations

from sqlalchemy import func, select

from opsdesk.core.runtime import Runtime
from opsdesk.tenancy.models import Asset
from tests.conftest import LiveServer
from tests.world import PASSWORD, World


def test_customer_lifecycle_and_audit(world: World, live: LiveServer) -> None:
    admin = live.login(world.admin, PASSWORD)
    cust = admin.post("/api/v1/customers", json={"code": "C1", "name": "客户一", "language": "zh-CN"})
    assert cust.status_code == 201, cust.text
    cid = cust.json()["id"]
    contract = admin.post(
        f"/api/v1/customers/{cid}/contracts",
        json={
            "number": "HT-C1",
            "start_date": "2026-01-01",
            "end_date": "2026-12-31",
            "total_fee": "98000.50",
        },
    )
    assert contract.status_code == 201, contract.text
    assert contract.json()["auto_renew"] is True and contract.json()["total_fee"] == "98000.50"
    items = {i["code"]: i for i in admin.get("/api/v1/services").json()}
    assert items["pentest"]["kind"] == "value_added" and items["monitoring"]["window"] == "7x24"
    chosen = admin.post(
        f"/api/v1/contracts/{contract.json()['id']}/services",
        json={"service_item_id": items["daily-ops"]["id"]},
    )
    assert chosen.status_code == 201 and chosen.json()["window"] == "workdays"
    suspended = admin.patch(
        f"/api/v1/contracts/{contract.json()['id']}", json={"status": "suspended", "payment_state": "overdue"}
    )
    assert suspended.json()["status"] == "suspended"
    contact = admin.post(
        f"/api/v1/customers/{cid}/contacts",
        json={
            "role": "primary",
            "name": "王经理",
            "phone": "+86 138 0000 0000",
            "email": "wang@example.cn",
            "qq": "12345",
        },
    )
    assert contact.status_code == 201, contact.text
    log = admin.get("/api/v1/audit", params={"customer_id": cid}).json()
    actions = [(e["action"], e["entity"]) for e in log]
    assert ("create", "customers") in actions and ("update", "contracts") in actions
    update = next(e for e in log if e["entity"] == "contracts" and e["action"] == "update")
    assert update["before"]["status"] == "active" and update["after"]["status"] == "suspended"
    assert update["actor"] == "admin"


def test_invalid_input_gets_clear_errors(world: World, live: LiveServer) -> None:
    admin = live.login(world.admin, PASSWORD)
    base = f"/api/v1/customers/{world.a.customer}"
    bad_ip = admin.post(f"{base}/assets", json={"type": "server", "name": "x", "ip": "300.1.1.1"})
    assert bad_ip.status_code == 422 and bad_ip.json()["detail"][0]["field"] == "ip"
    bad_url = admin.post(f"{base}/assets", json={"type": "website", "name": "y", "url": "ftp://x"})
    assert bad_url.status_code == 422 and "http" in bad_url.json()["detail"][0]["message"]
    bad_type = admin.post(f"{base}/assets", json={"type": "spaceship", "name": "z"})
    assert bad_type.status_code == 422
    period = admin.post(
        f"{base}/contracts", json={"number": "N", "start_date": "2026-05-01", "end_date": "2026-01-01"}
    )
    assert period.status_code == 422 and "end_date" in period.text
    dup = admin.post(f"{base}/assets", json={"type": "server", "name": "web-A"})
    assert dup.status_code == 409


def test_csv_import_all_or_nothing(world: World, live: LiveServer, runtime: Runtime) -> None:
    admin = live.login(world.admin, PASSWORD)
    url = f"/api/v1/customers/{world.a.customer}/assets/import"
    headers = {"content-type": "text/csv"}

    def count() -> int:
        with runtime.sessions() as s:
            return int(
                s.scalar(select(func.count()).select_from(Asset).where(Asset.customer_id == world.a.customer))
                or 0
            )

    before = count()
    bad = (
        "type,name,url,ip,notes,tags\n"
        "server,app-1,,10.0.0.5,,prod;web\n"  # line 2 ok
        "router,app-2,,,,\n"  # line 3 bad type
        "server,app-3,,10.0.0.300,,\n"  # line 4 bad ip
        "website,site,notaurl,,,\n"  # line 5 bad url
        "server,app-1,,,,\n"  # line 6 duplicate in file
        "server,web-A,,,,\n"  # line 7 exists already
        "server,,,,,\n"  # line 8 no name
    )
    resp = admin.post(url, content=bad.encode(), headers=headers)
    assert resp.status_code == 422
    lines = [int(msg.split(":")[0].split()[1]) for msg in resp.json()["detail"]]
    assert lines == [3, 4, 5, 6, 7, 8]
    assert count() == before
    good = "type,name,ip,tags\nserver,app-1,10.0.0.5,prod;web\ndatabase,db-1,10.0.0.6,\nwebsite,www,,\n"
    ok = admin.post(url, content=good.encode(), headers=headers)
    assert ok.status_code == 200 and ok.json() == {"imported": 3}
    assert count() == before + 3
    tagged = [
        a for a in admin.get(f"/api/v1/customers/{world.a.customer}/assets").json() if a["name"] == "app-1"
    ]
    assert tagged[0]["tags"] == ["prod", "web"]


def test_huge_bodies_are_refused_and_nothing_is_stored(
    world: World, live: LiveServer, runtime: Runtime
) -> None:
    client = live.login(world.admin, PASSWORD)
    token = client.post("/api/v1/tokens", json={"name": "bulk", "scopes": ["read", "write"]}).json()["token"]
    rows = "".join(f"server,bulk-{i},,,{'x' * 200},\n" for i in range(60_000))
    resp = client.post(
        f"/api/v1/customers/{world.a.customer}/assets/import",
        content=("type,name,url,ip,notes,tags\n" + rows).encode(),
        headers={"content-type": "text/csv", "Authorization": f"Bearer {token}"},
    )
    assert resp.status_code == 413 and "bytes" in resp.json()["detail"]
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Asset).where(Asset.name.like("bulk-%"))) == 0
