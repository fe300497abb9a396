"""Who is acting: a logged-in user, an API token, or an operator at the CLI."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Role(enum.StrEnum):
    admin = "admin"  # everything
    project_lead = "project_lead"  # like an engineer, named lead of their customers (R-TEN-6)
    engineer = "engineer"  # only customers assigned to them
    customer = "customer"  # a customer's user: its own customer only, read-only monitoring data


STAFF_ROLES = frozenset({Role.admin, Role.project_lead, Role.engineer})


class Scope(enum.StrEnum):
    read = "read"
    write = "write"


@dataclass(frozen=True)
class Principal:
    user_id: int | None
    label: str  # shown in the audit log: "alice", "alice (token ci-bot)", "cli:root"
    role: Role
    customer_id: int | None = None  # set for customer users
    assigned: frozenset[int] = field(default_factory=frozenset)  # customers a staff member works for
    token_id: int | None = None
    scopes: frozenset[Scope] = frozenset({Scope.read, Scope.write})

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def can_write(self) -> bool:
        return self.is_staff and Scope.write in self.scopes

    def visible_customers(self) -> frozenset[int] | None:
        """Customer ids this principal may see; None means all of them."""
        if self.is_admin:
            return None
        if self.role is Role.customer:
            return frozenset({self.customer_id}) if self.customer_id is not None else frozenset()
        return self.assigned


def cli_principal(operator: str = "cli") -> Principal:
    return Principal(user_id=None, label=f"cli:{operator}", role=Role.admin)
