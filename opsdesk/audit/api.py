"""The audit log, for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from opsdesk.audit.models import AuditEntry
from opsdesk.web.deps import AnyUser

router = APIRouter(prefix="/api/v1", tags=["audit"])


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor: str
    user_id: int | None
    token_id: int | None
    action: str
    entity: str
    entity_id: int | None
    customer_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def query_audit(entity: str | None, customer_id: int | None, before_id: int | None, limit: int) -> Any:
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if entity:
        q = q.where(AuditEntry.entity == entity)
    if customer_id is not None:
        q = q.where(AuditEntry.customer_id == customer_id)
    if before_id is not None:
        q = q.where(AuditEntry.id < before_id)
    return q


@router.get("/audit", response_model=list[AuditOut])
def list_audit(
    c: AnyUser,
    entity: str | None = None,
    customer_id: int | None = None,
    before_id: int | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> Any:
    c.require_admin()
    return c.db.scalars(query_audit(entity, customer_id, before_id, limit))
