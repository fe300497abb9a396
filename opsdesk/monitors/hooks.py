"""A website asset gets its homepage check when it is created, however it is created (R-MON-5).

Hooked on the ORM flush, like the audit log, so the API, the pages, the CSV import and the CLI
all get it; the monitor is added in the same transaction, by the same principal.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from opsdesk.monitors.checks import CheckDefinitionError
from opsdesk.monitors.models import Monitor
from opsdesk.monitors.service import homepage_monitor
from opsdesk.tenancy.models import Asset, AssetType

log = logging.getLogger("opsdesk.monitors")


@event.listens_for(Session, "after_flush")
def _homepage_checks(session: Session, _ctx: Any) -> None:
    websites = [o for o in session.new if isinstance(o, Asset) and o.type is AssetType.website and o.url]
    for asset in websites:
        try:
            session.add(homepage_monitor(asset))
        except CheckDefinitionError as exc:  # a URL the asset schema allowed but the check does not
            log.warning("no homepage check for asset %s: %s", asset.id, exc)


DEFINITION = ("type", "config", "enabled", "runner", "agent_asset_id")


@event.listens_for(Session, "before_flush")
def _bump_revision(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in session.dirty:
        if isinstance(obj, Monitor):
            state = inspect(obj)
            if any(state.attrs[name].history.has_changes() for name in DEFINITION):
                obj.revision = (obj.revision or 1) + 1
