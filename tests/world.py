"""Two customers, A and B, each with everything a customer can own; staff; logins."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select

from opsdesk.accounts.principal import Role
from opsdesk.accounts.service import create_user
from opsdesk.alerting.models import (
    Incident,
    IncidentSource,
    IncidentStatus,
    NotifyPreference,
    RuleOverride,
    Silence,
)
from opsdesk.alerting.oncall import OnCallOverride, OnCallSchedule
from opsdesk.alerting.rules import Severity
from opsdesk.core.calendar import ServiceWindow
from opsdesk.core.runtime import Runtime
from opsdesk.monitors.models import MaintenanceWindow, Monitor
from opsdesk.notify.models import DeliveryState, Notification, NotifyChannel
from opsdesk.reports.service import fault, publish
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
    ServiceItem,
    StaffAssignment,
)

PASSWORD = "correct-horse-battery"


@dataclass
class Tenant:
    customer: int
    contract: int
    contract_service: int
    asset: int
    contact: int
    credential: int
    user: int
    assignment: int
    username: str
    monitor: int = 0
    window: int = 0
    incident: int = 0
    channel: int = 0
    notification: int = 0
    token: int = 0  # an API token of the customer user, issued by the test that needs it
    silence: int = 0
    override: int = 0
    preference: int = 0
    # The duty rota is the provider's, no customer's: seed_world gives tenant A a schedule and an
    # override to walk; B keeps 0, an id that exists nowhere, so its routes answer 404 like the rest.
    schedule: int = 0
    oncall_override: int = 0
    report: int = 0  # the incident's fault report, published

    def ids(self) -> dict[str, int]:
        """Path parameter name -> this tenant's object of that kind."""
        return {
            "customer_id": self.customer,
            "contract_id": self.contract,
            "contract_service_id": self.contract_service,
            "asset_id": self.asset,
            "contact_id": self.contact,
            "credential_id": self.credential,
            "user_id": self.user,
            "assignment_id": self.assignment,
            "token_id": self.token,
            "monitor_id": self.monitor,
            "window_id": self.window,
            "incident_id": self.incident,
            "channel_id": self.channel,
            "notification_id": self.notification,
            "silence_id": self.silence,
            "override_id": self.override,
            "preference_id": self.preference,
            "schedule_id": self.schedule,
            "oncall_override_id": self.oncall_override,
            "report_id": self.report,
        }


@dataclass
class World:
    a: Tenant
    b: Tenant
    admin: str = "admin"
    engineer_a: str = "eng-a"  # assigned to A only
    engineer_b: str = "eng-b"  # assigned to B only
    extra: dict[str, int] = field(default_factory=dict)


