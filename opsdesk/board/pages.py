"""The fleet status board: one page for provider staff, problems first, refreshed in place.

Staff see the customers they are assigned to (admins: all), through their scoped session.
The page polls its body fragment with htmx; `?refresh=N` sets the period for wall displays.
Customer users are sent to their portal, whose own overview reuses the host tiles.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from opsdesk.board.build import Board, build_board
from opsdesk.core.db import utcnow
from opsdesk.hosts.pages import local
from opsdesk.tenancy.pages import page
from opsdesk.web.deps import AnyUser, Ctx
from opsdesk.web.templating import render

router = APIRouter(include_in_schema=False)
REFRESH_S = 10
REFRESH_RANGE = (2, 300)


def board_of(c: Ctx) -> Board:
    return build_board(c.db, c.rt.metrics, c.rt.settings.ingest.down_after_intervals, utcnow())


def refresh_period(refresh: int) -> int:
    low, high = REFRESH_RANGE
    return min(max(refresh, low), high)


def board_context(c: Ctx, refresh: int) -> dict[str, Any]:
    now = utcnow()
    board = build_board(c.db, c.rt.metrics, c.rt.settings.ingest.down_after_intervals, now)
    return {
        "board": board,
        "totals": board.totals,
        "refresh": refresh_period(refresh),
        "local": local,
        "now": now,
    }


@router.get("/board")
def board_page(request: Request, c: AnyUser, refresh: int = REFRESH_S) -> Response:
    if not c.principal.is_staff:
        return RedirectResponse("/portal", status_code=303)
    return page(request, "board.html", **board_context(c, refresh))


@router.get("/board/live")
def board_fragment(request: Request, c: AnyUser, refresh: int = REFRESH_S) -> Response:
    if not c.principal.is_staff:
        raise HTTPException(403, "staff only")
    return render(request, "_board_body.html", **board_context(c, refresh))


@router.get("/portal/board")
def portal_board(request: Request, c: AnyUser) -> Response:
    """The customer's own hosts as tiles, for the portal (scoping leaves only its customer)."""
    if c.principal.is_staff or c.principal.customer_id is None:
        return Response(status_code=404)
    board = board_of(c)
    mine = next((b for b in board.customers if b.customer_id == c.principal.customer_id), None)
    return render(request, "_board_portal.html", cb=mine, local=local)
