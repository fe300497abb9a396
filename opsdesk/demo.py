"""The demo world behind `opsdesk demo`: two customers, staff, logins; seeded idempotently.

Seeding is a list of steps run in one audited transaction. Each step finds its rows by a
natural key (customer code, contract number, asset name, username) and adds only what is
missing, so the demo can start any number of times. Later features (a local agent, monitors)
append their own step with `@seed_step`; a step sees what earlier steps made through `Seed`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.accounts import tokens
from opsdesk.accounts.models import User
from opsdesk.accounts.passwords import hash_password, verify_password
from opsdesk.accounts.principal import Role, Scope, cli_principal
from opsdesk.accounts.service import create_user
from opsdesk.core import migrate
from opsdesk.core.calendar import CHINA
from opsdesk.core.config import Settings
from opsdesk.core.db import utcnow
from opsdesk.core.runtime import Runtime, build_runtime
from opsdesk.metrics.store import MetricStore
from opsdesk.tenancy.catalogue import ensure_catalogue
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
    ServiceItem,
    StaffAssignment,
    StaffRole,
)
from opsdesk.tenancy.scoping import bind

LOGINS_FILE = "demo-logins.txt"
AGENT_TOKEN_FILE = "demo-agent.token"
LOCAL_HOST_ASSET = "demo-host"
DEMO_CODE = "DEMO"
OTHER_CODE = "ACME"
M = TypeVar("M")


@dataclass(frozen=True)
class DemoCustomer:
    code: str
    name: str
    language: str
    fee: Decimal
    services: tuple[tuple[str, Decimal], ...]  # catalogue code, price (0 for base services)
    assets: tuple[tuple[AssetType, str, str, str, str], ...]  # type, name, url, ip, notes
    contacts: tuple[tuple[ContactRole, str, str, str, str], ...]  # role, name, phone, email, wechat
    credential: tuple[str, str, str]  # name, username, asset name


CUSTOMERS = (
    DemoCustomer(
        code=DEMO_CODE,
        name="示例科技有限公司 Demo Tech Co.",
        language="zh-CN",
        fee=Decimal("120000.00"),
        services=(
            ("monitoring", Decimal("0")),
            ("incident", Decimal("0")),
            ("daily-ops", Decimal("0")),
            ("db-care", Decimal("0")),
            ("pentest", Decimal("30000.00")),
        ),
        assets=(
            (
                AssetType.server,
                LOCAL_HOST_ASSET,
                "",
                "127.0.0.1",
                "This machine, watched by the demo's local agent",
            ),
            (AssetType.server, "app-server-01", "", "10.10.1.11", "Nginx and the order service"),
            (AssetType.server, "app-server-02", "", "10.10.1.12", "Second application node"),
            (AssetType.website, "homepage", "https://www.example.com", "", "Public company homepage"),
            (AssetType.database, "mysql-primary", "", "10.10.1.21", "MySQL 8.0, orders database"),
            (AssetType.cloud_resource, "oss-backups", "", "", "Object storage bucket for nightly backups"),
        ),
        contacts=(
            (
                ContactRole.primary,
                "张伟 Zhang Wei",
                "13800138000",
                "zhang.wei@demo.example.com",
                "zhangwei-demo",
            ),
            (ContactRole.secondary, "李娜 Li Na", "13900139000", "li.na@demo.example.com", "lina-demo"),
        ),
        credential=("mysql root", "root", "mysql-primary"),
    ),
    DemoCustomer(
        code=OTHER_CODE,
        name="顺达物流 Acme Logistics",
        language="en",
        fee=Decimal("60000.00"),
        services=(("monitoring", Decimal("0")), ("incident", Decimal("0")), ("reports", Decimal("0"))),
        assets=(
            (AssetType.server, "erp-01", "", "192.168.20.5", "ERP application server"),
            (AssetType.website, "tracking-portal", "https://tracking.example.org", "", "Parcel tracking"),
        ),
        contacts=(
            (
                ContactRole.primary,
                "王强 Wang Qiang",
                "13700137000",
                "wang.qiang@acme.example.org",
                "wangq-acme",
            ),
            (
                ContactRole.secondary,
                "赵敏 Zhao Min",
                "13600136000",
                "zhao.min@acme.example.org",
                "zhaomin-acme",
            ),
        ),
        credential=("erp ssh", "opsadmin", "erp-01"),
    ),
)

# username, role, customer code (customer users only), display name
USERS: tuple[tuple[str, Role, str | None, str], ...] = (
    ("admin", Role.admin, None, "Demo administrator"),
    ("engineer", Role.engineer, None, "Demo engineer"),
    ("demo", Role.customer, DEMO_CODE, "示例科技 Demo user"),
)
# customer code, username, role: the provider's people named for each customer (R-TEN-6)
ASSIGNMENTS = ((DEMO_CODE, "admin", StaffRole.project_lead), (DEMO_CODE, "engineer", StaffRole.engineer))


@dataclass(frozen=True)
class Login:
    username: str
    password: str
    role: Role


@dataclass
class Seed:
    """What the steps share: the session, the settings, and the rows made so far."""

    session: Session
    settings: Settings
    passwords: dict[str, str]
    customers: dict[str, Customer] = field(default_factory=dict)
    contracts: dict[str, Contract] = field(default_factory=dict)
    assets: dict[tuple[str, str], Asset] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    metrics: MetricStore | None = None


SeedStep = Callable[[Seed], None]
STEPS: list[SeedStep] = []


def seed_step(step: SeedStep) -> SeedStep:
    """Register a step; steps run in registration order."""
    STEPS.append(step)
    return step


def ensure(session: Session, model: type[M], key: dict[str, Any], **fields: Any) -> M:
    """The row of `model` matching `key`, added with `fields` when there is none."""
    row = session.scalars(select(model).filter_by(**key)).first()
    if row is None:
        row = model(**key, **fields)
        session.add(row)
        session.flush()
    return row


@seed_step
def catalogue(seed: Seed) -> None:
    ensure_catalogue(seed.session)


@seed_step
def customers(seed: Seed) -> None:
    for c in CUSTOMERS:
        seed.customers[c.code] = ensure(
            seed.session, Customer, {"code": c.code}, name=c.name, language=c.language
        )


@seed_step
def contracts(seed: Seed) -> None:
    """A contract for the current year with the chosen services (a new year gets a new contract)."""
    year = date.today().year
    items = {i.code: i for i in seed.session.scalars(select(ServiceItem))}
    for c in CUSTOMERS:
        customer = seed.customers[c.code]
        contract = ensure(
            seed.session,
            Contract,
            {"number": f"HT-{year}-{c.code}"},
            customer_id=customer.id,
            start_date=date(year, 1, 1),
            end_date=date(year, 12, 31),
            auto_renew=True,
            total_fee=c.fee,
            payment_state=PaymentState.paid,
        )
        seed.contracts[c.code] = contract
        for code, price in c.services:
            item = items[code]
            ensure(
                seed.session,
                ContractService,
                {"contract_id": contract.id, "service_item_id": item.id},
                customer_id=customer.id,
                window=item.window,
                price=price,
            )


@seed_step
def assets(seed: Seed) -> None:
    for c in CUSTOMERS:
        customer_id = seed.customers[c.code].id
        for kind, name, url, ip, notes in c.assets:
            seed.assets[c.code, name] = ensure(
                seed.session,
                Asset,
                {"customer_id": customer_id, "name": name},
                type=kind,
                url=url,
                ip=ip,
                notes=notes,
                tags=["demo"],
            )


@seed_step
def contacts(seed: Seed) -> None:
    for c in CUSTOMERS:
        customer_id = seed.customers[c.code].id
        for role, name, phone, email, wechat in c.contacts:
            ensure(
                seed.session,
                Contact,
                {"customer_id": customer_id, "name": name},
                role=role,
                phone=phone,
                email=email,
                wechat=wechat,
            )


@seed_step
def credentials(seed: Seed) -> None:
    for c in CUSTOMERS:
        name, username, asset_name = c.credential
        ensure(
            seed.session,
            Credential,
            {"customer_id": seed.customers[c.code].id, "name": name},
            username=username,
            asset_id=seed.assets[c.code, asset_name].id,
            secret=secrets.token_urlsafe(18),
        )


def _ensure_user(seed: Seed, username: str, role: Role, customer_code: str | None, display: str) -> User:
    """The demo login, created or brought back to the password recorded in the logins file."""
    password = seed.passwords[username]
    user = seed.session.scalars(select(User).where(func.lower(User.username) == username)).first()
    if user is None:
        customer = seed.customers[customer_code] if customer_code else None
        language = customer.language if customer else seed.settings.default_language
        customer_id = customer.id if customer else None
        return create_user(
            seed.session, username, password, role, customer_id, display_name=display, language=language
        )
    if not verify_password(user.password_hash, password):
        user.password_hash = hash_password(password)
    return user


@seed_step
def users(seed: Seed) -> None:
    for username, role, customer_code, display in USERS:
        seed.users[username] = _ensure_user(seed, username, role, customer_code, display)
    for code, username, staff_role in ASSIGNMENTS:
        key = {"customer_id": seed.customers[code].id, "user_id": seed.users[username].id}
        ensure(seed.session, StaffAssignment, key, role=staff_role)


@seed_step
def local_agent_token(seed: Seed) -> None:
    """An agent token for the demo host, kept in the data directory so restarts reuse it."""
    path = seed.settings.data_dir / AGENT_TOKEN_FILE
    asset = seed.assets[DEMO_CODE, LOCAL_HOST_ASSET]
    if path.exists():
        found = tokens.lookup(seed.session, path.read_text().strip())
        if found is not None and found.asset_id == asset.id:
            return
    _row, plain = tokens.issue(
        seed.session, seed.users["admin"], "demo local agent", [Scope.write], asset_id=asset.id
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(plain + "\n")


@seed_step
def local_checks(seed: Seed) -> None:
    """A few checks that work on this machine: the demo server itself, over HTTP and TCP."""
    from opsdesk.monitors.checks import validate
    from opsdesk.monitors.models import Monitor

    customer = seed.customers[DEMO_CODE]
    host = seed.assets[DEMO_CODE, LOCAL_HOST_ASSET]
    port = seed.settings.server.port
    for name, kind, config in (
        ("opsdesk health page", "http", {"url": f"http://127.0.0.1:{port}/healthz", "keyword": "ok"}),
        ("opsdesk port", "tcp", {"host": "127.0.0.1", "port": port}),
    ):
        ensure(
            seed.session,
            Monitor,
            {"customer_id": customer.id, "name": name},
            asset_id=host.id,
            type=kind,
            config=validate(kind, {**config, "interval_s": 30}).model_dump(mode="json"),
        )


@seed_step
def sample_reports(seed: Seed) -> None:
    """A resolved incident with its published fault report, and this month's monthly draft."""
    from opsdesk.alerting.models import Incident, IncidentEvent, IncidentStatus
    from opsdesk.alerting.rules import Severity
    from opsdesk.reports import service as reports
    from opsdesk.reports.models import Report
    from opsdesk.reports.period import month_bounds

    customer = seed.customers[DEMO_CODE]
    host = seed.assets[DEMO_CODE, LOCAL_HOST_ASSET]
    title = "Shop returned 502 for 37 minutes / 商城 502 错误 37 分钟"
    if seed.session.scalars(select(Incident).where(Incident.title == title)).first() is None:
        opened = utcnow() - timedelta(days=2)
        incident = Incident(
            customer_id=customer.id, asset_id=host.id, title=title, severity=Severity.p2,
            status=IncidentStatus.resolved, opened_at=opened, acknowledged_at=opened + timedelta(minutes=3),
            resolved_at=opened + timedelta(minutes=37),
        )  # fmt: skip
        seed.session.add(incident)
        seed.session.flush()
        seed.session.add(IncidentEvent(
            customer_id=customer.id, incident_id=incident.id, at=opened + timedelta(minutes=25),
            kind="comment", actor="engineer", body="php-fpm restarted; pm.max_children raised from 5 to 20.",
        ))  # fmt: skip
        report = reports.fault(seed.session, incident)
        reports.edit(report, {
            "root_cause": "php-fpm ran out of workers under the evening peak (pm.max_children = 5).\n"
                          "晚高峰时 php-fpm 工作进程耗尽（pm.max_children = 5）。",
            "follow_up": "Worker count alert added; capacity review on the 1st of each month.\n"
                         "已增加工作进程数告警；每月 1 日复核容量。",
        })  # fmt: skip
        reports.publish(report, "engineer")
    now = utcnow().astimezone(CHINA)
    start, _end = month_bounds(now.year, now.month)
    drafted = select(Report.id).where(Report.customer_id == customer.id, Report.period_start == start)
    if seed.metrics is not None and seed.session.scalars(drafted).first() is None:  # a rerun changes nothing
        reports.monthly(seed.session, seed.metrics, customer, now.year, now.month)


