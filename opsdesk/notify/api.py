"""REST API for notifications: channels per customer and the provider's, test sends, the outbox.

A channel's type and config are checked by that channel's pydantic model; each bad field is
named in the 422 answer. Secrets go to the encrypted column and come back only as the mask.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from sqlalchemy import select

from opsdesk.core.crypto import MASK
from opsdesk.core.db import utcnow
from opsdesk.notify.channels import REGISTRY, InvalidChannel, channel_for, parse_config, split_secrets
from opsdesk.notify.models import DeliveryState, Notification, NotifyChannel
from opsdesk.notify.outbox import Links, build_message, retry_dead, send_now
from opsdesk.notify.schemas import (
    ChannelIn,
    ChannelOut,
    ChannelPatch,
    ChannelTypeOut,
    NotificationOut,
    TestResultOut,
)
from opsdesk.notify.templates import Notice
from opsdesk.tenancy.models import Customer
from opsdesk.web.deps import AnyUser, Ctx, Staff

router = APIRouter(prefix="/api/v1", tags=["notify"])
RETRYABLE = (DeliveryState.dead, DeliveryState.cancelled)


def invalid(exc: InvalidChannel) -> HTTPException:
    return HTTPException(422, exc.errors)


def checked(kind: str, config: dict[str, Any], stored: NotifyChannel | None = None) -> tuple[dict, str]:
    """(public config, encrypted-column JSON) for a new or changed channel; InvalidChannel if bad.

    Secrets left out or given as the mask keep their stored values, so a form can resend a
    config it was shown without knowing the secrets.
    """
    secret_names = channel_for(kind).secret_fields
    merged = dict(config)
    if stored is not None and stored.type == kind:
        kept = json.loads(stored.secrets) if stored.secrets else {}
        for name in secret_names:
            if merged.get(name) in (None, MASK) and name in kept:
                merged[name] = kept[name]
    for name in secret_names:
        if merged.get(name) == MASK:
            message = "required (the mask is not a value)"
            raise InvalidChannel([{"field": f"config.{name}", "message": message}])
    public, secrets = split_secrets(kind, parse_config(kind, merged))
    return public, json.dumps(secrets)


def out(channel: NotifyChannel) -> ChannelOut:
    kind = channel_for(channel.type)
    secrets = json.loads(channel.secrets) if channel.secrets else {}
    masked = {name: MASK for name in kind.secret_fields if secrets.get(name)}
    return ChannelOut(
        id=channel.id,
        customer_id=channel.customer_id,
        name=channel.name,
        type=channel.type,
        medium=_medium(channel),
        language=channel.language,
        enabled=channel.enabled,
        config={**channel.config, **masked},
        created_at=channel.created_at,
        updated_at=channel.updated_at,
    )


def _medium(channel: NotifyChannel) -> str:
    kind = channel_for(channel.type)
    try:
        return kind.medium_of(parse_config(channel.type, channel.config | _secrets(channel)))
    except InvalidChannel:
        return kind.medium


def _secrets(channel: NotifyChannel) -> dict[str, Any]:
    return json.loads(channel.secrets) if channel.secrets else {}


def create_channel(c: Ctx, customer_id: int | None, body: ChannelIn) -> NotifyChannel:
    try:
        public, secrets = checked(body.type, body.config)
    except InvalidChannel as exc:
        raise invalid(exc) from exc
    channel = NotifyChannel(
        customer_id=customer_id,
        name=body.name,
        type=body.type,
        config=public,
        secrets=secrets,
        language=body.language,
        enabled=body.enabled,
    )
    c.db.add(channel)
    c.db.flush()
    return channel


@router.get("/notify/channel-types", response_model=list[ChannelTypeOut])
def channel_types(c: AnyUser) -> Any:
    return [
        ChannelTypeOut(
            type=name,
            medium=kind.medium,
            secret_fields=list(kind.secret_fields),
            config_schema=kind.config_model.model_json_schema(),
        )
        for name, kind in sorted(REGISTRY.items())
    ]


@router.get("/customers/{customer_id}/channels", response_model=list[ChannelOut])
def list_channels(c: AnyUser, customer_id: int) -> Any:
    c.get(Customer, customer_id)
    rows = c.db.scalars(
        select(NotifyChannel).where(NotifyChannel.customer_id == customer_id).order_by(NotifyChannel.name)
    )
    return [out(ch) for ch in rows]


@router.post("/customers/{customer_id}/channels", response_model=ChannelOut, status_code=201)
def add_channel(c: AnyUser, customer_id: int, body: ChannelIn) -> Any:
    c.get(Customer, customer_id)
    c.require_write()
    return out(create_channel(c, customer_id, body))


@router.get("/notify/channels", response_model=list[ChannelOut])
def list_provider_channels(c: AnyUser) -> Any:
    """The provider's own channels (duty engineers, the command centre); admins only."""
    c.require_admin()
    rows = c.db.scalars(
        select(NotifyChannel).where(NotifyChannel.customer_id.is_(None)).order_by(NotifyChannel.name)
    )
    return [out(ch) for ch in rows]


