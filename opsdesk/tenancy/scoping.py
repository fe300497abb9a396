"""Tenant scoping, enforced in one place: the ORM session.

Every SELECT issued through a session bound to a principal gets criteria that keep rows of
other customers out, and every flush is checked against what the principal may change.
Routes never filter by customer themselves; an object another tenant owns is simply not found.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, or_, select
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from opsdesk.accounts.models import ApiToken, User
from opsdesk.accounts.principal import Principal, Role, Scope
from opsdesk.tenancy.models import Customer, ServiceItem, StaffAssignment, TenantOwned

PRINCIPAL_KEY = "principal"


class PermissionDenied(Exception):
    """The principal may see this object but not change it."""


def bind(session: Session, principal: Principal | None) -> Session:
    session.info[PRINCIPAL_KEY] = principal
    return session


@contextmanager
def as_system(session: Session) -> Iterator[None]:
    """Rows the platform writes on someone's behalf (the notices a customer's report sends).

    They are flushed inside, unchecked and unaudited as the person's own changes, then the
    session is the person's again.
    """
    principal = session.info.get(PRINCIPAL_KEY)
    session.flush()  # the person's own changes are checked as theirs
    session.info[PRINCIPAL_KEY] = None
    try:
        yield
        session.flush()
    finally:
        session.info[PRINCIPAL_KEY] = principal


def principal_of(session: Session) -> Principal | None:
    return session.info.get(PRINCIPAL_KEY)


def assigned_customers(session: Session, user_id: int) -> frozenset[int]:
    rows = session.execute(
        select(StaffAssignment.customer_id).where(StaffAssignment.user_id == user_id),
        execution_options={"skip_scoping": True},
    )
    return frozenset(r[0] for r in rows)


@event.listens_for(Session, "do_orm_execute")
def _scope_selects(state: ORMExecuteState) -> None:
    principal = principal_of(state.session)
    if (
        principal is None
        or principal.is_admin
        or not state.is_select
        or state.execution_options.get("skip_scoping")
    ):
        return
    ids = principal.visible_customers() or frozenset()
    own_user = principal.user_id if principal.user_id is not None else -1
    if principal.role is Role.customer:
        # A customer user sees its colleagues and the staff assigned to it, no other account.
        staff = select(StaffAssignment.user_id).where(StaffAssignment.customer_id.in_(ids))
        users = lambda cls: or_(cls.customer_id.in_(ids), cls.id.in_(staff))  # noqa: E731
    else:
        users = lambda cls: or_(cls.customer_id.is_(None), cls.customer_id.in_(ids))  # noqa: E731
    state.statement = state.statement.options(
        with_loader_criteria(TenantOwned, lambda cls: cls.customer_id.in_(ids), include_aliases=True),
        with_loader_criteria(Customer, Customer.id.in_(ids), include_aliases=True),
        with_loader_criteria(User, users, include_aliases=True),
        with_loader_criteria(ApiToken, ApiToken.user_id == own_user, include_aliases=True),
    )


def _owner_customer(obj: Any) -> int | None:
    if isinstance(obj, Customer):
        return obj.id
    if isinstance(obj, TenantOwned | User):
        return obj.customer_id
    return None


# Rows a customer user may create for its own customer (e.g. reporting an incident, R-INC-4);
# features register their models here. Customer users never change or delete existing rows.
CUSTOMER_CREATABLE: set[type[Any]] = set()


def customer_creatable(model: type[Any]) -> type[Any]:
    CUSTOMER_CREATABLE.add(model)
    return model


def check_write(principal: Principal, obj: Any, deleting: bool = False, creating: bool = False) -> None:
    """Raise PermissionDenied unless `principal` may create, change or delete `obj`."""
    if principal.is_admin:
        return
    if (
        creating
        and principal.role is Role.customer
        and type(obj) in CUSTOMER_CREATABLE
        and getattr(obj, "customer_id", None) == principal.customer_id
        and Scope.write in principal.scopes
    ):
        return
    if isinstance(obj, ApiToken) and obj.user_id == principal.user_id:
        return  # everyone manages their own tokens
    if isinstance(obj, User) and obj.id == principal.user_id and not deleting:
        return  # own language and password (the route decides which fields)
    if not principal.can_write:
        raise PermissionDenied("read-only access")
    if isinstance(obj, ServiceItem | StaffAssignment) or (isinstance(obj, User) and obj.customer_id is None):
        raise PermissionDenied("only an admin manages staff and the service catalogue")
    if isinstance(obj, Customer) and (obj.id is None or deleting):
        raise PermissionDenied("only an admin creates or deletes customers")
    owner = _owner_customer(obj)
    if owner is None or owner not in principal.assigned:
        raise PermissionDenied("not assigned to this customer")


@event.listens_for(Session, "before_flush")
def _guard_writes(session: Session, _ctx: Any, _instances: Any) -> None:
    principal = principal_of(session)
    if principal is None:
        return
    for obj in session.new:
        check_write(principal, obj, creating=True)
    for obj in session.dirty:
        if session.is_modified(obj, include_collections=False):
            check_write(principal, obj)
    for obj in session.deleted:
        check_write(principal, obj, deleting=True)
