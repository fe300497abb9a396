"""Two customers, A and B, each with everything a customer can own; staff; logins."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import select

from opsdesk.accounts.principal import Role
from opsdesk.accounts.service import create_user
from opsdesk.core.calendar import ServiceWindow
from opsdesk.core.runtime import Runtime
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
    token: int = 0  # an API token of the customer user, issued by the test that needs it

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
        return Tenant(
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
    return World(a=_tenant(rt, "A", eng_a), b=_tenant(rt, "B", eng_b))
