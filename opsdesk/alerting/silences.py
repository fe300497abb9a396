"""Silences: which alerts a silence matches, and whether an incident's notices are held back.

Like Alertmanager, a silence never stops an alert from firing or an incident from opening; the
notification policy asks `silenced_by` before it queues anything and records why it did not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.alerting.models import Alert, Incident, Silence

MatchOp = Literal["=", "!=", "=~", "!~"]
MATCH_OPS: tuple[MatchOp, ...] = ("=", "!=", "=~", "!~")


def label_matches(labels: dict[str, str], name: str, op: str, value: str) -> bool:
    """One matcher against an alert's labels; a missing label is the empty string (as in Prometheus)."""
    have = labels.get(name, "")
    if op == "=":
        return have == value
    if op == "!=":
        return have != value
    found = re.fullmatch(value, have) is not None  # anchored, like Alertmanager's regex matchers
    return found if op == "=~" else not found


def matches(silence: Silence, alert: Alert) -> bool:
    if silence.customer_id != alert.customer_id:
        return False
    if silence.asset_id is not None and silence.asset_id != alert.asset_id:
        return False
    if silence.rule_key and silence.rule_key != alert.rule_key:
        return False
    labels = alert.labels or {}
    return all(label_matches(labels, m["name"], m["op"], m["value"]) for m in silence.matchers or [])


def is_active(silence: Silence, at: datetime) -> bool:
    return silence.starts_at <= at < silence.ends_at


def active_silences(session: Session, customer_id: int, at: datetime) -> list[Silence]:
    return list(
        session.scalars(
            select(Silence)
            .where(Silence.customer_id == customer_id, Silence.starts_at <= at, Silence.ends_at > at)
            .order_by(Silence.id)
        )
    )


def first_match(silences: Iterable[Silence], alert: Alert) -> Silence | None:
    return next((s for s in silences if matches(s, alert)), None)


def silenced_by(session: Session, incident: Incident, at: datetime) -> Silence | None:
    """The silence holding back this incident's notices: every alert of it is silenced.

    An incident a person reported (no alerts) is never silenced: someone asked for help.
    """
    silences = active_silences(session, incident.customer_id, at)
    if not silences:
        return None
    alerts = list(session.scalars(select(Alert).where(Alert.incident_id == incident.id)))
    if not alerts:
        return None
    found = [first_match(silences, a) for a in alerts]
    if any(s is None for s in found):
        return None
    return found[0]
