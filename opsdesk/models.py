"""Every model, imported once so that metadata (and Alembic) sees all tables."""

from opsdesk.accounts.models import ApiToken, LoginAttempt, User
from opsdesk.audit import recorder as _recorder  # noqa: F401  (registers the audit hook)
from opsdesk.audit.models import AuditEntry
from opsdesk.core.db import Base
from opsdesk.hosts.models import HostEvent, HostState
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
    "LoginAttempt",
    "ServiceItem",
    "StaffAssignment",
    "User",
]
