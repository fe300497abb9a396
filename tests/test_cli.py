"""The `opsdesk` command: migrations, administration (audited), asset import, tokens, the demo."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, func, inspect, select
from typer.testing import CliRunner, Result

from opsdesk import demo
from opsdesk.accounts.models import ApiToken, User
from opsdesk.accounts.passwords import verify_password
from opsdesk.accounts.principal import Role
from opsdesk.audit.models import AuditEntry
from opsdesk.cli import app
from opsdesk.core import migrate
from opsdesk.core.calendar import ServiceWindow
from opsdesk.core.config import load_settings
from opsdesk.core.runtime import Runtime, build_runtime
from opsdesk.models import Base
from opsdesk.tenancy.models import (
    Asset,
    AssetType,
    Contact,
    ContactRole,
    Contract,
    ContractService,
    Credential,
    Customer,
    PaymentState,
    ServiceKind,
    StaffAssignment,
    StaffRole,
)
from tests.conftest import LiveServer, csrf_from, free_port

PASSWORD = "correct-horse-battery"
OPSDESK = Path(sys.executable).with_name("opsdesk")


@pytest.fixture(autouse=True)
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Each test gets its own data directory (SQLite file and keys) and a known operator name."""
    for name in list(os.environ):
        if name.startswith("OPSDESK_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OPSDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("USER", "tester")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def cli(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def ok(*args: str, input: str | None = None) -> Result:
    result = cli(*args, input=input)
    assert result.exit_code == 0, f"{args}: {result.output}"
    return result


@pytest.fixture
def migrated() -> None:
    ok("db", "upgrade")


@pytest.fixture
def rt(migrated: None) -> Iterator[Runtime]:
    """A runtime on the same SQLite file and keys the CLI uses."""
    runtime = build_runtime(load_settings())
    yield runtime
    runtime.close()


def count(rt: Runtime, model: type[Base]) -> int:
    with rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def head() -> str:
    from alembic.script import ScriptDirectory

    rev = ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()
    assert rev is not None
    return rev


# --- database --------------------------------------------------------------------------------


def test_db_upgrade_current_downgrade(data_dir: Path) -> None:
    url = f"sqlite:///{data_dir / 'opsdesk.db'}"
    assert ok("db", "current").output.startswith("base")
    ok("db", "upgrade")
    assert {"customers", "assets", "users", "audit_log"} <= tables(url)
    assert ok("db", "current").output.strip() == f"{head()} (head)"
    ok("db", "downgrade", "--revision", "base")
    assert tables(url) <= {"alembic_version"}
    assert ok("db", "current").output.startswith("base")


def test_downgrade_needs_a_revision() -> None:
    result = cli("db", "downgrade")
    assert result.exit_code == 2
    assert "--revision" in result.output


def test_unknown_revision_is_one_line(migrated: None) -> None:
    result = cli("db", "downgrade", "--revision", "nonsense")
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: ") and "nonsense" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_database_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSDESK_DATABASE__URL", "postgresql+psycopg://ops:Pw-9b7c5a@127.0.0.1:1/opsdesk")
    result = cli("db", "current")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: database postgresql+psycopg://ops:***@127.0.0.1:1")
    assert "Pw-9b7c5a" not in result.output


def test_unmigrated_database_says_so() -> None:
    result = cli("admin", "create-customer", "ACME", "Acme")
    assert result.exit_code == 2
    assert "opsdesk db upgrade" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# --- administration --------------------------------------------------------------------------


