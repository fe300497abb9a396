"""Annual auto-renewal and the end of service (R-TEN-2), on both stores."""

from __future__ import annotations

from datetime import date

from opsdesk.core.runtime import Runtime
from opsdesk.tenancy.contracts import in_service, plus_one_year, renew_due
from opsdesk.tenancy.models import Contract, ContractStatus, Customer


def test_auto_renewal_and_ending(runtime: Runtime) -> None:
    with runtime.sessions.begin() as s:
        c = Customer(code="R", name="Renew Co")
        s.add(c)
        s.flush()
        s.add_all(
            [
                Contract(
                    customer_id=c.id, number="AUTO", start_date=date(2024, 3, 1), end_date=date(2025, 2, 28)
                ),
                Contract(
                    customer_id=c.id,
                    number="ONCE",
                    start_date=date(2025, 1, 1),
                    end_date=date(2025, 12, 31),
                    auto_renew=False,
                ),
                Contract(
                    customer_id=c.id,
                    number="CURRENT",
                    start_date=date(2026, 1, 1),
                    end_date=date(2026, 12, 31),
                ),
            ]
        )
    with runtime.sessions.begin() as s:
        result = renew_due(s, today=date(2026, 11, 24))
    assert result.renewed == ["AUTO"] and result.ended == ["ONCE"]
    with runtime.sessions() as s:
        by_number = {k.number: k for k in s.query(Contract)}
    assert by_number["AUTO"].end_date == date(2027, 2, 28)  # renewed twice, whole years
    assert by_number["ONCE"].status is ContractStatus.ended
    assert by_number["CURRENT"].end_date == date(2026, 12, 31)
    assert in_service(by_number["AUTO"], date(2026, 11, 24))
    assert not in_service(by_number["ONCE"], date(2026, 11, 24))


def test_leap_day() -> None:
    assert plus_one_year(date(2028, 2, 29)) == date(2029, 2, 28)
