"""opsdesk's own figures for Prometheus: requests, logins, and how much it looks after."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from opsdesk.accounts.models import User
from opsdesk.tenancy.models import Asset, Contract, Customer


class Figures:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "opsdesk_http_requests",
            "HTTP requests served",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "opsdesk_http_request_seconds", "HTTP request duration", ["route"], registry=self.registry
        )
        self.logins = Counter("opsdesk_logins", "Login attempts", ["outcome"], registry=self.registry)


class InventoryCollector(Collector):
    """Counts read from the state store at scrape time."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.sessions() as s:
            customers = s.scalar(select(func.count()).select_from(Customer)) or 0
            users = s.execute(select(User.role, func.count()).group_by(User.role)).all()
            assets = s.execute(select(Asset.type, func.count()).group_by(Asset.type)).all()
            contracts = s.execute(select(Contract.status, func.count()).group_by(Contract.status)).all()
        yield GaugeMetricFamily("opsdesk_customers", "Customers", value=customers)
        for name, help_, rows, label in (
            ("opsdesk_users", "User accounts by role", users, "role"),
            ("opsdesk_assets", "Maintained assets by type", assets, "type"),
            ("opsdesk_contracts", "Contracts by status", contracts, "status"),
        ):
            family = GaugeMetricFamily(name, help_, labels=[label])
            for key, count in rows:
                family.add_metric([str(getattr(key, "value", key))], count)
            yield family


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, figures: Figures, route_of: Callable[[Scope], str]) -> None:
        self.app, self.figures, self.route_of = app, figures, route_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status: dict[str, Any] = {"code": 500}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = self.route_of(scope)
            self.figures.requests.labels(scope["method"], route, str(status["code"])).inc()
            self.figures.latency.labels(route).observe(time.perf_counter() - start)