def test_admin_commands_work_and_are_audited(rt: Runtime) -> None:
    ok("admin", "create-customer", "ACME", "Acme Logistics", "--language", "en")
    ok(
        "admin",
        "create-staff",
        "alice",
        "--role",
        "engineer",
        "--password",
        PASSWORD,
        "--name",
        "Alice Li",
        "--email",
        "alice@example.com",
    )
    ok("admin", "assign", "ACME", "alice", "--role", "project_lead")
    ok("admin", "create-customer-user", "ACME", "bob", "--password", PASSWORD)

    with rt.sessions() as s:
        acme = s.scalars(select(Customer).where(Customer.code == "ACME")).one()
        alice = s.scalars(select(User).where(User.username == "alice")).one()
        bob = s.scalars(select(User).where(User.username == "bob")).one()
        assignment = s.scalars(select(StaffAssignment)).one()
        entries = s.scalars(select(AuditEntry)).all()
    assert (acme.name, acme.language) == ("Acme Logistics", "en")
    assert (alice.role, alice.display_name, alice.email, alice.customer_id) == (
        Role.engineer,
        "Alice Li",
        "alice@example.com",
        None,
    )
    assert verify_password(alice.password_hash, PASSWORD)
    assert (bob.role, bob.customer_id, bob.language) == (Role.customer, acme.id, "en")
    assert (assignment.customer_id, assignment.user_id, assignment.role) == (
        acme.id,
        alice.id,
        StaffRole.project_lead,
    )

    created = {(e.entity, e.entity_id) for e in entries if e.action == "create"}
    assert {("customers", acme.id), ("users", alice.id), ("users", bob.id)} <= created
    assert ("staff_assignments", assignment.id) in created
    assert {e.actor for e in entries} == {"cli:tester"}
    assert all(e.after is None or e.after.get("password_hash") in (None, "********") for e in entries)


def test_assign_again_changes_the_role(rt: Runtime) -> None:
    ok("admin", "create-customer", "ACME", "Acme")
    ok("admin", "create-staff", "alice", "--role", "engineer", "--password", PASSWORD)
    ok("admin", "assign", "ACME", "alice")
    ok("admin", "assign", "ACME", "alice", "--role", "project_lead")
    with rt.sessions() as s:
        rows = s.scalars(select(StaffAssignment)).all()
    assert [r.role for r in rows] == [StaffRole.project_lead]


