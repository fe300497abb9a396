"""Monthly reports for many customers at once (the `opsdesk report monthly` command's work)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from opsdesk.core.config import Settings
from opsdesk.metrics.store import MetricStore
from opsdesk.reports import render, service
from opsdesk.tenancy.models import Customer


def monthly_reports(
    session: Session,
    store: MetricStore,
    settings: Settings,
    customers: list[Customer],
    month: tuple[int, int],
    publish_as: str | None = None,
    out_dir: Path | None = None,
    languages: tuple[str, ...] = ("zh-CN", "en"),
    done: Callable[[str], None] = lambda line: None,
) -> None:
    """Draft (or refresh) each customer's report, publish it if asked, print its PDFs into out_dir.

    `done` hears one line per customer; a month already published is skipped, and said so.
    """
    year, number = month
    for customer in customers:
        try:
            report = service.monthly(session, store, customer, year, number)
        except service.AlreadyPublished as exc:
            done(f"skipped: {exc}")
            continue
        if publish_as is not None:
            service.publish(report, publish_as)
        for language in languages if out_dir is not None else ():
            assert out_dir is not None
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / render.filename(report, language, "pdf")).write_bytes(
                render.pdf(report, language, settings)
            )
        done(f"{customer.code}: report {report.id} ({report.status.value})")
