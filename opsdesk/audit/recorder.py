"""Record every change made through a session bound to a principal.

Hooked on the ORM flush, so no route can forget it: a person or a token that changes a row
leaves an entry with the values before and after. Secrets and password hashes are masked.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session

from opsdesk.audit.models import AuditEntry
from opsdesk.core.crypto import MASK, EncryptedString
from opsdesk.core.db import utcnow
from opsdesk.tenancy.models import Customer
from opsdesk.tenancy.scoping import principal_of

SKIPPED_COLUMNS = {"created_at", "updated_at", "last_used_at", "last_login_at"}
MASKED_COLUMNS = {"password_hash", "token_hash"}


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _snapshot(obj: Any, *, before: bool) -> dict[str, Any]:
    state = inspect(obj)
    out: dict[str, Any] = {}
    for col_attr in state.mapper.column_attrs:
        key = col_attr.key
        if key in SKIPPED_COLUMNS:
            continue
        hist = state.attrs[key].history
        if before:
            value = hist.deleted[0] if hist.deleted else (hist.unchanged[0] if hist.unchanged else None)
        else:
            value = hist.added[0] if hist.added else (hist.unchanged[0] if hist.unchanged else None)
        column = col_attr.columns[0]
        if key in MASKED_COLUMNS or isinstance(column.type, EncryptedString):
            value = MASK if value is not None else None
        out[key] = _plain(value)
    return out


def _changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


def _rows(session: Session) -> list[dict[str, Any]]:
    principal = principal_of(session)
    if principal is None:
        return []
    rows: list[dict[str, Any]] = []

    def add(obj: Any, action: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        customer_id = obj.id if isinstance(obj, Customer) else getattr(obj, "customer_id", None)
        rows.append(
            {
                "at": utcnow(),
                "actor": principal.label,
                "user_id": principal.user_id,
                "token_id": principal.token_id,
                "action": action,
                "entity": type(obj).__tablename__,
                "entity_id": getattr(obj, "id", None),
                "customer_id": customer_id,
                "before": before,
                "after": after,
            }
        )

    for obj in session.new:
        if not isinstance(obj, AuditEntry):
            add(obj, "create", None, _snapshot(obj, before=False))
    for obj in session.dirty:
        if isinstance(obj, AuditEntry) or not session.is_modified(obj, include_collections=False):
            continue
        before, after = _snapshot(obj, before=True), _snapshot(obj, before=False)
        b, a = _changed(before, after)
        state = inspect(obj)
        for secret_key in MASKED_COLUMNS | {
            c.key for c in state.mapper.column_attrs if isinstance(c.columns[0].type, EncryptedString)
        }:
            if secret_key in state.attrs and state.attrs[secret_key].history.added:
                b[secret_key], a[secret_key] = MASK, f"{MASK} (changed)"
        if a:
            add(obj, "update", b, a)
    for obj in session.deleted:
        add(obj, "delete", _snapshot(obj, before=True), None)
    return rows


@event.listens_for(Session, "after_flush")
def _record(session: Session, _ctx: Any) -> None:
    # after_flush still sees the pre-flush history, and ids of new rows are known by now.
    rows = _rows(session)
    if rows:
        session.connection().execute(insert(AuditEntry), rows)
