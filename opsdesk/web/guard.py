"""The object guard: every path parameter names an object the caller must be able to see.

Runs as a dependency of every API and page router, before the request body is read, so an
object of another customer is "404 not found" on every route and method, and a customer
user's attempt to change anything is refused before any handler runs. Routes cannot opt out:
the app refuses to start if a route has a path parameter this module does not know.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from starlette.routing import BaseRoute

from opsdesk.accounts.models import ApiToken, User
from opsdesk.accounts.principal import Role
from opsdesk.alerting.models import Incident, NotifyPreference, RuleOverride, Silence
from opsdesk.alerting.oncall import OnCallOverride, OnCallSchedule
from opsdesk.monitors.models import MaintenanceWindow, Monitor
from opsdesk.notify.models import Notification, NotifyChannel
from opsdesk.reports.models import Report
from opsdesk.tenancy.models import (
    Asset,
    Contact,
    Contract,
    ContractService,
    Credential,
    Customer,
    StaffAssignment,
)
from opsdesk.web.deps import OptionalDB

F = TypeVar("F", bound=Callable[..., Any])

# Path parameter name -> the model whose visibility it needs. New features register theirs.
PATH_MODELS: dict[str, type[Any]] = {
    "customer_id": Customer,
    "contract_id": Contract,
    "contract_service_id": ContractService,
    "asset_id": Asset,
    "contact_id": Contact,
    "credential_id": Credential,
    "user_id": User,
    "assignment_id": StaffAssignment,
    "token_id": ApiToken,
    "monitor_id": Monitor,
    "incident_id": Incident,
    "window_id": MaintenanceWindow,
    "channel_id": NotifyChannel,
    "notification_id": Notification,
    "silence_id": Silence,
    "override_id": RuleOverride,
    "preference_id": NotifyPreference,
    "report_id": Report,  # drafts are further hidden from customers by reports.service.readable
    # The duty rota is the provider's, no customer's: every staff member sees it.
    "schedule_id": OnCallSchedule,
    "oncall_override_id": OnCallOverride,
}
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
SELF_SERVICE_FLAG = "__opsdesk_self_service__"


def self_service(fn: F) -> F:
    """Mark a route a customer user may use to change its own things (password, tokens, language)."""
    setattr(fn, SELF_SERVICE_FLAG, True)
    return fn


def guard(request: Request, db: OptionalDB) -> None:
    principal = request.state.principal
    params = request.path_params
    if principal is not None:
        for name, raw in params.items():
            model = PATH_MODELS[name]
            ident = int(raw) if isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit()) else None
            if ident is None or db.scalars(select(model.id).where(model.id == ident)).first() is None:
                raise HTTPException(404, "not found")
    if principal is not None and principal.role is Role.customer and request.method in UNSAFE:
        endpoint = getattr(request.scope.get("route"), "endpoint", None)
        if not getattr(endpoint, SELF_SERVICE_FLAG, False):
            raise HTTPException(403, "read-only access")


Guard = Annotated[None, Depends(guard)]
_PARAM = re.compile(r"{([^}:]+)")


def check_routes(routes: Iterable[BaseRoute]) -> None:
    """Refuse to start with a route whose path parameter the guard cannot check."""
    for route in routes:
        path = getattr(route, "path", "")
        for name in _PARAM.findall(path):
            if name not in PATH_MODELS and not path.startswith("/static"):
                raise RuntimeError(f"route {path}: path parameter {name!r} is not registered in web.guard")
