"""The home page sends staff to the console and customer users to their portal."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from opsdesk.web.deps import AnyUser

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(c: AnyUser) -> Response:
    return RedirectResponse("/customers" if c.principal.is_staff else "/portal", status_code=303)