def _tenant(rt: Runtime, code: str, engineer_id: int) -> Tenant:
    with rt.sessions.begin() as s:
        customer = Customer(code=code, name=f"Customer {code}", language="zh-CN" if code == "A" else "en")
        s.add(customer)
        s.flush()
        contract = Contract(
            customer_id=customer.id,
            number=f"HT-2026-{code}",
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
            total_fee=Decimal("120000.00"),
        )
        s.add(contract)
        s.flush()
        item = s.scalars(select(ServiceItem).order_by(ServiceItem.id)).first()
        assert item is not None
        cs = ContractService(
            customer_id=customer.id,
            contract_id=contract.id,
            service_item_id=item.id,
            window=ServiceWindow.always,
        )
        asset = Asset(customer_id=customer.id, type=AssetType.server, name=f"web-{code}", ip="10.0.0.1")
        contact = Contact(
            customer_id=customer.id, role=ContactRole.primary, name=f"Contact {code}", phone="13800000000"
        )
        s.add_all([cs, asset, contact])
        s.flush()
        cred = Credential(customer_id=customer.id, asset_id=asset.id, name="root", secret=f"s3cret-{code}")
        assignment = StaffAssignment(customer_id=customer.id, user_id=engineer_id)
        s.add_all([cred, assignment])
        user = create_user(s, f"user-{code.lower()}", PASSWORD, Role.customer, customer.id)
        monitor = Monitor(
            customer_id=customer.id,
            asset_id=asset.id,
            name=f"ping-{code}",
            type="tcp",
            config={"host": "127.0.0.1", "port": 9, "interval_s": 3600},
        )
        window = MaintenanceWindow(
            customer_id=customer.id,
            starts_at=datetime(2026, 1, 1, tzinfo=UTC),
            ends_at=datetime(2026, 1, 2, tzinfo=UTC),
            reason=f"upgrade {code}",
        )
        incident = Incident(
            customer_id=customer.id,
            asset_id=asset.id,
            title=f"Incident {code}",
            severity=Severity.p3,
            opened_at=datetime(2026, 1, 1, tzinfo=UTC),
            status=IncidentStatus.closed,
            source=IncidentSource.phone,
        )
        channel = NotifyChannel(
            customer_id=customer.id,
            name=f"hook-{code}",
            type="webhook",
            config={"url": f"http://127.0.0.1:9/{code}"},
            secrets=json.dumps({"secret": f"hook-secret-{code}-0123456789"}),
            language="en",
        )
        s.add_all([monitor, window, incident, channel])
        s.flush()
        notification = Notification(
            customer_id=customer.id,
            channel_id=channel.id,
            idempotency_key=f"world-{code}",
            incident_id=incident.id,
            recipients=[],
            message={"subject": f"note {code}"},
            state=DeliveryState.dead,
            attempts=8,
            max_attempts=8,
        )
        silence = Silence(
            customer_id=customer.id,
            asset_id=asset.id,
            starts_at=datetime(2026, 1, 1, tzinfo=UTC),
            ends_at=datetime(2026, 1, 2, tzinfo=UTC),
            comment=f"silence {code}",
        )
        override = RuleOverride(customer_id=customer.id, rule_key="cpu_high", threshold=95.0)
        # P4 to nobody: what the default table does too, so no other test sees a difference.
        preference = NotifyPreference(customer_id=customer.id, severity=Severity.p4, channel_ids=[])
        s.add_all([notification, silence, override, preference])
        s.flush()
        report = publish(fault(s, incident), "world")
        s.flush()
        return Tenant(
            report=report.id,
            silence=silence.id,
            override=override.id,
            preference=preference.id,
            monitor=monitor.id,
            window=window.id,
            incident=incident.id,
            channel=channel.id,
            notification=notification.id,
            customer=customer.id,
            contract=contract.id,
            contract_service=cs.id,
            asset=asset.id,
            contact=contact.id,
            credential=cred.id,
            user=user.id,
            assignment=assignment.id,
            username=user.username,
        )


def seed_world(rt: Runtime) -> World:
    with rt.sessions.begin() as s:
        ensure_catalogue(s)
        create_user(s, "admin", PASSWORD, Role.admin)
        eng_a = create_user(s, "eng-a", PASSWORD, Role.engineer).id
        eng_b = create_user(s, "eng-b", PASSWORD, Role.engineer).id
    world = World(a=_tenant(rt, "A", eng_a), b=_tenant(rt, "B", eng_b))
    with rt.sessions.begin() as s:
        # No members: nobody is put on duty by it, so the policy keeps its fallback for other tests.
        rota = OnCallSchedule(name="world rota", members=[], starts_at=datetime(2026, 1, 1, tzinfo=UTC))
        s.add(rota)
        s.flush()
        swap = OnCallOverride(
            schedule_id=rota.id,
            user_id=eng_b,
            starts_at=datetime(2026, 1, 5, tzinfo=UTC),
            ends_at=datetime(2026, 1, 6, tzinfo=UTC),
        )
        s.add(swap)
        s.flush()
        world.a.schedule, world.a.oncall_override = rota.id, swap.id
    return world
