"""The web application: REST API, console and portal pages, health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Scope

from opsdesk import __version__
from opsdesk.accounts import api as accounts_api
from opsdesk.accounts import pages as accounts_pages
from opsdesk.accounts import staff_pages
from opsdesk.alerting import api as alerting_api
from opsdesk.alerting import oncall_api as alerting_oncall_api
from opsdesk.alerting import pages as alerting_pages
from opsdesk.alerting import prefs_api as alerting_prefs_api
from opsdesk.alerting import rules_api as alerting_rules_api
from opsdesk.alerting import settings_pages as alerting_settings_pages
from opsdesk.alerting import silence_api as alerting_silence_api
from opsdesk.alerting.engine import AlertEngine
from opsdesk.alerting.mail_reports import start_listener
from opsdesk.alerting.policy import escalate
from opsdesk.audit import api as audit_api
from opsdesk.audit import pages as audit_pages
from opsdesk.board import pages as board_pages
from opsdesk.core.runtime import Runtime
from opsdesk.hosts import api as hosts_api
from opsdesk.hosts import pages as hosts_pages
from opsdesk.ingest import api as ingest_api
from opsdesk.ingest.fastpath import IngestFastPath
from opsdesk.ingest.writer import IngestWriter
from opsdesk.monitors import api as monitors_api
from opsdesk.monitors import pages as monitors_pages
from opsdesk.monitors.probe import Probe
from opsdesk.monitors.results import ResultWriter
from opsdesk.notify import api as notify_api
from opsdesk.notify import pages as notify_pages
from opsdesk.notify.outbox import OutboxWorker
from opsdesk.reports import api as reports_api
from opsdesk.reports import pages as reports_pages
from opsdesk.tenancy import api as tenancy_api
from opsdesk.tenancy import pages as tenancy_pages
from opsdesk.tenancy.scoping import PermissionDenied
from opsdesk.web import pages as web_pages
from opsdesk.web.csrf import CSRFMiddleware
from opsdesk.web.deps import LoginRequired
from opsdesk.web.guard import check_routes, guard
from opsdesk.web.limits import BodyLimitMiddleware
from opsdesk.web.observability import Figures, InventoryCollector, RequestMetricsMiddleware
from opsdesk.web.templating import render

STATIC = Path(__file__).parent / "static"
API_ROUTERS = (
    tenancy_api.router,
    accounts_api.router,
    audit_api.router,
    hosts_api.router,
    monitors_api.router,
    alerting_api.router,
    alerting_silence_api.router,
    alerting_rules_api.router,
    alerting_oncall_api.router,
    alerting_prefs_api.router,
    notify_api.router,
    reports_api.router,
)
PAGE_ROUTERS = (
    web_pages.router,
    accounts_pages.router,
    staff_pages.router,
    tenancy_pages.router,
    audit_pages.router,
    monitors_pages.router,
    hosts_pages.router,
    notify_pages.router,
    alerting_pages.router,
    alerting_settings_pages.router,
    board_pages.router,
    reports_pages.router,
)


RETENTION_EVERY_S = 3600


async def _housekeeping(rt: Runtime) -> None:
    """Hourly: drop metric data older than the configured retention ages."""
    while True:
        await asyncio.sleep(RETENTION_EVERY_S)
        try:
            await run_in_threadpool(rt.metrics.apply_retention, int(time.time() * 1000))
        except Exception:
            logging.getLogger("opsdesk").exception("metric retention failed")


ALERTS_EVERY_S = 15.0


class AlertTrigger:
    """Assets with fresh data, evaluated at once instead of at the next sweep."""

    def __init__(self) -> None:
        self.dirty: set[int] = set()
        self.event = asyncio.Event()

    def touch(self, asset_id: int) -> None:
        self.dirty.add(asset_id)
        self.event.set()


GATHER_S = 0.2  # adds at most this to the time from a sample to its alert (goal: p99 < 2 s)
SWEEP_CHUNK = 50  # assets per step of a sweep: fresh data never waits behind a whole sweep


async def _evaluate_alerts(engine: AlertEngine, trigger: AlertTrigger, notified: Callable[[], None]) -> None:
    """The alert role: every asset every ALERTS_EVERY_S seconds, and at once when its data arrives.

    A sweep goes in chunks; between chunks, assets with fresh data are evaluated first.
    """
    next_sweep = last_pass = 0.0
    pending: list[int] = []
    while True:
        try:
            report = None
            if trigger.dirty:
                # Under load, passes at most every GATHER_S: fresh data of many hosts is gathered
                # so one pass (a fixed set of queries and store reads) covers them all. When quiet,
                # a pass starts at once.
                wait = last_pass + GATHER_S - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                assets, trigger.dirty = trigger.dirty, set()
                report = await run_in_threadpool(engine.evaluate, None, assets)
                last_pass = time.monotonic()
            elif pending:
                chunk, pending = pending[:SWEEP_CHUNK], pending[SWEEP_CHUNK:]
                report = await run_in_threadpool(engine.evaluate, None, set(chunk))
            elif time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + ALERTS_EVERY_S
                pending = await run_in_threadpool(engine.asset_ids)
            if report is not None and (report.fired or report.resolved):
                notified()  # notices were queued: the outbox should not wait for its next poll
        except Exception:
            logging.getLogger("opsdesk").exception("alert evaluation failed")
        trigger.event.clear()
        if not trigger.dirty and not pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(trigger.event.wait(), max(next_sweep - time.monotonic(), 0.01))


ESCALATE_EVERY_S = 30.0


def _escalate_once(rt: Runtime) -> None:
    with rt.sessions() as session:
        escalate(session, datetime.now(UTC))
        session.commit()


async def _escalations(rt: Runtime) -> None:
    """The notify role's timer: escalate unacknowledged incidents, post P1 progress updates."""
    while True:
        await asyncio.sleep(ESCALATE_EVERY_S)
        try:
            await run_in_threadpool(_escalate_once, rt)
        except Exception:
            logging.getLogger("opsdesk").exception("escalation failed")


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get(
        "accept", "text/html"
    )


