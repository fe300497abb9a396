"""API tokens: random, shown once, stored as SHA-256, scoped, revocable, optionally expiring."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.accounts.models import ApiToken, User
from opsdesk.accounts.principal import Scope
from opsdesk.core.db import utcnow

PREFIX = "odk_"
# Bumped by every revocation in this process, so caches of token lookups can drop their entries.
revocations = 0


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    session: Session,
    user: User,
    name: str,
    scopes: list[Scope] | None = None,
    expires_at: datetime | None = None,
    asset_id: int | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for `user` (an agent token if `asset_id` is given); return it and the plain token."""
    plain = PREFIX + secrets.token_urlsafe(32)
    chosen = sorted({Scope(s).value for s in (scopes or [Scope.read])})
    row = ApiToken(
        user_id=user.id,
        name=name,
        prefix=plain[:10],
        token_hash=digest(plain),
        scopes=chosen,
        expires_at=expires_at,
        asset_id=asset_id,
    )
    session.add(row)
    session.flush()
    return row, plain


def revoke(token: ApiToken, now: datetime | None = None) -> None:
    global revocations
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
        revocations += 1


def lookup(session: Session, plain: str, now: datetime | None = None) -> ApiToken | None:
    """The live token row for `plain`, or None if unknown, revoked or expired."""
    if not plain.startswith(PREFIX):
        return None
    row = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == digest(plain)),
        execution_options={"skip_scoping": True},
    ).first()
    now = now or utcnow()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    return row
