"""`opsdesk report monthly`: drafts, publishes and prints each customer's month from the command line."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from opsdesk.core.runtime import Runtime
from opsdesk.reports.models import Report, ReportStatus
from tests.reports.test_reports import pdf_text
from tests.test_cli import cli, data_dir, migrated, ok, rt

__all__ = ["data_dir", "migrated", "rt"]  # fixtures of the CLI tests: own data directory, migrated


def test_monthly_reports_for_every_customer(rt: Runtime, tmp_path: Path) -> None:
    ok("admin", "create-customer", "ACME", "Acme 科技", "--language", "zh-CN")
    ok("admin", "create-customer", "BETA", "Beta Ltd", "--language", "en")
    out = tmp_path / "pdf"
    result = ok("report", "monthly", "--month", "2026-10", "--publish", "--out", str(out))
    assert "ACME: report" in result.output and "BETA: report" in result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        f"monthly-report-{c}-2026-10-{lang}.pdf" for c in ("ACME", "BETA") for lang in ("en", "zh-CN")
    ]
    assert "Acme 科技" in pdf_text((out / "monthly-report-ACME-2026-10-zh-CN.pdf").read_bytes())
    assert "Monthly operations report" in pdf_text((out / "monthly-report-BETA-2026-10-en.pdf").read_bytes())
    with rt.sessions() as s:
        reports = s.scalars(select(Report)).all()
        assert {r.status for r in reports} == {ReportStatus.published} and len(reports) == 2
        assert {r.title for r in reports} == {"2026-10 月度运维报告 - Acme 科技",
                                              "Monthly operations report 2026-10 - Beta Ltd"}  # fmt: skip
        assert all(r.published_by == "cli:tester" for r in reports)
    again = ok("report", "monthly", "--month", "2026-10", "--customer", "ACME")
    assert "skipped" in again.output and "already published" in again.output  # what the customer got stays
    english = tmp_path / "en"
    ok("report", "monthly", "--month", "2026-09", "--customer", "BETA", "--lang", "en", "--out", str(english))
    assert [p.name for p in english.iterdir()] == ["monthly-report-BETA-2026-09-en.pdf"]


def test_bad_month_and_unknown_customer_are_refused(rt: Runtime) -> None:
    bad = cli("report", "monthly", "--month", "2026-13")
    assert bad.exit_code == 2 and "use YYYY-MM" in bad.output
    unknown = cli("report", "monthly", "--month", "2026-10", "--customer", "NOPE")
    assert unknown.exit_code == 1 and "no customer with code 'NOPE'" in unknown.output
    with rt.sessions() as s:
        assert s.scalars(select(Report)).first() is None
