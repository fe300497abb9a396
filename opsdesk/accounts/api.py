"""REST API: the current user, API tokens, staff and customer users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from sqlalchemy import select

from opsdesk.accounts import tokens
from opsdesk.accounts.models import ApiToken, User
from opsdesk.accounts.passwords import hash_password, verify_password
from opsdesk.accounts.principal import STAFF_ROLES, Role, Scope
from opsdesk.accounts.schemas import (
    CustomerUserIn,
    Me,
    MePatch,
    StaffIn,
    TokenCreated,
    TokenIn,
    TokenOut,
    UserOut,
    UserPatch,
)
from opsdesk.accounts.service import UsernameTaken, create_user
from opsdesk.tenancy.models import Customer
from opsdesk.web.deps import AnyUser
from opsdesk.web.guard import self_service

router = APIRouter(prefix="/api/v1", tags=["accounts"])


def _me(c: AnyUser) -> User:
    user = c.db.get(User, c.principal.user_id)
    if user is None:
        raise HTTPException(404, "not found")
    return user


@router.get("/me", response_model=Me)
def get_me(c: AnyUser) -> Any:
    user = _me(c)
    return Me(**UserOut.model_validate(user).model_dump(), assigned_customers=sorted(c.principal.assigned))


@router.patch("/me", response_model=Me)
@self_service
def update_me(c: AnyUser, body: MePatch) -> Any:
    user = _me(c)
    if body.new_password is not None:
        if not body.current_password or not verify_password(user.password_hash, body.current_password):
            raise HTTPException(422, "current_password: wrong password")
        user.password_hash = hash_password(body.new_password)
    if body.language is not None:
        user.language = body.language
    if body.display_name is not None:
        user.display_name = body.display_name
    return get_me(c)


# -- tokens: each user manages their own -------------------------------------------------


@router.get("/tokens", response_model=list[TokenOut])
def list_tokens(c: AnyUser) -> Any:
    return c.db.scalars(select(ApiToken).where(ApiToken.user_id == c.principal.user_id))


@router.post("/tokens", response_model=TokenCreated, status_code=201)
@self_service
def create_token(c: AnyUser, body: TokenIn) -> Any:
    if c.principal.token_id is not None and Scope.write not in c.principal.scopes:
        raise HTTPException(403, "a read-only token cannot create tokens")
    scopes = set(body.scopes)
    if not c.principal.is_staff and Scope.write in scopes:
        raise HTTPException(422, "scopes: customer users can only have read tokens")
    row, plain = tokens.issue(c.db, _me(c), body.name, sorted(scopes), body.expires_at)
    return TokenCreated(**TokenOut.model_validate(row).model_dump(), token=plain)


@router.delete("/tokens/{token_id}", status_code=204)
@self_service
def revoke_token(c: AnyUser, token_id: int) -> None:
    row = c.get(ApiToken, token_id)  # scoping shows only one's own tokens (admins: all)
    tokens.revoke(row)


# -- staff (admin) ----------------------------------------------------------------------------


@router.get("/staff", response_model=list[UserOut])
def list_staff(c: AnyUser) -> Any:
    if not c.principal.is_staff:
        raise HTTPException(404, "not found")
    return c.db.scalars(select(User).where(User.role.in_(list(STAFF_ROLES))).order_by(User.username))


@router.post("/staff", response_model=UserOut, status_code=201)
def create_staff(c: AnyUser, body: StaffIn) -> Any:
    c.require_admin()
    fields = body.model_dump(exclude={"username", "password", "role"})
    try:
        return create_user(c.db, body.username, body.password, Role(body.role), None, **fields)
    except UsernameTaken as exc:
        raise HTTPException(409, str(exc)) from exc


# -- customer users (staff assigned to the customer manage them) ------------------------------


@router.get("/customers/{customer_id}/users", response_model=list[UserOut])
def list_customer_users(c: AnyUser, customer_id: int) -> Any:
    c.get(Customer, customer_id)
    return c.db.scalars(select(User).where(User.customer_id == customer_id).order_by(User.username))


@router.post("/customers/{customer_id}/users", response_model=UserOut, status_code=201)
def create_customer_user(c: AnyUser, customer_id: int, body: CustomerUserIn) -> Any:
    c.get(Customer, customer_id)
    c.require_write()
    fields = body.model_dump(exclude={"username", "password"})
    try:
        return create_user(c.db, body.username, body.password, Role.customer, customer_id, **fields)
    except UsernameTaken as exc:
        raise HTTPException(409, str(exc)) from exc


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(c: AnyUser, user_id: int) -> Any:
    return c.get(User, user_id)


@router.patch("/users/{user_id}", response_model=UserOut)
def update_user(c: AnyUser, user_id: int, body: UserPatch) -> Any:
    user = c.get(User, user_id)
    c.require_write()
    if user.customer_id is None:
        c.require_admin()
    for key, value in body.model_dump(exclude_unset=True, exclude={"password"}).items():
        if value is not None:
            setattr(user, key, value)
    if body.password is not None:
        user.password_hash = hash_password(body.password)
    return user