class OpsdeskApp(FastAPI):
    """FastAPI with agent batches taken first, outside even its own error and body-limit
    middleware (see ingest/fastpath.py): each layer cost every batch about 1 % of the server."""

    def build_middleware_stack(self) -> ASGIApp:
        return IngestFastPath(super().build_middleware_stack(), self.state, self.state.figures)


def create_app(rt: Runtime) -> FastAPI:
    writer = IngestWriter(rt)
    results = ResultWriter(rt)
    trigger = AlertTrigger()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.probe = probe = Probe(rt, results, on_change=trigger.touch)
        app.state.notify_worker = notifier = OutboxWorker(rt.sessions)
        tasks = [
            asyncio.create_task(_housekeeping(rt)),
            asyncio.create_task(probe.serve()),
            asyncio.create_task(_evaluate_alerts(AlertEngine(rt), trigger, notifier.poke)),
            asyncio.create_task(notifier.serve()),
            asyncio.create_task(_escalations(rt)),
        ]
        mail_in = await asyncio.to_thread(start_listener, rt)
        yield
        if mail_in is not None:
            await asyncio.to_thread(mail_in.stop)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        writer.close()  # answers what is queued before the process ends
        results.close()

    app = OpsdeskApp(
        lifespan=lifespan,
        title="opsdesk",
        version=__version__,
        description="Operations service platform: customers, contracts, assets, monitoring and incidents.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.runtime = rt
    app.state.ingest_writer = writer
    app.state.alert_trigger = trigger
    figures = Figures()
    figures.registry.register(InventoryCollector(rt.sessions))
    app.state.figures = figures

    # Agents are not users: their endpoint authenticates agent tokens itself (no session, no guard).
    # First, so that the busiest route is matched before the hundreds of console routes.
    app.include_router(ingest_api.router)
    for router in (*API_ROUTERS, *PAGE_ROUTERS):
        app.include_router(router, dependencies=[Depends(guard)])
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        with rt.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(figures.registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, _exc: LoginRequired) -> Response:
        if _wants_html(request):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return JSONResponse(
            {"detail": "authentication required"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(PermissionDenied)
    async def _denied(request: Request, exc: PermissionDenied) -> Response:
        return _error(request, 403, str(exc))

    @app.exception_handler(IntegrityError)
    async def _conflict(request: Request, _exc: IntegrityError) -> Response:
        return _error(request, 409, "conflicts with an existing record (a name or number already in use?)")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _error(request, exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "message": e["msg"]}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    check_routes(app.routes)
    # Outermost first: metrics see everything; CSRF runs inside the session so it can read it.
    app.add_middleware(CSRFMiddleware)
    app.add_middleware(
        SessionMiddleware,
        secret_key=rt.settings.secret("secret_key"),
        session_cookie="opsdesk_session",
        max_age=rt.settings.security.session_max_age,
        same_site="lax",
        https_only=rt.settings.security.cookie_secure,
    )
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestMetricsMiddleware, figures=figures, route_of=_route_of)
    # Outside all of them (OpsdeskApp): agent batches skip what does not apply to them.
    return app


def _error(request: Request, status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    if _wants_html(request) and status != 405:
        return render(request, "error.html", status_code=status, status=status, detail=detail)
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
