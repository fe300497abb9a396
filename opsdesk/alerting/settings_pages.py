"""Console pages for alerting settings: silences, rule overrides, notification preferences of a
customer, and the provider's duty rota with its calendar.

Every change goes through the REST API's functions (same checks, same audit entries); a refused
value comes back as a message next to its field, in the page's language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from opsdesk.alerting import access, oncall_api, prefs_api, rules_api, silence_api
from opsdesk.alerting.calendar_view import by_day, shifts
from opsdesk.alerting.models import NotifyPreference, RuleOverride
from opsdesk.alerting.oncall import OnCallOverride, OnCallSchedule
from opsdesk.alerting.problems import FieldProblem
from opsdesk.alerting.rules import Severity
from opsdesk.core.calendar import CHINA
from opsdesk.core.db import utcnow
from opsdesk.monitors.pages import local
from opsdesk.notify.channels.base import InvalidChannel, channel_for
from opsdesk.notify.outbox import channel_config
from opsdesk.tenancy.models import Asset, Customer
from opsdesk.tenancy.pages import Form, Posted, done, error_text, page, translator_for
from opsdesk.web.deps import Ctx, Staff

router = APIRouter(include_in_schema=False)
MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')
CALENDAR_WEEKS = (2, 3, 4)
# value_error of our own validators, by field, as message keys (the API words them in English)
VALUE_ERRORS = {
    "rule_key": "alerting.err.no_rule",
    "matchers": "alerting.err.matcher",
    "": "alerting.err.silence_period",
    "starts_at": "alerting.err.zone",
    "ends_at": "alerting.err.zone",
}


def check(request: Request, schema: type[BaseModel], data: Mapping[str, Any]) -> tuple[Any, dict[str, str]]:
    """Validate with the API's schema; messages in the page's language, one per field."""
    t = translator_for(request)
    try:
        return schema.model_validate(dict(data)), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else ""
            if err["type"] == "value_error" and name in VALUE_ERRORS:
                text = t(VALUE_ERRORS[name])
            elif err["type"] in ("greater_than", "less_than_equal", "less_than", "float_parsing"):
                text = t("alerting.err.out_of_range")
            else:
                text = error_text(err, name, t)
            errors.setdefault(name or "ends_at", text)
        return None, errors


def number(raw: str) -> float | str | None:
    """A form number: blank is None; unparseable text goes to the schema, which names the field."""
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        return raw


def customer_nav(c: Ctx, customer: Customer, here: str) -> dict[str, Any]:
    return {"customer": customer, "here": here, "can_manage": access.may_manage(c, customer.id)}


# -- silences ----------------------------------------------------------------------------------------


def silences_page(request: Request, c: Ctx, customer: Customer, form: Form | None = None) -> Response:
    now = utcnow()
    rows = list(c.db.scalars(silence_api.query("all", customer.id)))
    assets = {a.id: a for a in c.db.scalars(select(Asset).where(Asset.customer_id == customer.id))}
    return page(
        request, "alert_silences.html", 422 if form and form.errors else 200,
        active=[s for s in rows if s.ends_at > now], expired=[s for s in rows if s.ends_at <= now][:50],
        now=now, assets=assets, local=local, f=form or Form("silence_new", {"duration_h": "2"}),
        asset_choices=[(str(a.id), a.name) for a in sorted(assets.values(), key=lambda a: a.name)],
        rule_choices=[(k, k) for k in sorted(silence_api.RULE_KEYS)],
        **customer_nav(c, customer, "silences"),
    )  # fmt: skip


def saved(request: Request, errors: dict[str, str], save: Callable[[], object], then: str) -> Response | None:
    """Run `save`: the redirect to `then` when it saved, None with its FieldProblem in `errors`."""
    try:
        save()
    except FieldProblem as problem:
        errors[problem.field] = problem.text(translator_for(request))
        return None
    return done(request, then, "flash.saved")


@router.get("/customers/{customer_id}/silences")
def silences(request: Request, c: Staff, customer_id: int) -> Response:
    return silences_page(request, c, c.get(Customer, customer_id))


def parse_matchers(text: str) -> list[dict[str, str]] | None:
    out = []
    for line in text.splitlines():  # one per line: a regex may hold commas
        if not line.strip():
            continue
        found = MATCHER.match(line)
        if found is None:
            return None
        out.append({"name": found[1], "op": found[2], "value": found[3]})
    return out


@router.post("/customers/{customer_id}/silences")
def add_silence(request: Request, c: Staff, customer_id: int, data: Posted) -> Response:
    customer = c.get(Customer, customer_id)
    c.require_write()
    t = translator_for(request)
    matchers = parse_matchers(data.get("matchers", ""))
    fields: dict[str, Any] = {
        "asset_id": int(data["asset_id"]) if data.get("asset_id", "").isdigit() else None,
        "rule_key": data.get("rule_key", ""),
        "matchers": matchers or [],
        "duration_h": number(data.get("duration_h", "")),
        "comment": data.get("comment", ""),
    }
    body, errors = check(request, silence_api.SilenceIn, fields)
    if matchers is None:
        errors["matchers"] = t("alerting.err.matcher")
    if body is not None and not errors:
        try:
            silence = silence_api.create(c, customer.id, body)
        except FieldProblem as problem:
            errors[problem.field if problem.field != "ends_at" else "duration_h"] = problem.text(t)
        else:
            return done(
                request, f"/customers/{customer.id}/silences#silence-{silence.id}", "alerting.flash.silenced"
            )
    if "ends_at" in errors:
        errors.setdefault("duration_h", errors.pop("ends_at"))
    return silences_page(request, c, customer, Form("silence_new", dict(data), errors))


@router.post("/silences/{silence_id}/expire")
def expire_silence(request: Request, c: Staff, silence_id: int) -> Response:
    silence = silence_api.expire(c, silence_id)
    return done(request, f"/customers/{silence.customer_id}/silences", "alerting.flash.expired")


@router.get("/silences")
def all_silences(request: Request, c: Staff) -> Response:
    """Every silence in force or to come, over the customers this person works for."""
    rows = list(c.db.scalars(silence_api.query("active")))
    customers = {cu.id: cu for cu in c.db.scalars(select(Customer).order_by(Customer.name))}
    return page(request, "alert_silences_all.html", rows=rows, customers=customers, now=utcnow(), local=local)


# -- rules and overrides -------------------------------------------------------------------------------


def rules_page(request: Request, c: Ctx, customer: Customer, form: Form | None = None) -> Response:
    assets = {a.id: a for a in c.db.scalars(select(Asset).where(Asset.customer_id == customer.id))}
    rows = rules_api.table(c, customer.id)
    keys = sorted({r.key for r in rows})
    return page(
        request, "alert_rules.html", 422 if form and form.errors else 200, rows=rows, assets=assets,
        f=form or Form("override", {"enabled": "true"}), rule_choices=[(k, k) for k in keys],
        asset_choices=[(str(a.id), a.name) for a in sorted(assets.values(), key=lambda a: a.name)],
        severities=[(s.value, s.value) for s in Severity], **customer_nav(c, customer, "rules"),
    )  # fmt: skip


@router.get("/customers/{customer_id}/rules")
def rules(request: Request, c: Staff, customer_id: int) -> Response:
    return rules_page(request, c, c.get(Customer, customer_id))


@router.post("/customers/{customer_id}/rules")
def set_override(request: Request, c: Staff, customer_id: int, data: Posted) -> Response:
    customer = c.get(Customer, customer_id)
    access.require_manage(c, customer.id)
    fields: dict[str, Any] = {
        "rule_key": data.get("rule_key", ""),
        "asset_id": int(data["asset_id"]) if data.get("asset_id", "").isdigit() else None,
        "enabled": bool(data.get("enabled")),
        "threshold": number(data.get("threshold", "")),
        "clear": number(data.get("clear", "")),
        "for_s": number(data.get("for_s", "")),
        "severity": data.get("severity") or None,
    }
    body, errors = check(request, rules_api.OverrideIn, fields)
    if body is not None and (
        ok := saved(
            request,
            errors,
            partial(rules_api.upsert, c, customer.id, body),
            f"/customers/{customer.id}/rules",
        )
    ):
        return ok
    return rules_page(request, c, customer, Form("override", dict(data), errors))


@router.post("/rule-overrides/{override_id}/delete")
def delete_override(request: Request, c: Staff, override_id: int) -> Response:
    row: RuleOverride = rules_api.remove(c, override_id)
    return done(request, f"/customers/{row.customer_id}/rules", "flash.saved")


# -- notification preferences --------------------------------------------------------------------------


def prefs_page(request: Request, c: Ctx, customer: Customer, form: Form | None = None) -> Response:
    channels = prefs_api.channels_of(c, customer.id)
    media: dict[int, str] = {}
    for ch in channels:
        try:
            media[ch.id] = channel_for(ch.type).medium_of(channel_config(ch))
        except InvalidChannel:  # a broken channel is still listed, without its medium
            media[ch.id] = ""
    return page(
        request, "alert_prefs.html", 422 if form and form.errors else 200,
        rows=prefs_api.rows(c, customer.id), channels=channels, media=media, f=form or Form("pref"),
        **customer_nav(c, customer, "prefs"),
    )  # fmt: skip


@router.get("/customers/{customer_id}/notify-preferences")
def prefs(request: Request, c: Staff, customer_id: int) -> Response:
    return prefs_page(request, c, c.get(Customer, customer_id))


@router.post("/customers/{customer_id}/notify-preferences")
async def save_pref(request: Request, c: Staff, customer_id: int) -> Response:
    customer = c.get(Customer, customer_id)
    access.require_manage(c, customer.id)
    form = await request.form()
    channel_ids = [int(v) for v in form.getlist("channel_ids") if isinstance(v, str) and v.isdigit()]
    severity, always = str(form.get("severity", "")), bool(form.get("always"))
    fields = {"severity": severity, "always": always, "channel_ids": channel_ids}
    body, errors = check(request, prefs_api.PreferenceIn, fields)
    if body is not None and (
        ok := saved(
            request,
            errors,
            partial(prefs_api.save, c, customer.id, body),
            f"/customers/{customer.id}/notify-preferences",
        )
    ):
        return ok
    values = {"severity": severity, "always": "true" if always else ""}
    return prefs_page(request, c, customer, Form("pref", values, errors))


@router.post("/notify-preferences/{preference_id}/delete")
def reset_pref(request: Request, c: Staff, preference_id: int) -> Response:
    row: NotifyPreference = prefs_api.reset(c, preference_id)
    return done(request, f"/customers/{row.customer_id}/notify-preferences", "flash.saved")


# -- the duty rota and its calendar ---------------------------------------------------------------------


def _beijing(raw: str) -> str:
    """A datetime-local value, read as Beijing time."""
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=CHINA).isoformat() if raw else raw
    except ValueError:
        return raw


def person(user: Any) -> str:
    return (user.display_name or user.username) if user else "—"


def rota_page(request: Request, c: Ctx, failed: Form | None = None) -> Response:
    """The rota; `failed` is a form that came back with errors (its id names which one)."""
    schedules = list(c.db.scalars(select(OnCallSchedule).order_by(OnCallSchedule.id)))
    overrides = list(
        c.db.scalars(
            select(OnCallOverride).where(OnCallOverride.ends_at > utcnow()).order_by(OnCallOverride.starts_at)
        )
    )
    people = oncall_api.staff_on_call(c)
    edit_forms = {
        s.id: Form(
            f"schedule_edit_{s.id}",
            {
                "name": s.name,
                "members": ", ".join(people[m].username if m in people else str(m) for m in s.members),
                "rotation_hours": f"{s.rotation_hours:g}",
                "starts_at": s.starts_at.astimezone(CHINA).strftime("%Y-%m-%dT%H:%M"),
            },
        )
        for s in schedules
    }
    override_forms = {s.id: Form(f"override_new_{s.id}") for s in schedules}
    new_form = Form("schedule_new", {"rotation_hours": "24"})
    if failed is not None:
        for forms in (edit_forms, override_forms):
            for key, form in forms.items():
                if form.id == failed.id:
                    forms[key] = failed
        new_form = failed if failed.id == new_form.id else new_form
    return page(
        request, "oncall.html", 422 if failed else 200, schedules=schedules, overrides=overrides,
        people=people, person=person, local=local, can_manage=access.may_manage(c),
        staff_choices=[(str(u.id), person(u)) for u in people.values()],
        f_new=new_form, edit_forms=edit_forms, override_forms=override_forms,
    )  # fmt: skip


@router.get("/oncall")
def rota(request: Request, c: Staff) -> Response:
    return rota_page(request, c)


def _schedule_fields(data: Mapping[str, str], people: dict[int, Any]) -> dict[str, Any]:
    by_name = {u.username: u.id for u in people.values()}
    members = [
        by_name.get(x, int(x) if x.isdigit() else -1)
        for x in re.split(r"[\s,]+", data.get("members", "").strip())
        if x
    ]
    return {
        "name": data.get("name", ""),
        "members": members,
        "rotation_hours": number(data.get("rotation_hours", "")) or 24.0,
        "starts_at": _beijing(data.get("starts_at", "")),
    }


@router.post("/oncall/schedules")
def add_schedule(request: Request, c: Staff, data: Posted) -> Response:
    access.require_manage(c)
    body, errors = check(request, oncall_api.ScheduleIn, _schedule_fields(data, oncall_api.staff_on_call(c)))
    if body is not None and (
        ok := saved(request, errors, partial(oncall_api.create_schedule, c, body), "/oncall")
    ):
        return ok
    return rota_page(request, c, Form("schedule_new", dict(data), errors))


@router.post("/oncall/schedules/{schedule_id}")
def edit_schedule(request: Request, c: Staff, schedule_id: int, data: Posted) -> Response:
    schedule = c.get(OnCallSchedule, schedule_id)
    access.require_manage(c)
    fields = _schedule_fields(data, oncall_api.staff_on_call(c))
    body, errors = check(request, oncall_api.SchedulePatch, fields)
    if body is not None and (
        ok := saved(request, errors, partial(oncall_api.update_schedule, c, schedule.id, body), "/oncall")
    ):
        return ok
    return rota_page(request, c, Form(f"schedule_edit_{schedule.id}", dict(data), errors))


@router.post("/oncall/schedules/{schedule_id}/delete")
def remove_schedule(request: Request, c: Staff, schedule_id: int) -> Response:
    oncall_api.delete_schedule(c, schedule_id)
    return done(request, "/oncall", "flash.saved")


@router.post("/oncall/schedules/{schedule_id}/overrides")
def add_rota_override(request: Request, c: Staff, schedule_id: int, data: Posted) -> Response:
    schedule = c.get(OnCallSchedule, schedule_id)
    access.require_manage(c)
    fields = {
        "user_id": int(data["user_id"]) if data.get("user_id", "").isdigit() else None,
        "starts_at": _beijing(data.get("starts_at", "")),
        "ends_at": _beijing(data.get("ends_at", "")),
    }
    body, errors = check(request, oncall_api.OverrideIn, fields)
    if body is not None and (
        ok := saved(request, errors, partial(oncall_api.add_override, c, schedule.id, body), "/oncall")
    ):
        return ok
    return rota_page(request, c, Form(f"override_new_{schedule.id}", dict(data), errors))


@router.post("/oncall/overrides/{oncall_override_id}/delete")
def remove_rota_override(request: Request, c: Staff, oncall_override_id: int) -> Response:
    oncall_api.delete_override(c, oncall_override_id)
    return done(request, "/oncall", "flash.saved")


@router.get("/oncall/calendar")
def calendar(request: Request, c: Staff, weeks: int = 2) -> Response:
    """Who is on duty each day of the next 2 to 4 weeks, shift by shift (Beijing time)."""
    weeks = weeks if weeks in CALENDAR_WEEKS else 2
    today: date = utcnow().astimezone(CHINA).date()
    start = datetime.combine(today, datetime.min.time(), CHINA).astimezone(UTC)
    end = start + timedelta(weeks=weeks)
    schedules = list(c.db.scalars(select(OnCallSchedule).order_by(OnCallSchedule.id)))
    people = oncall_api.staff_on_call(c)
    columns = []
    for schedule in schedules:
        overrides = list(
            c.db.scalars(
                select(OnCallOverride).where(
                    OnCallOverride.schedule_id == schedule.id,
                    OnCallOverride.ends_at > start,
                    OnCallOverride.starts_at < end,
                )
            )
        )
        columns.append((schedule, by_day(shifts(schedule, overrides, start, end), today, weeks * 7)))
    now = utcnow()
    return page(
        request, "oncall_calendar.html", schedules=schedules, columns=columns, days=weeks * 7, today=today,
        weeks=weeks, choices=CALENDAR_WEEKS, people=people, person=person, now=now,
        hm=lambda d: d.astimezone(CHINA).strftime("%H:%M"), weekday=lambda d: i18n_weekday(request, d),
    )  # fmt: skip


def i18n_weekday(request: Request, day: date) -> str:
    return translator_for(request)(f"alerting.weekday.{day.isoweekday()}")
