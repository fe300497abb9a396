"""Creating users and logging in: shared by the API, the pages and the CLI."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk.accounts import throttle
from opsdesk.accounts.models import User
from opsdesk.accounts.passwords import DUMMY_HASH, hash_password, needs_rehash, verify_password
from opsdesk.accounts.principal import Role
from opsdesk.core.config import Settings
from opsdesk.core.db import utcnow


class UsernameTaken(ValueError):
    pass


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role,
    customer_id: int | None = None,
    **fields: str,
) -> User:
    if (role is Role.customer) != (customer_id is not None):
        raise ValueError("customer users need a customer; staff users must not have one")
    exists = session.scalars(
        select(User.id).where(func.lower(User.username) == username.lower()),
        execution_options={"skip_scoping": True},
    ).first()
    if exists is not None:
        raise UsernameTaken(f"username {username!r} is taken")
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        customer_id=customer_id,
        **fields,
    )
    session.add(user)
    session.flush()
    return user


class LoginFailed(Exception):
    pass


def login(session: Session, settings: Settings, username: str, password: str, address: str) -> User:
    """Check throttling, then the password; record the attempt. Raises Throttled or LoginFailed."""
    sec = settings.security
    throttle.check(session, username, address, sec.login_max_failures, sec.login_window_seconds)
    user = session.scalars(
        select(User).where(func.lower(User.username) == username.lower()),
        execution_options={"skip_scoping": True},
    ).first()
    ok = verify_password(user.password_hash if user else DUMMY_HASH, password)
    ok = ok and user is not None and user.is_active
    throttle.record(session, username, address, success=ok)
    if not ok or user is None:
        session.commit()
        raise LoginFailed("wrong username or password")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    session.commit()
    return user
