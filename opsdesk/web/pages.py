"""The home page and the customer portal.

Home sends staff to the console and customer users to their portal. The portal is read-only
and shows only what the customer may know of its own service: no credentials, no internal notes.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from opsdesk.accounts.models import User
from opsdesk.tenancy.models import Asset, Contact, Contract, Customer, StaffAssignment, StaffRole
from opsdesk.tenancy.pages import current_contract, owned, page
from opsdesk.web.deps import AnyUser, Ctx

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(c: AnyUser) -> Response:
    return RedirectResponse("/customers" if c.principal.is_staff else "/portal", status_code=303)


def team(c: Ctx, customer_id: int) -> list[dict[str, Any]]:
    """The provider's people for this customer (R-TEN-6): project leads first, names only."""
    rows = owned(c, StaffAssignment, customer_id, StaffAssignment.id)
    assignments = sorted(rows, key=lambda a: (a.role is not StaffRole.project_lead, a.id))
    people = {u.id: u for u in c.db.scalars(select(User).where(User.customer_id.is_(None), User.is_active))}
    return [
        {"name": people[a.user_id].display_name or people[a.user_id].username, "role": a.role}
        for a in assignments
        if a.user_id in people
    ]


@router.get("/portal")
def portal(request: Request, c: AnyUser) -> Response:
    if c.principal.is_staff or c.principal.customer_id is None:
        return RedirectResponse("/customers", status_code=303)
    customer = c.get(Customer, c.principal.customer_id)
    cid = customer.id
    contracts = owned(c, Contract, cid, Contract.start_date.desc())
    return page(
        request,
        "portal.html",
        customer=customer,
        contract=current_contract(contracts),
        contracts=contracts,
        assets=owned(c, Asset, cid, Asset.name),
        contacts=owned(c, Contact, cid, Contact.role, Contact.name),
        team=team(c, cid),
    )
