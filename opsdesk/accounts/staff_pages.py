"""Staff management for admins: list the provider's people, add them, switch them on and off."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import select

from opsdesk.accounts.models import User
from opsdesk.accounts.principal import STAFF_ROLES, Role
from opsdesk.accounts.schemas import StaffIn
from opsdesk.accounts.service import UsernameTaken, create_user
from opsdesk.tenancy.pages import Form, Forms, Posted, done, page, save, translator_for, validate
from opsdesk.web.deps import Ctx, Staff

router = APIRouter(include_in_schema=False)


def staff_page(request: Request, c: Ctx, failed: Form | None = None) -> Response:
    people = c.db.scalars(select(User).where(User.role.in_(list(STAFF_ROLES))).order_by(User.username))
    fresh = Form("staff_new", {"role": Role.engineer.value, "language": "zh-CN"})
    forms = Forms({"staff_new": failed or fresh})
    return page(request, "staff.html", 422 if failed else 200, people=list(people), forms=forms)


@router.get("/staff")
def list_staff(request: Request, c: Staff) -> Response:
    c.require_admin()
    return staff_page(request, c)


@router.post("/staff")
def create_staff(request: Request, c: Staff, data: Posted) -> Response:
    c.require_admin()
    typed = {k: v for k, v in data.items() if k != "password"}  # passwords are never echoed
    body, errors = validate(request, StaffIn, data)
    if body is None:
        return staff_page(request, c, Form("staff_new", typed, errors))
    fields = body.model_dump(exclude={"username", "password", "role"})
    try:
        create_user(c.db, body.username, body.password, Role(body.role), None, **fields)
    except UsernameTaken:
        taken = {"username": translator_for(request)("form.err.taken")}
        return staff_page(request, c, Form("staff_new", typed, taken))
    return done(request, "/staff", "flash.created")


@router.post("/staff/{user_id}/active")
def set_active(request: Request, c: Staff, user_id: int, data: Posted) -> Response:
    c.require_admin()
    user = c.get(User, user_id)
    if user.customer_id is not None:
        raise HTTPException(404, "not found")
    if user.id == c.principal.user_id:
        raise HTTPException(403, "you cannot deactivate your own account")
    user.is_active = data.get("active") == "true"
    save(c)
    return done(request, "/staff", "flash.saved")
