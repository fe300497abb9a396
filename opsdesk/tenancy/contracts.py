"""Contract periods: annual auto-renewal and the end of service (R-TEN-2)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.tenancy.models import Contract, ContractStatus


def plus_one_year(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


@dataclass
class RenewalResult:
    renewed: list[str]
    ended: list[str]


def renew_due(session: Session, today: date) -> RenewalResult:
    """Extend auto-renewing contracts that have run out by whole years; end the others.

    Suspended contracts renew too (suspension is about payment, not the period).
    """
    result = RenewalResult(renewed=[], ended=[])
    due = session.scalars(
        select(Contract).where(Contract.end_date < today, Contract.status != ContractStatus.ended)
    )
    for contract in due:
        if contract.auto_renew:
            while contract.end_date < today:
                contract.end_date = plus_one_year(contract.end_date)
            result.renewed.append(contract.number)
        else:
            contract.status = ContractStatus.ended
            result.ended.append(contract.number)
    session.flush()
    return result


def in_service(contract: Contract, today: date) -> bool:
    """Whether the provider delivers under this contract today."""
    return contract.status is ContractStatus.active and contract.start_date <= today <= contract.end_date
