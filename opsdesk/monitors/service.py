"""Monitor definitions: validation against the check registry and the customer's assets; uptime."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from opsdesk.monitors import secrets
from opsdesk.monitors.checks import CheckDefinitionError, get, validate
from opsdesk.monitors.models import MaintenanceWindow, Monitor, MonitorEvent, MonitorState, Runner
from opsdesk.monitors.uptime import Uptime, compute
from opsdesk.tenancy.models import Asset, AssetType


class InvalidMonitor(ValueError):
    """Refused definition; `errors` maps field names to messages."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in errors.items()))
        self.errors = errors


def check_definition(
    session: Session,
    customer_id: int,
    type_name: str,
    config: dict[str, Any],
    asset_id: int | None,
    runner: Runner,
    agent_asset_id: int | None,
    stored: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The definition's config as stored (secrets encrypted); InvalidMonitor naming each bad field.

    `stored` is the config saved before, on an edit of the same type: secrets sent as the mask
    or left out keep their stored values.
    """
    try:
        model = validate(type_name, secrets.restore(config, stored) if stored else config)
    except secrets.SecretUnreadable as exc:
        raise InvalidMonitor({"config": str(exc)}) from None
    except CheckDefinitionError as exc:
        prefix = "config." if type_name else ""
        raise InvalidMonitor(
            {(f"{prefix}{k}" if k and k != "type" else (k or "config")): v for k, v in exc.as_dict().items()}
        ) from None
    unset = secrets.masks_left(model)
    if unset:
        raise InvalidMonitor({f"config.{path}": "required (the mask is not a value)" for path in unset})
    normalised = secrets.seal(model, stored)
    for field, ident in (("asset_id", asset_id), ("agent_asset_id", agent_asset_id)):
        if ident is None:
            continue
        asset = session.get(Asset, ident)
        if asset is None or asset.customer_id != customer_id:
            raise InvalidMonitor({field: "no such asset of this customer"})
        if field == "agent_asset_id" and asset.type is not AssetType.server:
            raise InvalidMonitor({field: "agents run on server assets"})
    if runner is Runner.agent and agent_asset_id is None:
        raise InvalidMonitor({"agent_asset_id": "required when runner is agent"})
    if runner is Runner.platform and get(type_name).host_local:
        raise InvalidMonitor(
            {"runner": f"a {type_name} check runs on the host itself: choose runner agent and its agent"}
        )
    return normalised


def homepage_monitor(asset: Asset) -> Monitor:
    """The default check of a website asset (R-MON-5): its URL answers 2xx/3xx within 10 s."""
    return Monitor(
        customer_id=asset.customer_id,
        asset_id=asset.id,
        name=f"{asset.name} homepage",
        type="http",
        config=validate("http", {"url": asset.url}).model_dump(mode="json"),
        runner=Runner.platform,
        state=MonitorState.unknown,
    )


def uptime(session: Session, monitor: Monitor, start: datetime, end: datetime) -> Uptime:
    before = session.scalars(
        select(MonitorEvent.to_state)
        .where(MonitorEvent.monitor_id == monitor.id, MonitorEvent.at < start)
        .order_by(MonitorEvent.at.desc())
        .limit(1)
    ).first()
    changes = [
        (e.at, e.to_state)
        for e in session.scalars(
            select(MonitorEvent)
            .where(MonitorEvent.monitor_id == monitor.id, MonitorEvent.at >= start, MonitorEvent.at < end)
            .order_by(MonitorEvent.at)
        )
    ]
    windows = session.execute(
        select(MaintenanceWindow.starts_at, MaintenanceWindow.ends_at).where(
            MaintenanceWindow.customer_id == monitor.customer_id,
            MaintenanceWindow.starts_at < end,
            MaintenanceWindow.ends_at > start,
            or_(MaintenanceWindow.asset_id.is_(None), MaintenanceWindow.asset_id == monitor.asset_id),
        )
    ).all()
    return compute(before or MonitorState.unknown, changes, [(w[0], w[1]) for w in windows], start, end)
