"""Every model, imported once so that metadata (and Alembic) sees all tables."""

from opsdesk.accounts.models import ApiToken, LoginAttempt, User
from opsdesk.alerting import policy as _policy  # noqa: F401  (notices for incident changes)
from opsdesk.alerting.models import Alert, Incident, IncidentEvent, RuleOverride
from opsdesk.alerting.oncall import OnCallOverride, OnCallSchedule
from opsdesk.audit import recorder as _recorder  # noqa: F401  (registers the audit hook)
from opsdesk.audit.models import AuditEntry
from opsdesk.core.db import Base
from opsdesk.hosts.models import HostEvent, HostState
from opsdesk.monitors import hooks as _monitor_hooks  # noqa: F401  (homepage checks for websites)
from opsdesk.monitors.models import MaintenanceWindow, Monitor, MonitorEvent
from opsdesk.notify.models import Notification, NotifyChannel
from opsdesk.reports import hooks as _report_hooks  # noqa: F401  (fault report drafted on resolve)
from opsdesk.reports.models import Report
from opsdesk.tenancy import scoping as _scoping  # noqa: F401  (registers tenant scoping)
from opsdesk.tenancy.models import (
    Asset,
    Contact,
    Contract,
    ContractService,
    Credential,
    Customer,
    ServiceItem,
    StaffAssignment,
)

__all__ = [
    "Alert",
    "ApiToken",
    "Asset",
    "AuditEntry",
    "Base",
    "Contact",
    "Contract",
    "ContractService",
    "Credential",
    "Customer",
    "HostEvent",
    "HostState",
    "Incident",
    "IncidentEvent",
    "LoginAttempt",
    "MaintenanceWindow",
    "Monitor",
    "MonitorEvent",
    "Notification",
    "NotifyChannel",
    "OnCallOverride",
    "OnCallSchedule",
    "Report",
    "RuleOverride",
    "ServiceItem",
    "StaffAssignment",
    "User",
]
