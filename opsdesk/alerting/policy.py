"""Who is told, how and when: the contract and the severity decide (R-INC-1, R-INC-3, R-TEN-5).

The default is DESIGN.md's table: P1 calls the on-duty engineer and the customer's designated
contacts 7x24 and keeps them posted until resolved; P2 goes by IM and SMS 7x24; P3 by email inside
the customer's agreed window (a workday-only service does not page at night or on holidays);
P4 waits for the digest. A customer's own preference for a severity (NotifyPreference: which of
its channels, 7x24 or inside the window) replaces the table for the customer's side. A maintenance
window or a silence in force holds messages back but keeps the record (a timeline entry).
Messages go through the outbox (opsdesk.notify), keyed so that each is queued once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from opsdesk.accounts.models import User
from opsdesk.alerting import incidents
from opsdesk.alerting.models import Incident, IncidentEvent, IncidentStatus, NotifyPreference
from opsdesk.alerting.oncall import on_duty
from opsdesk.alerting.rules import Severity
from opsdesk.alerting.silences import silenced_by
from opsdesk.core.calendar import ServiceWindow, next_open
from opsdesk.core.db import utcnow
from opsdesk.monitors.models import MaintenanceWindow
from opsdesk.notify import acklinks, outbox
from opsdesk.notify.channels.base import InvalidChannel, channel_for
from opsdesk.notify.models import Notification, NotifyChannel
from opsdesk.notify.templates import Notice
from opsdesk.tenancy.models import (
    Contact,
    ContactRole,
    Contract,
    ContractService,
    ContractStatus,
    Customer,
    ServiceItem,
    StaffAssignment,
    StaffRole,
)
from opsdesk.tenancy.scoping import as_system

if TYPE_CHECKING:
    from opsdesk.core.runtime import Runtime

log = logging.getLogger("opsdesk.alerting")
INCIDENT_SERVICE = "incident"  # the catalogue item whose window governs incident notices


@dataclass(frozen=True)
class Route:
    engineer: tuple[str, ...]  # media for the provider's side
    customer: tuple[str, ...]  # media for the customer's designated contacts
    always: bool  # 7x24, whatever the contract's window
    escalate_after_min: tuple[int, ...]  # unacknowledged: project lead, then admins


# A generic webhook goes wherever IM does: it is how customers wire us into their own tools.
ROUTES = {
    Severity.p1: Route(
        ("voice", "sms", "im", "webhook"), ("voice", "sms", "im", "webhook", "email"), True, (5, 15)
    ),
    Severity.p2: Route(("im", "webhook", "sms"), ("im", "webhook", "email"), True, (15, 45)),
    Severity.p3: Route(("email", "im", "webhook"), ("email", "webhook"), False, ()),
    Severity.p4: Route((), (), False, ()),
}
PROGRESS_EVERY_MIN = 30  # P1: the customer hears from us at least this often until resolved
clock = utcnow  # replaced by tests: "03:00 on a public holiday" without waiting for one


def _runtime(session: Session) -> Runtime:
    rt: Runtime = session.info["runtime"]
    return rt


def links(session: Session) -> outbox.Links:
    settings = _runtime(session).settings
    return outbox.Links(base_url=settings.public_url, secret_key=settings.secret("secret_key"))


def service_window(session: Session, customer_id: int, at: datetime) -> ServiceWindow:
    row = session.execute(
        select(ContractService.window)
        .join(Contract, Contract.id == ContractService.contract_id)
        .join(ServiceItem, ServiceItem.id == ContractService.service_item_id)
        .where(
            Contract.customer_id == customer_id,
            Contract.status == ContractStatus.active,
            Contract.start_date <= at.date(),
            Contract.end_date >= at.date(),
            ServiceItem.code == INCIDENT_SERVICE,
        )
    ).first()
    return ServiceWindow(row[0]) if row else ServiceWindow.workdays


def in_maintenance(session: Session, incident: Incident, at: datetime) -> bool:
    return (
        session.scalars(
            select(MaintenanceWindow.id).where(
                MaintenanceWindow.customer_id == incident.customer_id,
                MaintenanceWindow.starts_at <= at,
                MaintenanceWindow.ends_at > at,
                or_(MaintenanceWindow.asset_id.is_(None), MaintenanceWindow.asset_id == incident.asset_id),
            )
        ).first()
        is not None
    )


def preference(session: Session, customer_id: int, severity: Severity) -> NotifyPreference | None:
    return session.scalars(
        select(NotifyPreference).where(
            NotifyPreference.customer_id == customer_id, NotifyPreference.severity == severity
        )
    ).first()


def _channels(
    session: Session, customer_id: int | None, media: tuple[str, ...], only: list[int] | None = None
) -> list[NotifyChannel]:
    owner = (
        NotifyChannel.customer_id.is_(None)
        if customer_id is None
        else NotifyChannel.customer_id == customer_id
    )
    query = select(NotifyChannel).where(owner, NotifyChannel.enabled).order_by(NotifyChannel.id)
    if only is not None:
        query = query.where(NotifyChannel.id.in_(only))
    found = session.scalars(query)
    out = []
    for c in found:
        try:
            # medium_of: one Twilio channel calls, another texts, by its configured mode
            medium = channel_for(c.type).medium_of(outbox.channel_config(c))
        except InvalidChannel as exc:  # refused by the API; a broken old row must not stop the rest
            log.warning("channel %s skipped: %s", c.id, exc)
            continue
        if medium in media:
            out.append(c)
    return out


def _phones(users: list[User]) -> list[str]:
    return [u.phone for u in users if u.phone]


def engineers_on_duty(session: Session, incident: Incident, at: datetime) -> list[User]:
    duty = on_duty(session, at)
    if duty is not None:
        user = session.get(User, duty)
        if user is not None and user.is_active:
            return [user]
    # No rota yet: the engineers assigned to the customer are on duty for it.
    return list(
        session.scalars(
            select(User)
            .join(StaffAssignment, StaffAssignment.user_id == User.id)
            .where(StaffAssignment.customer_id == incident.customer_id, User.is_active)
        )
    )


def contacts(session: Session, incident: Incident, severity: Severity) -> list[Contact]:
    roles = [ContactRole.primary, ContactRole.secondary] if severity is Severity.p1 else [ContactRole.primary]
    return list(
        session.scalars(
            select(Contact)
            .where(Contact.customer_id == incident.customer_id, Contact.role.in_(roles))
            .order_by(Contact.role)
        )
    )


def _queued_before(session: Session, key: str) -> bool:
    found = session.scalars(
        select(Notification.id).where(
            or_(Notification.idempotency_key == key, Notification.idempotency_key.like(f"{key}/%"))
        )
    ).first()
    return found is not None


def notice(session: Session, incident: Incident, event: str, detail: str = "") -> Notice:
    customer = session.get(Customer, incident.customer_id)
    return Notice(
        event=event,  # type: ignore[arg-type]
        title=incident.title,
        customer=customer.name if customer else "",
        severity=incident.severity.value,
        incident_id=incident.id,
        detail=detail,
        at=clock(),
    )


ALL_MEDIA = ("voice", "sms", "im", "webhook", "email")


def _held_back(session: Session, incident: Incident, key: str, at: datetime) -> bool:
    """A maintenance window or a silence in force: record it once per message, send nothing."""
    data: dict[str, Any] = {}
    if in_maintenance(session, incident, at):
        kind, body = "suppressed", "maintenance window in force"
    else:
        silence = silenced_by(session, incident, at)
        if silence is None:
            return False
        kind, body, data = "silenced", f"silenced by #{silence.id}", {"silence": silence.id}
    earlier = session.scalars(
        select(IncidentEvent.data).where(
            IncidentEvent.incident_id == incident.id, IncidentEvent.kind.in_(["suppressed", "silenced"])
        )
    )
    if not any((d or {}).get("key") == key for d in earlier):  # the escalation loop asks again and again
        incidents.timeline(session, incident, kind, at, body=body, internal=True, key=key, **data)
    return True


def send(
    session: Session,
    incident: Incident,
    event: str,
    key: str,
    engineer_media: tuple[str, ...],
    customer_media: tuple[str, ...] | None,
    at: datetime,
    engineers: list[User] | None = None,
) -> int:
    """Queue the notices; return how many outbox rows were added. Records each on the timeline.

    `customer_media` None: the customer's side as its preference (or the default table) says;
    a tuple narrows it (e.g. no phone call to say that all is well).
    """
    route = ROUTES[incident.severity]
    if _held_back(session, incident, key, at):
        return 0
    pref = preference(session, incident.customer_id, incident.severity)
    engineer_from = at if route.always else next_open(service_window(session, incident.customer_id, at), at)
    customer_from = engineer_from
    only: list[int] | None = None
    if pref is not None:  # the customer's own choice for its side
        only = list(pref.channel_ids or [])
        always = pref.always
        customer_from = at if always else next_open(service_window(session, incident.customer_id, at), at)
        customer_media = ALL_MEDIA if customer_media is None else customer_media
    elif customer_media is None:
        customer_media = route.customer
    staff = engineers if engineers is not None else engineers_on_duty(session, incident, at)
    people = contacts(session, incident, incident.severity)
    the_notice = notice(session, incident, event)
    queued = 0
    sides = (
        (None, engineer_media, _phones(staff), "engineer", engineer_from, None),
        (
            incident.customer_id,
            customer_media,
            [c.phone for c in people if c.phone],
            "customer",
            customer_from,
            only,
        ),
    )
    for owner, media, phones, side, not_before, chosen in sides:
        for channel in _channels(session, owner, media, chosen):
            kind = channel_for(channel.type)
            recipients = phones if kind.per_recipient else None
            if kind.per_recipient and not recipients:
                continue
            if _queued_before(session, f"{key}:{channel.id}"):
                continue
            rows = outbox.enqueue(
                session,
                channel,
                the_notice,
                f"{key}:{channel.id}",
                links(session),
                recipients=recipients,
                not_before=not_before,
                customer_id=incident.customer_id,
            )
            queued += len(rows)
            incidents.timeline(
                session,
                incident,
                "notified",
                at,
                body=f"{channel.name} ({kind.medium})",
                internal=side == "engineer",
                channel=channel.id,
                side=side,
                recipients=recipients or [],
                not_before=not_before.isoformat() if not_before else None,
            )
    return queued


@incidents.on_incident_change
def on_change(session: Session, incident: Incident, what: str) -> None:
    if "runtime" not in session.info:
        return  # a session without a runtime (a script): nothing to send with
    with as_system(session):  # a customer's report sends notices it could not write itself
        _on_change(session, incident, what)


def _on_change(session: Session, incident: Incident, what: str) -> None:
    route = ROUTES[incident.severity]
    at = clock()
    base = f"incident:{incident.id}"
    if what == "opened":
        send(session, incident, "opened", f"{base}:opened", route.engineer, None, at)
    elif what == IncidentStatus.resolved.value:
        if _never_told(session, incident):
            return  # silenced or in maintenance when it opened: nobody needs to hear it is over
        pref = preference(session, incident.customer_id, incident.severity)
        told = ALL_MEDIA if pref is not None else route.customer
        quiet = tuple(m for m in told if m != "voice")  # no phone call to say all is well
        send(
            session,
            incident,
            "resolved",
            f"{base}:resolved",
            tuple(m for m in route.engineer if m != "voice"),
            quiet,
            at,
        )
    elif what == "customer_cause":  # R-INC-5: the customer hears whose cause it was
        send(session, incident, "update", f"{base}:customer_cause", (), ("im", "webhook", "email"), at)


def _never_told(session: Session, incident: Incident) -> bool:
    kinds = set(
        session.scalars(
            select(IncidentEvent.kind).where(
                IncidentEvent.incident_id == incident.id,
                IncidentEvent.kind.in_(["suppressed", "silenced", "notified"]),
            )
        )
    )
    return bool(kinds) and "notified" not in kinds


def escalate(session: Session, now: datetime) -> list[int]:
    """Move unacknowledged incidents up a level when their time is up; P1 progress updates.

    Called by the notify role's loop with the current time (tests pass any time they like).
    Returns the ids of incidents that were escalated.
    """
    escalated: list[int] = []
    live = session.scalars(
        select(Incident).where(Incident.status.in_([IncidentStatus.open, IncidentStatus.acknowledged]))
    )
    for incident in live:
        route = ROUTES[incident.severity]
        minutes = (now - incident.opened_at).total_seconds() / 60
        level = incident.escalation_level
        if (
            incident.status is IncidentStatus.open
            and level < len(route.escalate_after_min)
            and minutes >= route.escalate_after_min[level]
        ):
            targets = _escalation_targets(session, incident, level)
            send(
                session,
                incident,
                "reminder",
                f"incident:{incident.id}:escalation:{level + 1}",
                ("voice", "sms", "im"),
                (),
                now,
                engineers=targets,
            )
            incident.escalation_level = level + 1
            incidents.timeline(
                session,
                incident,
                "escalated",
                now,
                internal=True,
                body=", ".join(u.username for u in targets),
                level=level + 1,
            )
            escalated.append(incident.id)
        if incident.severity is Severity.p1:
            beat = int(minutes // PROGRESS_EVERY_MIN)
            if beat >= 1:
                send(
                    session,
                    incident,
                    "update",
                    f"incident:{incident.id}:progress:{beat}",
                    (),
                    ("sms", "im", "email"),
                    now,
                )
    return escalated


def _escalation_targets(session: Session, incident: Incident, level: int) -> list[User]:
    if level == 0:  # the customer's project lead
        query = (
            select(User)
            .join(StaffAssignment, StaffAssignment.user_id == User.id)
            .where(
                StaffAssignment.customer_id == incident.customer_id,
                StaffAssignment.role == StaffRole.project_lead,
            )
        )
    else:  # the provider's admins
        from opsdesk.accounts.principal import Role

        query = select(User).where(User.role == Role.admin)
    return [u for u in session.scalars(query.where(User.is_active))]


def acknowledge_from_link(session: Session, incident_id: int, who: str) -> str:
    """What the signed link in a message does: the incident is taken by whoever it was sent to."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        return "incident not found"
    if incident.status is IncidentStatus.open:
        incidents.set_status(session, incident, IncidentStatus.acknowledged, clock(), actor=f"{who} (link)")
    return f"acknowledged: {incident.title}"


acklinks.set_handler(acknowledge_from_link)