def test_create_staff_prompts_twice_for_a_hidden_password(rt: Runtime) -> None:
    result = ok("admin", "create-staff", "carol", "--role", "admin", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert PASSWORD not in result.output  # hidden input is not echoed
    with rt.sessions() as s:
        carol = s.scalars(select(User).where(User.username == "carol")).one()
    assert carol.role is Role.admin and verify_password(carol.password_hash, PASSWORD)


def test_create_staff_with_mismatching_passwords_creates_nobody(rt: Runtime) -> None:
    result = cli("admin", "create-staff", "carol", "--role", "admin", input=f"{PASSWORD}\nsomething-else\n")
    assert result.exit_code != 0
    assert count(rt, User) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("admin", "create-customer-user", "NOPE", "dave", "--password", PASSWORD),
            "no customer with code 'NOPE'",
        ),
        (("admin", "assign", "NOPE", "alice"), "no customer with code 'NOPE'"),
        (("admin", "assign", "ACME", "nobody"), "no user named 'nobody'"),
        (("admin", "assign", "ACME", "bob"), "'bob' is a customer user"),
        (
            ("admin", "create-staff", "ALICE", "--role", "engineer", "--password", PASSWORD),
            "'ALICE' is taken",
        ),
        (
            ("admin", "create-staff", "erin", "--role", "engineer", "--password", "short"),
            "at least 8 characters",
        ),
        (("admin", "create-customer", "ACME", "Again"), "customer code 'ACME' is taken"),
        (("admin", "create-customer", "no spaces", "X"), "code: String should match pattern"),
        (("admin", "import-assets", "NOPE", "assets.csv"), "no customer with code 'NOPE'"),
        (("admin", "issue-token", "nobody", "--name", "x"), "no user named 'nobody'"),
        (("admin", "revoke-token", "999"), "no token with id 999"),
    ],
)
def test_operator_errors_are_one_line_exit_1(
    rt: Runtime, data_dir: Path, args: tuple[str, ...], message: str
) -> None:
    ok("admin", "create-customer", "ACME", "Acme")
    ok("admin", "create-staff", "alice", "--role", "engineer", "--password", PASSWORD)
    ok("admin", "create-customer-user", "ACME", "bob", "--password", PASSWORD)
    (data_dir / "assets.csv").write_text("type,name\nserver,a\n")
    users_before = count(rt, User)
    result = cli(*args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output
    assert count(rt, User) == users_before


# --- asset import ----------------------------------------------------------------------------

GOOD_CSV = """type,name,url,ip,notes,tags
server,app-01,,10.0.0.11,Nginx,prod;web
server,app-02,,10.0.0.12,,prod
website,homepage,https://www.example.com,,,
database,orders-db,,10.0.0.21,MySQL 8,db
"""

BAD_CSV = """type,name,url,ip,notes,tags
server,fine-01,,10.0.0.31,,
router,r-1,,,,
server,db-2,,999.1.1.1,,
website,site,ftp://files.example.com,,,
server,fine-01,,10.0.0.32,,
server,,,10.0.0.33,,
server,app-01,,10.0.0.34,,
"""


def test_import_assets_good_csv(rt: Runtime, data_dir: Path) -> None:
    ok("admin", "create-customer", "ACME", "Acme")
    (data_dir / "good.csv").write_text(GOOD_CSV, encoding="utf-8")
    result = ok("admin", "import-assets", "ACME", str(data_dir / "good.csv"))
    assert "imported 4 asset(s)" in result.output
    with rt.sessions() as s:
        assets = {a.name: a for a in s.scalars(select(Asset))}
        entries = s.scalars(select(AuditEntry).where(AuditEntry.entity == "assets")).all()
    assert set(assets) == {"app-01", "app-02", "homepage", "orders-db"}
    assert (
        assets["homepage"].type is AssetType.website and assets["homepage"].url == "https://www.example.com"
    )
    assert assets["app-01"].tags == ["prod", "web"]
    assert len(entries) == 4 and {e.actor for e in entries} == {"cli:tester"}


def test_import_assets_bad_rows_lists_each_and_imports_nothing(rt: Runtime, data_dir: Path) -> None:
    ok("admin", "create-customer", "ACME", "Acme")
    (data_dir / "good.csv").write_text(GOOD_CSV, encoding="utf-8")
    ok("admin", "import-assets", "ACME", str(data_dir / "good.csv"))
    before = count(rt, Asset)
    (data_dir / "bad.csv").write_text(BAD_CSV, encoding="utf-8")

    result = cli("admin", "import-assets", "ACME", str(data_dir / "bad.csv"))

    assert result.exit_code == 1
    errors = {int(m[1]): m[2] for m in re.finditer(r"^line (\d+): (.*)$", result.stderr, re.MULTILINE)}
    assert sorted(errors) == [3, 4, 5, 6, 7, 8], result.stderr
    assert errors[3].startswith("type:")
    assert errors[4].startswith("ip:")
    assert errors[5].startswith("url:")
    assert "fine-01" in errors[6]  # repeated within the file
    assert errors[7].startswith("name:")
    assert "app-01" in errors[8]  # already exists for this customer
    assert "error: nothing imported: 6 bad row(s)" in result.stderr
    assert count(rt, Asset) == before
    with rt.sessions() as s:
        assert s.scalars(select(Asset).where(Asset.name == "fine-01")).first() is None


def test_import_assets_names_are_per_customer(rt: Runtime, data_dir: Path) -> None:
    ok("admin", "create-customer", "ACME", "Acme")
    ok("admin", "create-customer", "BETA", "Beta")
    (data_dir / "good.csv").write_text(GOOD_CSV, encoding="utf-8")
    ok("admin", "import-assets", "ACME", str(data_dir / "good.csv"))
    ok("admin", "import-assets", "BETA", str(data_dir / "good.csv"))
    assert count(rt, Asset) == 8


# --- API tokens ------------------------------------------------------------------------------


def token_from(result: Result) -> str:
    found = [line for line in result.stdout.splitlines() if line.startswith("odk_")]
    assert len(found) == 1, result.output
    return found[0]


def test_issue_token_authenticates_then_revoke_refuses(rt: Runtime) -> None:
    ok("admin", "create-staff", "alice", "--role", "engineer", "--password", PASSWORD)
    issued = ok(
        "admin", "issue-token", "alice", "--name", "ci-bot", "--scope", "read", "--expires-days", "30"
    )
    plain = token_from(issued)
    assert issued.stdout.strip() == plain  # the details go to stderr, so $(...) captures just the token
    with rt.sessions() as s:
        row = s.scalars(select(ApiToken)).one()
    assert row.scopes == ["read"] and row.expires_at is not None
    assert (row.expires_at.date() - date.today()).days in (29, 30)

    listed = ok("admin", "list-tokens", "alice").output
    assert "ci-bot" in listed and row.prefix in listed
    assert plain not in listed and plain[len(row.prefix) :] not in listed

    with LiveServer(rt) as live, live.client() as http:
        me = http.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "alice"
        ok("admin", "revoke-token", str(row.id))
        again = http.get("/api/v1/me", headers={"Authorization": f"Bearer {plain}"})
        assert again.status_code == 401
    assert "revoked" in ok("admin", "list-tokens").output


def test_issue_token_defaults_to_read_and_accepts_write(rt: Runtime) -> None:
    ok("admin", "create-staff", "alice", "--role", "engineer", "--password", PASSWORD)
    ok("admin", "issue-token", "alice", "--name", "reader")
    ok("admin", "issue-token", "alice", "--name", "writer", "--scope", "read", "--scope", "write")
    with rt.sessions() as s:
        scopes = {t.name: t.scopes for t in s.scalars(select(ApiToken))}
    assert scopes == {"reader": ["read"], "writer": ["read", "write"]}


# --- the demo --------------------------------------------------------------------------------

SEEDED = (Customer, Contract, ContractService, Asset, Contact, Credential, User, StaffAssignment)


def test_demo_seed_is_idempotent_and_complete(rt: Runtime, data_dir: Path) -> None:
    first = demo.seed_demo(rt)
    counts = {m.__name__: count(rt, m) for m in SEEDED}
    audited = count(rt, AuditEntry)
    second = demo.seed_demo(rt)

    assert second == first
    assert {m.__name__: count(rt, m) for m in SEEDED} == counts
    assert count(rt, AuditEntry) == audited  # nothing changed, so nothing recorded
    assert counts["Customer"] == 2 and counts["User"] == 3

    logins = data_dir / demo.LOGINS_FILE
    assert stat.S_IMODE(logins.stat().st_mode) == 0o600
    for login in first:
        assert f"{login.username} {login.password}" in logins.read_text()

    with rt.sessions() as s:
        entries = s.scalars(select(AuditEntry)).all()
        customer = s.scalars(select(Customer).where(Customer.code == demo.DEMO_CODE)).one()
        contract = s.scalars(select(Contract).where(Contract.customer_id == customer.id)).one()
        services = s.scalars(select(ContractService).where(ContractService.contract_id == contract.id)).all()
        assets = s.scalars(select(Asset).where(Asset.customer_id == customer.id)).all()
        contacts = s.scalars(select(Contact).where(Contact.customer_id == customer.id)).all()
        credentials = s.scalars(select(Credential).where(Credential.customer_id == customer.id)).all()
        engineer = s.scalars(select(User).where(User.username == "engineer")).one()
        assignments = s.scalars(select(StaffAssignment).where(StaffAssignment.user_id == engineer.id)).all()
        customer_user = s.scalars(select(User).where(User.username == "demo")).one()
        kinds = {cs.item.kind for cs in services}
    assert entries and {e.actor for e in entries} == {"cli:tester"}
    year = date.today().year
    assert (contract.start_date, contract.end_date) == (date(year, 1, 1), date(year, 12, 31))
    assert contract.auto_renew and contract.payment_state is PaymentState.paid and contract.total_fee > 0
    assert ServiceKind.value_added in kinds and ServiceKind.base in kinds
    assert ServiceWindow.workdays in {cs.window for cs in services}
    assert 4 <= len(assets) <= 6
    assert {AssetType.server, AssetType.website, AssetType.database} <= {a.type for a in assets}
    assert "https://www.example.com" in {a.url for a in assets}
    assert all(a.ip.startswith(("10.", "127.")) for a in assets if a.type is AssetType.server)
    assert {c.role for c in contacts} == {ContactRole.primary, ContactRole.secondary}
    assert len(credentials) == 1 and credentials[0].secret  # decrypts with the configured key
    assert [a.customer_id for a in assignments] == [customer.id]
    assert customer_user.role is Role.customer and customer_user.customer_id == customer.id


def test_demo_logins_work_and_isolation_is_visible(rt: Runtime) -> None:
    logins = {login.username: login for login in demo.seed_demo(rt)}
    assert set(logins) == {"admin", "engineer", "demo"}
    with LiveServer(rt) as live:
        seen = {}
        for username, login in logins.items():
            client = live.login(username, login.password)
            try:
                me = client.get("/api/v1/me")
                assert me.status_code == 200 and me.json()["username"] == username
                seen[username] = {c["code"] for c in client.get("/api/v1/customers").json()}
            finally:
                client.close()
        with live.client() as anon:
            page = anon.get("/login")
            bad = anon.post(
                "/login",
                data={"username": "admin", "password": "wrong-password", "csrf_token": csrf_from(page.text)},
            )
            assert bad.status_code == 401
    assert seen["admin"] == {demo.DEMO_CODE, demo.OTHER_CODE}
    assert seen["engineer"] == seen["demo"] == {demo.DEMO_CODE}


def test_demo_passwords_survive_a_lost_database(data_dir: Path) -> None:
    """A deleted database with the logins file kept: the re-created users get the printed passwords."""
    s = load_settings()
    rt = demo.prepare(s)
    first = demo.seed_demo(rt)
    rt.close()
    (data_dir / "opsdesk.db").unlink()
    rt = demo.prepare(s)
    try:
        assert demo.seed_demo(rt) == first
        with rt.sessions() as session:
            admin = session.scalars(select(User).where(User.username == "admin")).one()
        assert verify_password(admin.password_hash, first[0].password)
    finally:
        rt.close()


def test_demo_command_seed_only_reprints_the_same_logins(data_dir: Path) -> None:
    outputs = [ok("demo", "--seed-only").stdout for _ in range(2)]
    stored = dict(
        line.split()
        for line in (data_dir / demo.LOGINS_FILE).read_text().splitlines()
        if not line.startswith("#")
    )
    for output in outputs:
        assert "http://127.0.0.1:8080" in output
        for username, password in stored.items():
            assert re.search(rf"username: {username}\s+password: {re.escape(password)}", output), output


def test_demo_starts_end_to_end(tmp_path: Path) -> None:
    """What `make demo` does: a fresh data directory, seeded, served; the printed admin login works."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSDESK_")}
    env |= {
        "OPSDESK_DATA_DIR": str(tmp_path / "var"),
        "OPSDESK_SERVER__PORT": str(port),
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "demo.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(OPSDESK), "demo"], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until_up(proc, f"{base}/login", log)
        text = log.read_text()
        assert base in text
        found = re.search(r"username: admin\s+password: (\S+)", text)
        assert found, text
        with httpx.Client(base_url=base, timeout=10) as client:
            page = client.get("/login")
            resp = client.post(
                "/login",
                data={"username": "admin", "password": found[1], "csrf_token": csrf_from(page.text)},
            )
            assert resp.status_code == 303, resp.text
            assert client.get("/api/v1/me").json()["username"] == "admin"
            # the demo's local agent reports this machine as the DEMO customer's "demo-host"
            demo_id = next(c["id"] for c in client.get("/api/v1/customers").json() if c["code"] == "DEMO")

            def demo_host_up() -> bool:
                hosts = client.get(f"/api/v1/customers/{demo_id}/hosts").json()
                return any(h["name"] == "demo-host" and h["status"] == "up" for h in hosts)

            deadline = time.monotonic() + 60
            while not demo_host_up():
                assert time.monotonic() < deadline, "the demo's local agent did not report within 60 s"
                time.sleep(1)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def wait_until_up(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"opsdesk demo exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"{url} did not answer 200 within {timeout} s:\n{log.read_text()}")


def test_renew_contracts_command(rt: Runtime) -> None:
    ok("admin", "create-customer", "RC", "Renew Co")
    with rt.sessions.begin() as s:
        cid = s.scalars(select(Customer.id).where(Customer.code == "RC")).one()
        s.add(
            Contract(customer_id=cid, number="RC-1", start_date=date(2024, 1, 1), end_date=date(2024, 12, 31))
        )
    result = ok("admin", "renew-contracts", "--today", "2026-11-24")
    assert "renewed 1: RC-1" in result.stdout
    with rt.sessions() as s:
        assert s.scalars(select(Contract.end_date)).one() == date(2026, 12, 31)
        entry = s.scalars(select(AuditEntry).where(AuditEntry.entity == "contracts")).all()[-1]
    assert entry.actor == "cli:tester" and entry.after == {"end_date": "2026-12-31"}
    assert cli("admin", "renew-contracts", "--today", "yesterday").exit_code == 1
