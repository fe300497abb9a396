"""The audit log page, for admins: who changed what, when, with the values before and after."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from opsdesk.audit.api import query_audit
from opsdesk.audit.models import AuditEntry
from opsdesk.tenancy.models import Customer
from opsdesk.tenancy.pages import page
from opsdesk.web.deps import Staff

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50
HIDDEN_FIELDS = {"id", "customer_id"}  # shown in their own columns


def as_int(value: str | None) -> int | None:
    # Filter forms send empty strings for "any"; a non-number filters nothing rather than failing.
    try:
        return int(value) if value else None
    except ValueError:
        return None


def changes(entry: AuditEntry) -> list[tuple[str, Any, Any]]:
    """(field, before, after) for each field the entry touched; creations omit empty values."""
    before, after = entry.before or {}, entry.after or {}
    keys = [k for k in (after or before) if k not in HIDDEN_FIELDS]
    if entry.action == "create":
        keys = [k for k in keys if after.get(k) not in (None, "", [], {})]
    return [(k, before.get(k), after.get(k)) for k in keys]


def filter_link(entity: str, customer_id: int | None, before_id: int | None) -> str:
    params = {"entity": entity, "customer_id": customer_id or "", "before_id": before_id or ""}
    return "/audit?" + urlencode({k: v for k, v in params.items() if v != ""})


@router.get("/audit")
def audit_page(
    request: Request, c: Staff, entity: str = "", customer_id: str = "", before_id: str = ""
) -> Response:
    c.require_admin()
    customer, before = as_int(customer_id), as_int(before_id)
    entries = list(c.db.scalars(query_audit(entity or None, customer, before, PAGE_SIZE)))
    older = filter_link(entity, customer, entries[-1].id) if len(entries) == PAGE_SIZE else None
    entities = sorted(c.db.scalars(select(AuditEntry.entity).distinct()))
    customers = list(c.db.scalars(select(Customer).order_by(Customer.name)))
    return page(
        request,
        "audit.html",
        entries=[(e, changes(e)) for e in entries],
        entities=entities,
        customers=customers,
        names={cu.id: cu.name for cu in customers},
        chosen={"entity": entity, "customer_id": customer},
        older=older,
        newest=filter_link(entity, customer, None) if before is not None else None,
    )
