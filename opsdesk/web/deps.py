"""Request dependencies: the database session, who is asking, and what they may do."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.accounts.models import User
from opsdesk.accounts.principal import Principal, Role, Scope
from opsdesk.accounts.tokens import lookup
from opsdesk.core.db import utcnow
from opsdesk.core.runtime import Runtime
from opsdesk.tenancy.scoping import assigned_customers, bind

T = TypeVar("T")
USER_KEY = "uid"


class LoginRequired(Exception):
    """No valid session or token; pages redirect to the login form, the API answers 401."""


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def principal_for(session: Session, user: User, token_id: int | None = None, scopes: Any = None) -> Principal:
    assigned = (
        frozenset() if user.role in (Role.admin, Role.customer) else assigned_customers(session, user.id)
    )
    label = user.username
    return Principal(
        user_id=user.id,
        label=label,
        role=user.role,
        customer_id=user.customer_id,
        assigned=assigned,
        token_id=token_id,
        scopes=frozenset(Scope(s) for s in scopes) if scopes is not None else frozenset(Scope),
    )


def _authenticate(request: Request, session: Session) -> tuple[Principal | None, User | None]:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        token = lookup(session, auth[7:].strip())
        if token is None or token.asset_id is not None:  # agent tokens only push data
            return None, None
        user = session.get(User, token.user_id)
        if user is None or not user.is_active:
            return None, None
        token.last_used_at = utcnow()
        principal = principal_for(session, user, token.id, token.scopes)
        return Principal(**{**principal.__dict__, "label": f"{user.username} (token {token.name})"}), user
    uid = request.session.get(USER_KEY)
    if not isinstance(uid, int):
        return None, None
    user = session.scalars(select(User).where(User.id == uid, User.is_active)).first()
    if user is None:
        request.session.pop(USER_KEY, None)
        return None, None
    return principal_for(session, user), user


def optional_db(request: Request) -> Iterator[Session]:
    """A session bound to whoever is asking (or to nobody, for the login form)."""
    session = runtime(request).sessions()
    try:
        principal, user = _authenticate(request, session)
        request.state.user_language = user.language if user else None
        session.commit()  # token last_used_at, before binding so it is not audited
        bind(session, principal)
        request.state.principal = principal
        yield session
        session.commit()
        after_commit = getattr(request.state, "after_commit", None)
        if after_commit is not None:  # e.g. tell the probe that definitions changed
            after_commit(request)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# Function scope: commit (and its errors) happen before the response is sent, not after.
OptionalDB = Annotated[Session, Depends(optional_db, scope="function")]


@dataclass
class Ctx:
    db: Session
    principal: Principal
    rt: Runtime

    def get(self, model: type[T], ident: Any) -> T:
        """The object if the principal may see it, else 404 (never 403: existence is secret)."""
        if not isinstance(ident, int):
            raise HTTPException(404, "not found")
        obj = self.db.scalars(select(model).where(model.id == ident)).first()  # type: ignore[attr-defined]
        if obj is None:
            raise HTTPException(404, "not found")
        return obj

    def require_write(self) -> None:
        if not self.principal.can_write:
            raise HTTPException(403, "read-only access")

    def require_admin(self) -> None:
        if not self.principal.is_admin:
            raise HTTPException(403, "admin only")


def ctx(db: OptionalDB, request: Request) -> Ctx:
    principal: Principal | None = request.state.principal
    if principal is None:
        raise LoginRequired()
    return Ctx(db=db, principal=principal, rt=runtime(request))


def staff_ctx(c: Annotated[Ctx, Depends(ctx)]) -> Ctx:
    if not c.principal.is_staff:
        raise HTTPException(404, "not found")
    return c


AnyUser = Annotated[Ctx, Depends(ctx)]
Staff = Annotated[Ctx, Depends(staff_ctx)]