def _die_with_parent() -> None:
    # uvicorn ends the process by re-raising SIGTERM, past any `finally`: let the kernel stop
    # the agent when the demo goes (Linux prctl PR_SET_PDEATHSIG).
    import ctypes
    import signal

    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def start_local_agent(settings: Settings) -> subprocess.Popen[bytes]:
    """The demo's agent on this machine, pushing to the demo server every 15 s."""
    log = (settings.data_dir / "demo-agent.log").open("ab")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "opsdesk.agent.main",
            "--server",
            f"http://127.0.0.1:{settings.server.port}",
            "--token-file",
            str(settings.data_dir / AGENT_TOKEN_FILE),
            "--state-dir",
            str(settings.data_dir / "demo-agent"),
        ],
        stdout=log,
        stderr=log,
        preexec_fn=_die_with_parent,
    )


def logins_path(data_dir: Path) -> Path:
    return data_dir / LOGINS_FILE


def _read_passwords(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            found[parts[0]] = parts[1]
    return found


def ensure_passwords(data_dir: Path) -> dict[str, str]:
    """Passwords from the logins file; missing ones are generated and the file (0600) rewritten."""
    path = logins_path(data_dir)
    passwords = _read_passwords(path)
    missing = [u for u, *_ in USERS if u not in passwords]
    if missing:
        passwords.update({u: secrets.token_urlsafe(12) for u in missing})
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("# opsdesk demo logins: username password\n")
            fh.writelines(f"{u} {passwords[u]}\n" for u, *_ in USERS)
    os.chmod(path, 0o600)  # also when an older copy was made readable by others
    return passwords


def prepare(settings: Settings) -> Runtime:
    """Migrate the store to head and open it."""
    migrate.upgrade(settings.database_url)
    return build_runtime(settings)


def seed_demo(rt: Runtime) -> list[Login]:
    """Run every seed step in one transaction, audited as the CLI operator; return the logins."""
    passwords = ensure_passwords(rt.settings.data_dir)
    with rt.sessions.begin() as session:
        bind(session, cli_principal(os.getenv("USER") or "cli"))
        seed = Seed(session=session, settings=rt.settings, passwords=passwords, metrics=rt.metrics)
        for step in STEPS:
            step(seed)
    return [Login(username, passwords[username], role) for username, role, *_ in USERS]


def logins_panel(settings: Settings, logins: list[Login]) -> Panel:
    table = Table.grid(padding=(0, 2))
    for login in logins:
        table.add_row(login.role.value, f"username: {login.username}", f"password: {login.password}")
    body = Group(
        Text.assemble("Open ", (settings.public_url, "bold underline"), " and log in as:"),
        Text(""),
        table,
        Text(""),
        Text(f"Customers {DEMO_CODE} and {OTHER_CODE}; 'engineer' and 'demo' see only {DEMO_CODE}."),
        Text(f"Logins are kept in {logins_path(settings.data_dir)}"),
    )
    return Panel(body, title="opsdesk demo", expand=False)
