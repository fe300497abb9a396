"""Console and portal pages for checks (monitors): a customer's checks, adding one, one check's page.

The add-check form is built from the check type's pydantic config model, so a new check type
needs locale captions for its fields and nothing else here. Definitions are validated by
`check_definition`, exactly as in the REST API; its errors are shown next to their fields.
"""

from __future__ import annotations

import json
import re
import types as pytypes
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Union, get_args, get_origin

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from sqlalchemy import select

from opsdesk.core.calendar import CHINA
from opsdesk.core.db import utcnow
from opsdesk.hosts.pages import hosts_of
from opsdesk.monitors import checks, secrets
from opsdesk.monitors.api import poke_probe
from opsdesk.monitors.checks.base import CheckConfig
from opsdesk.monitors.models import MaintenanceWindow, Monitor, MonitorEvent, MonitorState, Runner
from opsdesk.monitors.schemas import MaintenanceIn
from opsdesk.monitors.service import InvalidMonitor, check_definition, uptime
from opsdesk.tenancy.models import Asset, AssetType, Customer
from opsdesk.tenancy.pages import Form, Posted, done, page, translator_for, validate
from opsdesk.web import i18n
from opsdesk.web.deps import AnyUser, Ctx, Staff
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)
RUN_KEY = "monitor_run"
COMMON = frozenset(CheckConfig.model_fields)
# Fields most checks leave at their defaults: shown under "more options".
ADVANCED = frozenset(
    {
        "headers", "body", "keyword_regex", "keyword_case_sensitive", "max_redirects", "verify_tls",
        "ca_file", "max_body_bytes", "retry_delay_s", "packet_interval_s", "payload_bytes", "max_rtt_ms",
        "max_loss_percent", "nameserver", "server_name", "match",
    }
)  # fmt: skip
# Figures of a result, in the order they are shown, with their unit.
FIGURES = (
    ("dns_ms", "ms"), ("connect_ms", "ms"), ("tls_ms", "ms"), ("ttfb_ms", "ms"), ("response_ms", "ms"),
    ("rtt_ms", "ms"), ("loss_percent", "%"), ("cert_days_left", "d"), ("status_code", ""),
    ("redirects", ""), ("attempts", ""), ("failed_attempts", ""),
)  # fmt: skip
UPTIME_SPANS = (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30)))
# pydantic error type -> message key under monitor.err (with the limit as a parameter where given)
CONFIG_ERROR_KEYS = {
    "missing": "required",
    "string_too_short": "required",
    "too_short": "required",
    "string_too_long": "too_long",
    "int_parsing": "integer",
    "int_from_float": "integer",
    "int_type": "integer",
    "float_parsing": "number",
    "float_type": "number",
    "greater_than_equal": "min",
    "greater_than": "above",
    "less_than_equal": "max",
    "less_than": "below",
    "literal_error": "choice",
    "bool_parsing": "choice",
}
LIMITS = ("ge", "gt", "le", "lt")


# -- the add-check form, derived from the type's config model ---------------------------------


@dataclass(frozen=True)
class ConfigField:
    name: str
    kind: str  # text, password, number, checkbox, select, list, lines
    required: bool
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    step: str = "1"
    advanced: bool = False

    @property
    def form_name(self) -> str:
        return f"config.{self.name}"


