"""The `opsdesk` command: server, demo, database migrations, administration, configuration.

Every failure the operator can fix ends as one line `error: ...` on stderr and a non-zero exit
code (2 for configuration and database reachability, 1 for everything else), never a traceback.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session
from typer.core import TyperGroup

from opsdesk import demo as demo_world
from opsdesk.accounts import tokens
from opsdesk.accounts.models import ApiToken, User
from opsdesk.accounts.passwords import WeakPassword
from opsdesk.accounts.principal import STAFF_ROLES, Role, Scope, cli_principal
from opsdesk.accounts.service import UsernameTaken, create_user
from opsdesk.core import migrate
from opsdesk.core.config import ConfigError, Settings, load_settings, mask_url, masked_dump
from opsdesk.core.db import utcnow
from opsdesk.core.runtime import build_runtime
from opsdesk.reports.batch import monthly_reports
from opsdesk.reports.period import BadMonth, parse_month, previous_month
from opsdesk.tenancy.asset_import import ImportFailed, import_assets
from opsdesk.tenancy.models import Customer, StaffAssignment, StaffRole
from opsdesk.tenancy.schemas import CustomerIn
from opsdesk.tenancy.scoping import bind

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class CliError(Exception):
    """A problem the operator can fix; printed as one line, exit code `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text.strip())


def _database_message(exc: DBAPIError) -> str:
    reason = _first_line(str(exc.orig))
    if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
        return f"the database is not migrated ({reason}); run `opsdesk db upgrade`"
    url = _loaded_url()
    return f"database {url}: {reason}" if url else f"database: {reason}"


def _message_and_code(exc: Exception) -> tuple[str, int] | None:
    """One line and an exit code for the failures we expect, None for real bugs."""
    if isinstance(exc, CliError):
        return str(exc), exc.code
    if isinstance(exc, ConfigError | SettingsError):
        return _first_line(str(exc)), 2
    if isinstance(exc, IntegrityError):
        return f"conflicts with an existing record: {_first_line(str(exc.orig))}", 1
    if isinstance(exc, DBAPIError):
        return _database_message(exc), 2
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        return f"{field}: {first['msg']}", 1
    if isinstance(exc, UsernameTaken | WeakPassword | CommandError):
        return _first_line(str(exc)), 1
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), 2
    return None


class _Group(TyperGroup):
    """Turns expected failures of any sub-command into `error: ...` and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            found = _message_and_code(exc)
            if found is None:
                raise
            message, code = found
            err.print(f"error: {message}", markup=False, soft_wrap=True)
            raise typer.Exit(code) from None


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="opsdesk: the operations service platform.",
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema migrations.")
admin_app = typer.Typer(no_args_is_help=True, help="Staff, customers, users, assets and API tokens.")
report_app = typer.Typer(
    no_args_is_help=True, help="Monthly operations reports (fault reports: console and API)."
)
config_app = typer.Typer(no_args_is_help=True, help="Inspect the configuration.")
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(config_app, name="config")
app.add_typer(report_app, name="report")


@dataclass
class State:
    """Per invocation: the --config path, and the settings once loaded."""

    config: Path | None = None
    settings: Settings | None = None


_state = State()


def settings() -> Settings:
    """Loaded on first use, so `--help` works even with a broken configuration."""
    if _state.settings is None:
        _state.settings = load_settings(_state.config)
    return _state.settings


def _loaded_url() -> str | None:
    return mask_url(_state.settings.database_url) if _state.settings else None


@app.callback()
def root(
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar="OPSDESK_CONFIG", help="TOML configuration file."),
    ] = None,
) -> None:
    # Reset per invocation: tests run many commands in one process.
    _state.config, _state.settings = config, None


# --- server and demo -------------------------------------------------------------------------


def _with_address(s: Settings, host: str | None, port: int | None) -> Settings:
    changes = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if not changes:
        return s
    return s.model_copy(update={"server": s.server.model_copy(update=changes)})


def serve(s: Settings) -> None:
    """Bring the schema to head (a fresh data directory just works), then serve until stopped."""
    import gc

    import uvicorn

    from opsdesk.web.app import create_app  # imports every page and route: only when serving

    migrate.upgrade(s.database_url)
    rt = build_runtime(s)
    try:
        app = create_app(rt)
        # What startup built (routes, ORM mappers, templates) lives as long as the process: kept
        # out of the collector's full passes, each of which stalled a busy server ~0.2 s.
        gc.freeze()
        uvicorn.run(
            app,
            host=s.server.host,
            port=s.server.port,
            log_level="info",
            access_log=s.server.access_log,
        )
    finally:
        rt.close()


HostOpt = Annotated[str | None, typer.Option("--host", help="Listen address (default: server.host).")]
PortOpt = Annotated[
    int | None, typer.Option("--port", min=1, max=65535, help="Listen port (default: server.port).")
]


@app.command()
def server(host: HostOpt = None, port: PortOpt = None) -> None:
    """Migrate the database to the newest schema, then serve the web app and API."""
    serve(_with_address(settings(), host, port))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
)
def agent(ctx: typer.Context) -> None:
    """Run the host agent on a customer server (see `opsdesk agent --help`)."""
    # Normally dispatched by opsdesk.launcher before this module loads; kept here for --help.
    from opsdesk.agent.main import main as agent_main

    raise typer.Exit(agent_main(ctx.args))


@app.command()
def demo(
    host: HostOpt = None,
    port: PortOpt = None,
    seed_only: Annotated[
        bool, typer.Option("--seed-only", help="Seed and print logins, do not serve.")
    ] = False,
) -> None:
    """Seed demo customers, staff and logins (idempotently), print them, then serve."""
    s = _with_address(settings(), host, port)
    rt = demo_world.prepare(s)
    try:
        logins = demo_world.seed_demo(rt)
    finally:
        rt.close()
    out.print(demo_world.logins_panel(s, logins))
    sys.stdout.flush()  # the address and logins must show before the server's log
    if seed_only:
        return
    agent = demo_world.start_local_agent(s)
    try:
        serve(s)
    finally:
        agent.terminate()
        agent.wait(10)


# --- database --------------------------------------------------------------------------------


def _head() -> str | None:
    return ScriptDirectory.from_config(migrate.alembic_config("sqlite://")).get_current_head()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Option(help="Target revision.")] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""

    url = settings().database_url
    migrate.upgrade(url, revision)
    out.print(f"database {mask_url(url)} at revision {migrate.current(url) or 'base'}", markup=False)


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Option(help="Target revision; `base` removes every table.")],
) -> None:
    """Revert migrations down to REVISION."""

    url = settings().database_url
    migrate.downgrade(url, revision)
    out.print(f"database {mask_url(url)} at revision {migrate.current(url) or 'base'}", markup=False)


@db_app.command("current")
def db_current() -> None:
    """Show the database's schema revision, and whether it is the newest."""

    rev = migrate.current(settings().database_url)
    head = _head()
    if rev is None:
        out.print(f"base (empty; newest is {head}, run `opsdesk db upgrade`)", markup=False)
    elif rev == head:
        out.print(f"{rev} (head)", markup=False)
    else:
        out.print(f"{rev} (newest is {head}, run `opsdesk db upgrade`)", markup=False)


# --- administration --------------------------------------------------------------------------


class StaffRoleChoice(StrEnum):
    admin = "admin"
    project_lead = "project_lead"
    engineer = "engineer"


class AssignRoleChoice(StrEnum):
    project_lead = "project_lead"
    engineer = "engineer"


class LanguageChoice(StrEnum):
    zh_cn = "zh-CN"
    en = "en"


class ScopeChoice(StrEnum):
    read = "read"
    write = "write"


@contextmanager
def cli_session() -> Iterator[Session]:
    """One transaction bound to the operator, so every change lands in the audit log."""
    rt = build_runtime(settings())
    try:
        with rt.sessions.begin() as session:
            bind(session, cli_principal(os.getenv("USER") or "cli"))
            yield session
    finally:
        rt.close()


def _customer(session: Session, code: str) -> Customer:
    customer = session.scalars(select(Customer).where(Customer.code == code)).first()
    if customer is None:
        raise CliError(f"no customer with code {code!r}")
    return customer


def _user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(func.lower(User.username) == username.lower())).first()
    if user is None:
        raise CliError(f"no user named {username!r}")
    return user


def _password(given: str | None) -> str:
    if given is not None:
        return given
    entered: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return entered


def _language(given: LanguageChoice | None) -> str:
    return given.value if given is not None else settings().default_language


PasswordOpt = Annotated[
    str | None, typer.Option(help="Initial password; prompted for (twice, hidden) when omitted.")
]
NameOpt = Annotated[str, typer.Option("--name", help="Display name.")]
EmailOpt = Annotated[str, typer.Option(help="E-mail address.")]
LanguageOpt = Annotated[
    LanguageChoice | None, typer.Option(help="Interface language (default: default_language).")
]


@admin_app.command("create-staff")
def create_staff(
    username: str,
    role: Annotated[StaffRoleChoice, typer.Option(help="What the staff member may do.")],
    password: PasswordOpt = None,
    name: NameOpt = "",
    email: EmailOpt = "",
    language: LanguageOpt = None,
) -> None:
    """Create a provider staff account."""
    secret = _password(password)
    with cli_session() as session:
        user = create_user(
            session,
            username,
            secret,
            Role(role.value),
            None,
            display_name=name,
            email=email,
            language=_language(language),
        )
        out.print(f"created {user.role.value} {user.username!r} (id {user.id})", markup=False)


@admin_app.command("create-customer")
def create_customer(code: str, name: str, language: LanguageOpt = None) -> None:
    """Create a customer company."""
    data = CustomerIn(code=code, name=name, language=_language(language))
    with cli_session() as session:
        if session.scalars(select(Customer.id).where(Customer.code == data.code)).first() is not None:
            raise CliError(f"customer code {data.code!r} is taken")
        customer = Customer(**data.model_dump())
        session.add(customer)
        session.flush()
        out.print(f"created customer {customer.code} {customer.name!r} (id {customer.id})", markup=False)


@admin_app.command("create-customer-user")
def create_customer_user(
    customer_code: str,
    username: str,
    password: PasswordOpt = None,
    name: NameOpt = "",
    email: EmailOpt = "",
    language: LanguageOpt = None,
) -> None:
    """Create a login for a customer's own staff (sees only that customer)."""
    secret = _password(password)
    with cli_session() as session:
        customer = _customer(session, customer_code)
        user = create_user(
            session,
            username,
            secret,
            Role.customer,
            customer.id,
            display_name=name,
            email=email,
            language=_language(language) if language else customer.language,
        )
        out.print(f"created customer user {user.username!r} for {customer.code} (id {user.id})", markup=False)


@admin_app.command("assign")
def assign(
    customer_code: str,
    username: str,
    role: Annotated[
        AssignRoleChoice, typer.Option(help="Role for this customer.")
    ] = AssignRoleChoice.engineer,
) -> None:
    """Assign a staff member to a customer (or change the role of an existing assignment)."""
    with cli_session() as session:
        customer = _customer(session, customer_code)
        user = _user(session, username)
        if user.role not in STAFF_ROLES:
            raise CliError(f"{user.username!r} is a customer user; only staff can be assigned")
        found = session.scalars(
            select(StaffAssignment).where(
                StaffAssignment.customer_id == customer.id, StaffAssignment.user_id == user.id
            )
        ).first()
        if found is None:
            session.add(StaffAssignment(customer_id=customer.id, user_id=user.id, role=StaffRole(role.value)))
        else:
            found.role = StaffRole(role.value)
        out.print(f"{user.username} is {role.value} for {customer.code}", markup=False)


def _data_rows(text: str) -> int:
    return max(0, sum(1 for _ in csv.reader(io.StringIO(text.lstrip("\ufeff")))) - 1)


@admin_app.command("import-assets")
def import_assets_cmd(
    customer_code: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV file.")],
) -> None:
    """Import assets from CSV (columns: type,name,url,ip,notes,tags); all rows or none."""
    text = file.read_text(encoding="utf-8-sig")
    progress = Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), console=out)
    try:
        with cli_session() as session, progress:
            customer = _customer(session, customer_code)
            task = progress.add_task("assets", total=_data_rows(text))
            count = import_assets(session, customer, text, progress=lambda n: progress.advance(task, n))
    except ImportFailed as exc:
        for row in exc.errors:
            err.print(str(row), markup=False, soft_wrap=True)
        raise CliError(f"nothing imported: {len(exc.errors)} bad row(s) in {file}") from None
    out.print(f"imported {count} asset(s) for {customer_code}", markup=False)


def _expiry(days: int | None) -> datetime | None:
    return utcnow() + timedelta(days=days) if days is not None else None


@admin_app.command("issue-token")
def issue_token(
    username: str,
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. ci-bot.")],
    scope: Annotated[list[ScopeChoice] | None, typer.Option("--scope", help="read and/or write.")] = None,
    expires_days: Annotated[int | None, typer.Option(min=1, help="Expires after N days.")] = None,
) -> None:
    """Issue an API token; it is printed once, on stdout, and stored only as a hash."""
    scopes = [Scope(s.value) for s in scope] if scope else [Scope.read]
    with cli_session() as session:
        user = _user(session, username)
        row, plain = tokens.issue(session, user, name, scopes, _expiry(expires_days))
        expires = row.expires_at.date().isoformat() if row.expires_at else "never"
        err.print(
            f"token {row.id} {name!r} for {user.username} (scopes: {', '.join(row.scopes)}; "
            f"expires: {expires}); copy it now, it is not shown again:",
            markup=False,
            soft_wrap=True,
        )
    # Alone on stdout so that TOKEN=$(opsdesk admin issue-token ...) works.
    typer.echo(plain)


@admin_app.command("issue-agent-token")
def issue_agent_token(
    customer_code: str,
    asset_name: str,
    issuer: Annotated[str, typer.Option(help="Admin user the token is issued by.")] = "admin",
) -> None:
    """Issue an agent token bound to one server asset; printed once, on stdout."""
    from opsdesk.tenancy.models import Asset, AssetType

    with cli_session() as session:
        customer = _customer(session, customer_code)
        asset = session.scalars(
            select(Asset).where(Asset.customer_id == customer.id, Asset.name == asset_name)
        ).first()
        if asset is None:
            raise CliError(f"customer {customer_code!r} has no asset named {asset_name!r}")
        if asset.type is not AssetType.server:
            raise CliError(f"asset {asset_name!r} is a {asset.type.value}; agents run on server assets")
        user = _user(session, issuer)
        row, plain = tokens.issue(session, user, f"agent {asset_name}", [Scope.write], asset_id=asset.id)
        err.print(f"agent token {row.id} for {customer_code}/{asset_name}; copy it now:", markup=False)
    typer.echo(plain)


@admin_app.command("revoke-token")
def revoke_token(token_id: int) -> None:
    """Revoke an API token by its id (see list-tokens)."""
    with cli_session() as session:
        row = session.get(ApiToken, token_id)
        if row is None:
            raise CliError(f"no token with id {token_id}")
        if row.revoked_at is not None:
            out.print(f"token {token_id} was already revoked", markup=False)
            return
        tokens.revoke(row)
        out.print(f"revoked token {token_id} {row.name!r}", markup=False)


def _token_state(row: ApiToken, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    return "active"


def _when(value: datetime | None, fmt: str = "%Y-%m-%d") -> str:
    return value.strftime(fmt) if value else "-"


@admin_app.command("renew-contracts")
def renew_contracts(
    today: Annotated[
        str | None, typer.Option(help="Date to renew as of (YYYY-MM-DD); default today.")
    ] = None,
) -> None:
    """Extend auto-renewing contracts that ran out by whole years; end the others (run daily)."""
    from datetime import date

    from opsdesk.tenancy.contracts import renew_due

    try:
        as_of = date.fromisoformat(today) if today else date.today()
    except ValueError as exc:
        raise CliError(f"--today: {exc}") from exc
    with cli_session() as session:
        result = renew_due(session, as_of)
    out.print(f"renewed {len(result.renewed)}: {', '.join(result.renewed) or '-'}")
    out.print(f"ended {len(result.ended)}: {', '.join(result.ended) or '-'}")


@admin_app.command("list-tokens")
def list_tokens(
    username: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
) -> None:
    """List API tokens (never their secret)."""
    with cli_session() as session:
        query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id)
        if username is not None:
            query = query.where(User.id == _user(session, username).id)
        rows = session.execute(query).all()
        now = utcnow()
        table = Table(
            "id",
            "user",
            "name",
            "prefix",
            "scopes",
            "created",
            "expires",
            "last used",
            "state",
            box=box.SIMPLE,
        )
        for column in table.columns:
            column.overflow = "fold"  # narrow terminals wrap a cell rather than cut an id short
        for token, owner in rows:
            table.add_row(
                str(token.id),
                owner,
                token.name,
                token.prefix + "...",
                ",".join(token.scopes),
                _when(token.created_at),
                _when(token.expires_at),
                _when(token.last_used_at, "%Y-%m-%d %H:%M"),
                _token_state(token, now),
            )
    # Piped output is for grep and scripts: one row per line instead of folding at 80 columns.
    Console(width=None if out.is_terminal else 200).print(table)


# --- configuration ---------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


def to_toml(data: dict[str, Any]) -> str:
    """TOML text for the (flat or one-level nested) configuration; unset keys as comments."""
    scalars = [(k, v) for k, v in data.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in data.items() if isinstance(v, dict)]
    lines = [f"{k} = {_toml_value(v)}" if v is not None else f"# {k} is not set" for k, v in scalars]
    for name, table in tables:
        lines.append("")
        lines.append(f"[{name}]")
        lines.extend(
            f"{k} = {_toml_value(v)}" if v is not None else f"# {k} is not set" for k, v in table.items()
        )
    return "\n".join(lines)


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration (file, then environment, over defaults); secrets masked."""
    s = settings()
    source = f"config file {_state.config}" if _state.config else "no config file"
    typer.echo(f"# effective configuration ({source}, OPSDESK_* environment applied)")
    typer.echo(to_toml(masked_dump(s)))


# --- reports ---------------------------------------------------------------------------------


@report_app.command("monthly")
def report_monthly(
    month: Annotated[str, typer.Option(help="YYYY-MM (Beijing time); default: last month.")] = "",
    customer: Annotated[
        list[str] | None, typer.Option(help="Customer code; repeatable; default: all.")
    ] = None,
    publish: Annotated[bool, typer.Option(help="Publish to the customers' portals as well.")] = False,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Write the PDFs into this directory.")] = None,
    lang: Annotated[
        list[LanguageChoice] | None, typer.Option(help="PDF language; repeatable; default: both.")
    ] = None,
) -> None:
    """Draft (or refresh) each customer's monthly report; optionally publish it and write PDFs."""
    try:
        year, number = parse_month(month) if month else previous_month(utcnow())
    except BadMonth as exc:
        raise CliError(str(exc), 2) from exc
    languages = tuple(choice.value for choice in lang or LanguageChoice)
    rt = build_runtime(settings())
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=out)
    lines: list[str] = []
    try:
        with rt.sessions.begin() as session, progress:
            operator = cli_principal(os.getenv("USER") or "cli")
            bind(session, operator)
            codes = customer or list(session.scalars(select(Customer.code).order_by(Customer.code)))
            found = [_customer(session, code) for code in codes]
            task = progress.add_task(f"reports {year:04d}-{number:02d}", total=len(found))

            def done(line: str) -> None:
                lines.append(line)
                progress.advance(task)

            monthly_reports(session, rt.metrics, rt.settings, found, (year, number),
                            operator.label if publish else None, out_dir, languages, done)  # fmt: skip
    finally:
        rt.close()
    for line in lines + ([f"PDFs written to {out_dir}"] if out_dir else []):
        out.print(line, markup=False)


def main() -> None:
    app(prog_name="opsdesk")


if __name__ == "__main__":
    main()
