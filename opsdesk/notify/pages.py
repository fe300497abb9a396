"""Console pages: the outbox (pending, sent, dead letters, retry), a customer's channels, and the
page behind the acknowledge link in a message.

Writes go through the principal's session and the API's checks, as on every other page.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import func, select

from opsdesk.notify import acklinks
from opsdesk.notify.api import RETRYABLE, checked, poke, query_outbox, test_message
from opsdesk.notify.channels import REGISTRY, InvalidChannel
from opsdesk.notify.models import DeliveryState, Notification, NotifyChannel
from opsdesk.notify.outbox import retry_dead, send_now
from opsdesk.notify.schemas import ChannelIn
from opsdesk.tenancy.models import Customer
from opsdesk.tenancy.pages import Form, Forms, Posted, done, page, translator_for
from opsdesk.web.deps import Ctx, OptionalDB, Staff

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 200
LANGUAGES = ("zh-CN", "en", "both")


def type_fields() -> dict[str, str]:
    """For the form's hint: each type's fields, required ones starred."""
    out = {}
    for name, kind in sorted(REGISTRY.items()):
        schema = kind.config_model.model_json_schema()
        required = set(schema.get("required", []))
        out[name] = ", ".join(f"{f}*" if f in required else f for f in schema.get("properties", {}))
    return out


# -- the outbox ------------------------------------------------------------------------------


@router.get("/notify/outbox")
def outbox_page(request: Request, c: Staff, state: str = "") -> Response:
    chosen = DeliveryState(state) if state in DeliveryState.__members__ else None
    rows = list(c.db.scalars(query_outbox(chosen, None, None, PAGE_SIZE)))
    counts = {s.value: 0 for s in DeliveryState}
    for st, n in c.db.execute(select(Notification.state, func.count()).group_by(Notification.state)):
        counts[DeliveryState(st).value] = int(n)
    channel_ids = {r.channel_id for r in rows if r.channel_id is not None}
    found = c.db.scalars(select(NotifyChannel).where(NotifyChannel.id.in_(channel_ids)))
    channels = {ch.id: ch for ch in found}
    customers = {cu.id: cu.name for cu in c.db.scalars(select(Customer))}
    return page(
        request,
        "notify_outbox.html",
        rows=rows,
        counts=counts,
        states=[s.value for s in DeliveryState],
        chosen=chosen.value if chosen else "",
        channels=channels,
        customers=customers,
        retryable=[s.value for s in RETRYABLE],
    )


@router.post("/notify/outbox/{notification_id}/retry")
def retry_page(request: Request, c: Staff, notification_id: int) -> Response:
    row = c.get(Notification, notification_id)
    c.require_write()
    if row.state in RETRYABLE:
        retry_dead(row)
        request.state.after_commit = poke
    return done(request, "/notify/outbox", "notify.outbox.retried")


# -- a customer's channels -------------------------------------------------------------------


def channels_page(request: Request, c: Ctx, customer: Customer, failed: Form | None = None) -> Response:
    rows = list(
        c.db.scalars(
            select(NotifyChannel).where(NotifyChannel.customer_id == customer.id).order_by(NotifyChannel.name)
        )
    )
    blank = Form("channel_new", {"type": "webhook", "language": customer.language, "config": "{}"})
    return page(
        request,
        "notify_channels.html",
        422 if failed else 200,
        customer=customer,
        rows=rows,
        forms=Forms({"channel_new": failed or blank}),
        types=type_fields(),
        languages=LANGUAGES,
    )


@router.get("/customers/{customer_id}/channels")
def customer_channels(request: Request, c: Staff, customer_id: int) -> Response:
    return channels_page(request, c, c.get(Customer, customer_id))


def form_errors(request: Request, data: dict[str, str]) -> tuple[ChannelIn | None, dict[str, str]]:
    t = translator_for(request)
    try:
        config = json.loads(data.get("config") or "{}")
    except json.JSONDecodeError as exc:
        return None, {"config": t("notify.channels.bad_json", error=exc.msg)}
    if not isinstance(config, dict):
        return None, {"config": t("notify.channels.bad_json", error="an object {...} is expected")}
    try:
        body = ChannelIn(
            name=data.get("name", ""),
            type=data.get("type", ""),
            config=config,
            language=data.get("language", "zh-CN"),
            enabled=bool(data.get("enabled")),
        )
    except ValidationError as exc:
        return None, {str(e["loc"][0]): e["msg"] for e in exc.errors() if e["loc"]}
    return body, {}


@router.post("/customers/{customer_id}/channels")
def add_customer_channel(request: Request, c: Staff, customer_id: int, data: Posted) -> Response:
    customer = c.get(Customer, customer_id)
    c.require_write()
    body, errors = form_errors(request, data)
    if body is not None:
        try:
            public, secrets = checked(body.type, body.config)
        except InvalidChannel as exc:
            field = {"type": "type"}
            for e in exc.errors:
                key = field.get(e["field"], "config")
                errors[key] = "; ".join(filter(None, [errors.get(key, ""), f"{e['field']}: {e['message']}"]))
        else:
            c.db.add(
                NotifyChannel(
                    customer_id=customer.id,
                    name=body.name,
                    type=body.type,
                    config=public,
                    secrets=secrets,
                    language=body.language,
                    enabled=body.enabled,
                )
            )
            c.db.flush()
            return done(request, f"/customers/{customer.id}/channels", "notify.channels.saved")
    return channels_page(request, c, customer, Form("channel_new", data, errors))


@router.post("/channels/{channel_id}/delete")
def delete_channel_page(request: Request, c: Staff, channel_id: int) -> Response:
    channel = c.get(NotifyChannel, channel_id)
    c.require_write()
    back = f"/customers/{channel.customer_id}/channels" if channel.customer_id else "/notify/outbox"
    c.db.delete(channel)
    return done(request, back, "notify.channels.deleted")


@router.post("/channels/{channel_id}/test")
async def test_channel_page(request: Request, c: Staff, channel_id: int) -> Response:
    channel = c.get(NotifyChannel, channel_id)
    c.require_write()
    outcome = await send_now(channel, test_message(channel, request))
    back = f"/customers/{channel.customer_id}/channels" if channel.customer_id else "/notify/outbox"
    if outcome.sent:
        return done(request, back, "notify.channels.test_ok")
    t = translator_for(request)
    # A flash holds a message key; the error is the receiver's own words, shown as given.
    return done(request, back, t("notify.channels.test_failed", error=outcome.error))


# -- the acknowledge link --------------------------------------------------------------------


def _claim(request: Request, token: str) -> tuple[acklinks.AckClaim | None, str, int]:
    secret = request.app.state.runtime.settings.secret("secret_key")
    try:
        return acklinks.verify(secret, token), "", 200
    except acklinks.AckLinkExpired:
        return None, "notify.ack.expired", 410
    except acklinks.AckLinkInvalid:
        return None, "notify.ack.invalid", 400


@router.get("/ack")
def ack_form(request: Request, db: OptionalDB, t: str = "") -> Response:
    """Shows what the link is for; only the button (a POST) acknowledges, so link previews don't."""
    claim, error, status = _claim(request, t)
    return page(request, "notify_ack.html", status, claim=claim, error=error, token=t, result="")


@router.post("/ack")
def ack(request: Request, db: OptionalDB, data: Posted) -> Response:
    token = data.get("t", "")
    claim, error, status = _claim(request, token)
    result: Any = ""
    if claim is not None:
        handler = acklinks.handler()
        if handler is None:
            error, status = "notify.ack.unavailable", 503
        else:
            result = handler(db, claim.incident_id, claim.who)
    return page(request, "notify_ack.html", status, claim=claim, error=error, token=token, result=result)