def _plain(annotation: Any) -> Any:
    """`X | None` -> X."""
    if get_origin(annotation) in (Union, pytypes.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else str
    return annotation


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for item in info.metadata:
        low = getattr(item, "ge", None) if getattr(item, "ge", None) is not None else low
        low = getattr(item, "gt", None) if getattr(item, "gt", None) is not None else low
        high = getattr(item, "le", None) if getattr(item, "le", None) is not None else high
        high = getattr(item, "lt", None) if getattr(item, "lt", None) is not None else high
    return low, high


def _field(name: str, info: FieldInfo) -> ConfigField:
    kind_of = _plain(info.annotation)
    origin = get_origin(kind_of)
    advanced = name in ADVANCED
    required = info.is_required()
    if origin is Literal:
        return ConfigField(
            name, "select", required, tuple(str(a) for a in get_args(kind_of)), advanced=advanced
        )
    if kind_of is bool:
        return ConfigField(name, "checkbox", False, advanced=advanced)
    if kind_of is SecretStr:  # typed in, never shown back (stored encrypted: monitors/secrets.py)
        return ConfigField(name, "password", required, advanced=advanced)
    if kind_of in (int, float):
        low, high = _bounds(info)
        step = "1" if kind_of is int else "any"
        return ConfigField(name, "number", required, (), low, high, step, advanced)
    if origin is list:
        return ConfigField(name, "list", required, advanced=advanced)
    if origin is dict:
        return ConfigField(name, "lines", required, advanced=advanced)
    return ConfigField(name, "text", required, advanced=advanced)


def config_fields(type_name: str) -> list[ConfigField]:
    """The type's own fields first (in declaration order), then the schedule fields all types share."""
    model = checks.get(type_name).config_model
    own = [_field(n, i) for n, i in model.model_fields.items() if n not in COMMON]
    common = [_field(n, i) for n, i in model.model_fields.items() if n in COMMON]
    return own + common


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{k}: {v}" for k, v in value.items())
    return "" if value is None else str(value)


def default_values(type_name: str, customer: Customer, assets: list[Asset]) -> dict[str, str]:
    model = checks.get(type_name).config_model
    values = {
        f"config.{name}": _form_value(info.get_default(call_default_factory=True))
        for name, info in model.model_fields.items()
        if not info.is_required()
    }
    website = next((a for a in assets if a.type is AssetType.website and a.url), None)
    if type_name == "http" and website is not None:  # R-MON-5: the homepage by default
        values.update({"config.url": website.url, "name": f"{website.name}", "asset_id": str(website.id)})
    return {**values, "type": type_name, "runs_on": "platform", "enabled": "true"}


def _lines(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in raw.splitlines():
        if line.strip():
            key, _, value = line.partition(":")
            out[key.strip()] = value.strip()
    return out


def config_from_form(type_name: str, data: Mapping[str, str]) -> dict[str, Any]:
    """Form strings as the config model expects them; blank fields are left to their defaults."""
    out: dict[str, Any] = {}
    for f in config_fields(type_name):
        raw = data.get(f.form_name, "")
        if f.kind == "checkbox":
            out[f.name] = bool(raw)
        elif raw == "":
            continue
        elif f.kind == "list":
            out[f.name] = [part.strip() for part in re.split(r"[,\n]", raw) if part.strip()]
        elif f.kind == "lines":
            out[f.name] = _lines(raw)
        else:
            out[f.name] = raw
    return out


def _typed_errors(type_name: str, config: dict[str, Any]) -> dict[str, ErrorDetails]:
    try:
        checks.get(type_name).config_model.model_validate(config)
    except ValidationError as exc:
        found: dict[str, ErrorDetails] = {}
        for err in exc.errors():
            found.setdefault(str(err["loc"][0]) if err["loc"] else "", err)
        return found
    return {}


def _known(t: i18n.Translate, key: str, **params: Any) -> str | None:
    text = t(key, **params)
    return None if text == key else text


def _config_message(t: i18n.Translate, name: str, message: str, err: ErrorDetails | None) -> str:
    if err is None:
        return message
    if err["type"] == "value_error":
        return _known(t, f"monitor.err.value_{name}") or message
    key = CONFIG_ERROR_KEYS.get(err["type"])
    ctx = err.get("ctx") or {}
    limit = next((ctx[k] for k in LIMITS if k in ctx), "")
    return (_known(t, f"monitor.err.{key}", limit=limit) or message) if key else message


def _whole_definition(t: i18n.Translate, message: str) -> tuple[str, str]:
    """A rule across fields (timings that do not fit) belongs next to the field it names last."""
    if "longer than interval_s" in message:
        return "config.interval_s", t("monitor.err.fit_interval")
    if "timeout_s" in message:
        return "config.timeout_s", t("monitor.err.fit_timeout")
    return "", message


def definition_errors(
    t: i18n.Translate, type_name: str, config: dict[str, Any], exc: InvalidMonitor
) -> dict[str, str]:
    """check_definition's errors by form field, in the page language where the kind is known."""
    typed = _typed_errors(type_name, config)
    out: dict[str, str] = {}
    for key, message in exc.errors.items():
        if key == "config":
            field, text = _whole_definition(t, message)
        elif key.startswith("config."):
            name = key.removeprefix("config.").split(".")[0]
            field, text = f"config.{name}", _config_message(t, name, message, typed.get(name))
        elif key == "runner":  # a host-local type (process, log, script) asked of the platform
            field, text = "runs_on", t("monitor.err.host_local")
        else:  # asset_id, agent_asset_id
            field, text = ("runs_on" if key == "agent_asset_id" else key), t("form.err.choice")
        out.setdefault(field, text)
    return out


# -- helpers shared by the pages ----------------------------------------------------------------


def local(value: datetime | None) -> str:
    """A time as people here read it: Beijing time, to the minute."""
    return value.astimezone(CHINA).strftime("%Y-%m-%d %H:%M") if value else ""


def target(monitor: Monitor) -> str:
    cfg = monitor.config or {}
    if cfg.get("url"):
        return str(cfg["url"])
    if cfg.get("name"):
        return f"{cfg['name']} ({cfg.get('record_type', 'A')})"
    host = str(cfg.get("host", ""))
    return f"{host}:{cfg['port']}" if cfg.get("port") else host


def response_ms(monitor: Monitor) -> float | None:
    figures = (monitor.last_result or {}).get("metrics") or {}
    value = figures.get("response_ms", figures.get("rtt_ms"))
    return float(value) if isinstance(value, int | float) else None


def code_text(t: i18n.Translate, code: str) -> str:
    return _known(t, f"monitor.code.{code}") or code


def safe_next(raw: str | None, fallback: str) -> str:
    """Only a path on this site: never another host."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return fallback


def monitors_of(c: Ctx, customer_id: int) -> list[Monitor]:
    return list(
        c.db.scalars(select(Monitor).where(Monitor.customer_id == customer_id).order_by(Monitor.name))
    )


def check_rows(c: Ctx, customer_id: int, with_uptime: bool = False) -> list[dict[str, Any]]:
    now = utcnow()
    agents = {a.id: a.name for a in c.db.scalars(select(Asset).where(Asset.customer_id == customer_id))}
    rows = []
    for m in monitors_of(c, customer_id):
        month = uptime(c.db, m, now - timedelta(days=30), now).percent if with_uptime else None
        runs_on = agents.get(m.agent_asset_id or 0, "") if m.runner is Runner.agent else ""
        rows.append({"m": m, "target": target(m), "ms": response_ms(m), "agent": runs_on, "uptime": month})
    return rows


def codes(request: Request) -> Callable[[str], str]:
    t = translator_for(request)
    return lambda code: code_text(t, code)


def fragment(request: Request, name: str, **context: Any) -> Response:
    return render(request, name, 200, local=local, code_text=codes(request), **context)


# -- the customer's checks: a section of the customer page, refreshed in place -----------------


@router.get("/customers/{customer_id}/monitoring")
def customer_monitoring(request: Request, c: Staff, customer_id: int) -> Response:
    customer = c.get(Customer, customer_id)
    hosts = hosts_of(c, customer.id)
    rows = check_rows(c, customer.id)
    return fragment(
        request, "_monitoring.html", customer=customer, rows=rows, hosts=hosts, check_types=checks.types()
    )


@router.get("/portal/monitoring")
def portal_monitoring(request: Request, c: AnyUser) -> Response:
    if c.principal.is_staff or c.principal.customer_id is None:
        return Response(status_code=404)
    customer = c.get(Customer, c.principal.customer_id)
    rows = check_rows(c, customer.id, with_uptime=True)
    return fragment(request, "_portal_monitoring.html", rows=rows, hosts=hosts_of(c, customer.id))


# -- adding a check -----------------------------------------------------------------------------


def _runners(assets: list[Asset]) -> list[tuple[str, str]]:
    return [(f"agent:{a.id}", a.name) for a in assets if a.type is AssetType.server]


def new_page(request: Request, c: Ctx, customer: Customer, form: Form, status: int = 200) -> Response:
    assets = list(c.db.scalars(select(Asset).where(Asset.customer_id == customer.id).order_by(Asset.name)))
    type_name = form.values.get("type", "http")
    fields = config_fields(type_name)
    return page(
        request, "monitor_new.html", status, customer=customer, f=form, type_name=type_name,
        check_types=checks.types(), fields=fields, agents=_runners(assets),
        asset_choices=[(str(a.id), a.name) for a in assets],
        advanced_open=bool(any(form.errors.get(x.form_name) for x in fields if x.advanced)),
    )  # fmt: skip


@router.get("/customers/{customer_id}/checks/new")
def new_check(request: Request, c: Staff, customer_id: int, type: str = "http") -> Response:
    customer = c.get(Customer, customer_id)
    c.require_write()
    type_name = type if type in checks.types() else "http"
    assets = list(c.db.scalars(select(Asset).where(Asset.customer_id == customer.id)))
    return new_page(request, c, customer, Form("check", default_values(type_name, customer, assets)))


def _runner(raw: str) -> tuple[Runner, int | None] | None:
    if raw == "platform":
        return Runner.platform, None
    kind, _, ident = raw.partition(":")
    return (Runner.agent, int(ident)) if kind == "agent" and ident.isdigit() else None


def _head_errors(t: i18n.Translate, data: Mapping[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not data.get("name"):
        errors["name"] = t("form.err.required")
    elif len(data["name"]) > 200:
        errors["name"] = t("form.err.too_long")
    if _runner(data.get("runs_on", "")) is None:
        errors["runs_on"] = t("form.err.choice")
    if data.get("asset_id") and not data["asset_id"].isdigit():
        errors["asset_id"] = t("form.err.choice")
    return errors


@router.post("/customers/{customer_id}/checks")
def create_check(request: Request, c: Staff, customer_id: int, data: Posted) -> Response:
    customer = c.get(Customer, customer_id)
    c.require_write()
    t = translator_for(request)
    type_name = data.get("type", "")
    if type_name not in checks.types():
        form = Form("check", {**data, "type": "http"}, {"type": t("form.err.choice")})
        return new_page(request, c, customer, form, 422)
    errors = _head_errors(t, data)
    runner, agent = _runner(data.get("runs_on", "")) or (Runner.platform, None)
    asset_id = int(data["asset_id"]) if data.get("asset_id", "").isdigit() else None
    config = config_from_form(type_name, data)
    try:
        normalised = check_definition(c.db, customer.id, type_name, config, asset_id, runner, agent)
    except InvalidMonitor as exc:
        errors = {**definition_errors(t, type_name, config, exc), **errors}
    if errors:
        return new_page(request, c, customer, Form("check", dict(data), errors), 422)
    monitor = Monitor(
        customer_id=customer.id, asset_id=asset_id, name=data["name"], type=type_name, config=normalised,
        enabled=bool(data.get("enabled")), runner=runner, agent_asset_id=agent, state=MonitorState.unknown,
    )  # fmt: skip
    c.db.add(monitor)
    c.db.flush()
    request.state.after_commit = poke_probe
    return done(request, f"/customers/{customer.id}#monitoring", "flash.created")


# -- acting on one check --------------------------------------------------------------------------


@router.post("/monitors/{monitor_id}/run")
async def run_check(request: Request, c: Staff, monitor_id: int) -> Response:
    monitor = c.get(Monitor, monitor_id)
    c.require_write()
    if monitor.runner is Runner.agent:
        return done(request, f"/monitors/{monitor.id}", "monitor.run_on_agent")
    try:
        config = secrets.runnable(monitor.type, monitor.config)
    except secrets.SecretUnreadable as exc:
        result = checks.CheckResult.at_level("unknown", "secret_unreadable", str(exc))
    else:
        result = await request.app.state.probe.run_now(monitor.id, config)
    request.session[RUN_KEY] = {
        "monitor": monitor.id, "state": result.state, "code": result.code, "message": result.message[:300],
    }  # fmt: skip
    return RedirectResponse(f"/monitors/{monitor.id}", status_code=303)


@router.post("/monitors/{monitor_id}/toggle")
def toggle_check(request: Request, c: Staff, monitor_id: int, data: Posted) -> Response:
    monitor = c.get(Monitor, monitor_id)
    c.require_write()
    monitor.enabled = not monitor.enabled
    request.state.after_commit = poke_probe
    message = "monitor.enabled_now" if monitor.enabled else "monitor.disabled_now"
    return done(request, safe_next(data.get("next"), f"/monitors/{monitor.id}"), message)


@router.get("/monitors/{monitor_id}/delete")
def confirm_delete(request: Request, c: Staff, monitor_id: int) -> Response:
    monitor = c.get(Monitor, monitor_id)
    c.require_write()
    customer = c.get(Customer, monitor.customer_id)
    return page(request, "monitor_delete.html", monitor=monitor, customer=customer, target=target(monitor))


@router.post("/monitors/{monitor_id}/delete")
def delete_check(request: Request, c: Staff, monitor_id: int) -> Response:
    monitor = c.get(Monitor, monitor_id)
    c.require_write()
    customer_id = monitor.customer_id
    c.db.delete(monitor)
    c.db.flush()
    request.state.after_commit = poke_probe
    return done(request, f"/customers/{customer_id}#monitoring", "flash.deleted")


# -- one check's page -------------------------------------------------------------------------


def figures_of(result: Mapping[str, Any] | None) -> list[tuple[str, float, str]]:
    values = (result or {}).get("metrics") or {}
    return [(name, float(values[name]), unit) for name, unit in FIGURES if name in values]


def uptimes(c: Ctx, monitor: Monitor) -> list[dict[str, Any]]:
    now = utcnow()
    out = []
    for key, span in UPTIME_SPANS:
        u = uptime(c.db, monitor, now - span, now)
        out.append({"key": key, "percent": u.percent, "maintenance_s": u.maintenance_s, "down_s": u.down_s})
    return out


def windows_of(c: Ctx, customer_id: int) -> list[MaintenanceWindow]:
    since = utcnow() - timedelta(days=30)
    return list(
        c.db.scalars(
            select(MaintenanceWindow)
            .where(MaintenanceWindow.customer_id == customer_id, MaintenanceWindow.ends_at >= since)
            .order_by(MaintenanceWindow.starts_at.desc())
            .limit(50)
        )
    )


def _window_form() -> Form:
    start = (utcnow().astimezone(CHINA) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    fmt = "%Y-%m-%dT%H:%M"
    return Form(
        "window", {"starts_at": start.strftime(fmt), "ends_at": (start + timedelta(hours=2)).strftime(fmt)}
    )


def response_chart(request: Request, monitor: Monitor) -> str:
    label = translator_for(request)("monitor.response_ms")
    query = {"name": "response_ms", "label": label, "exclude": {}}
    url = f"/api/v1/monitors/{monitor.id}/metrics"
    min_step = monitor.config.get("interval_s", 60)
    return json.dumps({"url": url, "unit": "ms", "flat": True, "min_step": min_step, "queries": [query]})


def monitor_page(
    request: Request, c: Ctx, monitor: Monitor, failed: Form | None = None, status: int = 200
) -> Response:
    customer = c.get(Customer, monitor.customer_id)
    events = c.db.scalars(
        select(MonitorEvent)
        .where(MonitorEvent.monitor_id == monitor.id)
        .order_by(MonitorEvent.at.desc())
        .limit(50)
    )
    run = request.session.pop(RUN_KEY, None)
    assets = list(c.db.scalars(select(Asset).where(Asset.customer_id == customer.id).order_by(Asset.name)))
    asset = next((a for a in assets if a.id == monitor.asset_id), None)
    agent = next((a for a in assets if a.id == monitor.agent_asset_id), None)
    return page(
        request, "monitor.html", status, monitor=monitor, customer=customer, target=target(monitor),
        uptimes=uptimes(c, monitor), events=list(events), figures=figures_of(monitor.last_result),
        windows=windows_of(c, customer.id), wf=failed or _window_form(), asset=asset, agent=agent,
        asset_choices=[(str(a.id), a.name) for a in assets], local=local, code_text=codes(request),
        run=run if run and run.get("monitor") == monitor.id else None,
        can_write=c.principal.is_staff and c.principal.can_write, chart=response_chart(request, monitor),
    )  # fmt: skip


@router.get("/monitors/{monitor_id}")
def show_monitor(request: Request, c: AnyUser, monitor_id: int) -> Response:
    return monitor_page(request, c, c.get(Monitor, monitor_id))


# -- maintenance windows --------------------------------------------------------------------------


def _beijing(raw: str) -> str:
    """A datetime-local value (Beijing time) as an ISO time with its zone; other text unchanged."""
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=CHINA).isoformat() if raw else raw
    except ValueError:
        return raw


class _WindowForm(BaseModel):
    """What the form can get wrong that MaintenanceIn reports without a field."""

    starts_at: datetime
    ends_at: datetime


@router.post("/monitors/{monitor_id}/maintenance")
def add_window(request: Request, c: Staff, monitor_id: int, data: Posted) -> Response:
    monitor = c.get(Monitor, monitor_id)
    c.require_write()
    t = translator_for(request)
    fields = {
        "starts_at": _beijing(data.get("starts_at", "")),
        "ends_at": _beijing(data.get("ends_at", "")),
        "reason": data.get("reason", ""),
        **({"asset_id": data["asset_id"]} if data.get("asset_id") else {}),
    }
    _, errors = validate(request, _WindowForm, fields)
    errors = {k: t("monitor.err.datetime") for k in errors}
    body, more = validate(request, MaintenanceIn, fields) if not errors else (None, {})
    if body is None and not errors:
        errors = {"ends_at": t("monitor.err.window_order")} if "end_date" in more else more
    owner = c.db.get(Asset, body.asset_id) if body and body.asset_id is not None else None
    if (
        body is not None
        and body.asset_id is not None
        and (owner is None or owner.customer_id != monitor.customer_id)
    ):
        errors = {"asset_id": t("form.err.choice")}
    if body is None or errors:
        return monitor_page(request, c, monitor, Form("window", dict(data), errors), 422)
    c.db.add(MaintenanceWindow(customer_id=monitor.customer_id, **body.model_dump()))
    c.db.flush()
    return done(request, f"/monitors/{monitor.id}#maintenance", "flash.created")


@router.post("/maintenance/{window_id}/delete")
def delete_window(request: Request, c: Staff, window_id: int, data: Posted) -> Response:
    window = c.get(MaintenanceWindow, window_id)
    c.require_write()
    customer_id = window.customer_id
    c.db.delete(window)
    c.db.flush()
    return done(request, safe_next(data.get("next"), f"/customers/{customer_id}"), "flash.deleted")