@router.post("/notify/channels", response_model=ChannelOut, status_code=201)
def add_provider_channel(c: AnyUser, body: ChannelIn) -> Any:
    c.require_admin()
    return out(create_channel(c, None, body))


@router.get("/channels/{channel_id}", response_model=ChannelOut)
def get_channel(c: AnyUser, channel_id: int) -> Any:
    return out(c.get(NotifyChannel, channel_id))


@router.patch("/channels/{channel_id}", response_model=ChannelOut)
def update_channel(c: AnyUser, channel_id: int, body: ChannelPatch) -> Any:
    channel = c.get(NotifyChannel, channel_id)
    c.require_write()
    if body.config is not None:
        try:
            channel.config, channel.secrets = checked(channel.type, body.config, channel)
        except InvalidChannel as exc:
            raise invalid(exc) from exc
    for name in ("name", "language", "enabled"):
        value = getattr(body, name)
        if value is not None:
            setattr(channel, name, value)
    c.db.flush()
    return out(channel)


@router.delete("/channels/{channel_id}", status_code=204)
def delete_channel(c: AnyUser, channel_id: int) -> None:
    channel = c.get(NotifyChannel, channel_id)
    c.require_write()
    c.db.delete(channel)


def test_message(channel: NotifyChannel, request: Request) -> Any:
    settings = request.app.state.runtime.settings
    links = Links(settings.public_url, settings.secret("secret_key"))
    notice = Notice(event="test", title=channel.name)
    return build_message(channel, notice, f"test:{channel.id}:{uuid.uuid4().hex}", links, channel.name)


@router.post("/channels/{channel_id}/test", response_model=TestResultOut)
async def test_channel(c: AnyUser, channel_id: int, request: Request) -> Any:
    """Send a test message now, outside the outbox, and answer with what the receiver said."""
    channel = c.get(NotifyChannel, channel_id)
    c.require_write()
    outcome = await send_now(channel, test_message(channel, request))
    return TestResultOut(delivered=outcome.sent, error=outcome.error)


# -- the outbox ------------------------------------------------------------------------------


def notification_out(row: Notification) -> NotificationOut:
    return NotificationOut(
        id=row.id,
        customer_id=row.customer_id,
        channel_id=row.channel_id,
        idempotency_key=row.idempotency_key,
        incident_id=row.incident_id,
        recipients=list(row.recipients),
        subject=str(row.message.get("subject", "")),
        state=row.state.value,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        sent_at=row.sent_at,
        created_at=row.created_at,
    )


def query_outbox(
    state: DeliveryState | None, customer_id: int | None, before_id: int | None, limit: int
) -> Any:
    query = select(Notification).order_by(Notification.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Notification.state == state)
    if customer_id is not None:
        query = query.where(Notification.customer_id == customer_id)
    if before_id is not None:
        query = query.where(Notification.id < before_id)
    return query


@router.get("/notify/outbox", response_model=list[NotificationOut])
def list_outbox(
    c: Staff,
    state: DeliveryState | None = None,
    customer_id: int | None = None,
    before_id: int | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    """Notifications, newest first; `state=dead` lists the dead letters."""
    return [notification_out(r) for r in c.db.scalars(query_outbox(state, customer_id, before_id, limit))]


@router.get("/outbox/{notification_id}", response_model=NotificationOut)
def get_notification(c: Staff, notification_id: int) -> Any:
    return notification_out(c.get(Notification, notification_id))


@router.post("/outbox/{notification_id}/retry", response_model=NotificationOut)
def retry_notification(c: Staff, notification_id: int, request: Request) -> Any:
    row = c.get(Notification, notification_id)
    c.require_write()
    if row.state not in RETRYABLE:
        raise HTTPException(409, f"only dead and cancelled notifications are retried, not {row.state}")
    retry_dead(row, utcnow())
    request.state.after_commit = poke
    return notification_out(row)


def poke(request: Request) -> None:
    worker = getattr(request.app.state, "notify_worker", None)
    if worker is not None:
        worker.poke()
