"""Who may change alerting settings: admins and project leads change, other staff look.

Rule overrides and notification preferences are a customer's settings: its project lead (a
staff member with the project-lead role, or one named lead of that customer) or an admin.
The duty rota is the provider's: admins and project leads. Silences are day-to-day work: any
staff member who may write for the customer (tenant scoping checks the customer).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TypeVar

from fastapi import HTTPException
from sqlalchemy import select

from opsdesk.accounts.principal import Role
from opsdesk.tenancy.models import StaffAssignment, StaffRole, TenantOwned
from opsdesk.tenancy.scoping import PRINCIPAL_KEY
from opsdesk.web.deps import Ctx

REFUSED = "only an admin or the project lead may change this"


def _named_lead(c: Ctx, customer_id: int | None) -> bool:
    query = select(StaffAssignment.id).where(
        StaffAssignment.user_id == c.principal.user_id, StaffAssignment.role == StaffRole.project_lead
    )
    if customer_id is not None:
        query = query.where(StaffAssignment.customer_id == customer_id)
    return c.db.scalars(query).first() is not None


def may_manage(c: Ctx, customer_id: int | None = None) -> bool:
    """`customer_id` None: the provider's own settings (the rota)."""
    p = c.principal
    if not p.can_write:
        return False
    if p.is_admin or p.role is Role.project_lead:
        return True
    return p.user_id is not None and _named_lead(c, customer_id)


def require_manage(c: Ctx, customer_id: int | None = None) -> None:
    if not may_manage(c, customer_id):
        raise HTTPException(403, REFUSED)


@contextmanager
def provider_rows(c: Ctx) -> Iterator[None]:
    """Let a project lead write the rota, which tenant scoping keeps for admins (no customer owns it).

    Only after require_manage(c); the audit log still names the person (same label and user id).
    """
    require_manage(c)
    principal = c.principal
    c.db.flush()  # everything before is checked as the person's own change
    c.db.info[PRINCIPAL_KEY] = replace(principal, role=Role.admin)
    try:
        yield
        c.db.flush()
    finally:
        c.db.info[PRINCIPAL_KEY] = principal


Owned = TypeVar("Owned", bound=TenantOwned)


def delete_managed(c: Ctx, model: type[Owned], ident: int) -> Owned:
    """Delete a customer's alerting setting (override, preference) that the caller may manage."""
    row = c.get(model, ident)
    require_manage(c, row.customer_id)
    c.db.delete(row)
    c.db.flush()
    return row
