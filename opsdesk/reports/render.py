"""A report as a standalone HTML document in either language, and the same document as PDF.

One template per kind renders both: the browser shows the HTML, WeasyPrint prints it (A4, page
numbers, Noto Sans CJK) so that the PDF and the page never disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from opsdesk.alerting.models import IncidentEvent
from opsdesk.alerting.pages import sentence
from opsdesk.core.calendar import CHINA
from opsdesk.core.config import Settings
from opsdesk.hosts.models import HostEvent
from opsdesk.hosts.pages import event_text
from opsdesk.reports import charts, service
from opsdesk.reports.models import Report, ReportKind, ReportStatus
from opsdesk.web import i18n

TEMPLATES = Path(__file__).parent / "templates"
AVAILABILITY_BARS = 20


@cache
def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True))
    env.filters["local"] = local_time
    env.filters["minutes"] = duration
    return env


def local_time(value: str | datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if not value:
        return "—"
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.astimezone(CHINA).strftime(fmt)


def duration(minutes: float | None) -> str:
    """Language-neutral: 3 d 4 h 5 min reads in both."""
    if minutes is None:
        return "—"
    if minutes == 0:
        return "0 min"
    total = round(minutes)
    days, rest = divmod(total, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{mins} min"]
    return " ".join(p for p in parts if p) if total else "< 1 min"


def figure(value: float | None, suffix: str = "") -> str:
    return "—" if value is None else f"{value:g}{suffix}"


def _timeline(t: i18n.Translate, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        event = IncidentEvent(kind=row["kind"], body=row.get("body", ""), data=row.get("data") or {})
        out.append({**row, "sentence": sentence(t, event)})
    return out


def _days(start: datetime, end: datetime) -> list[str]:
    first = start.astimezone(CHINA).date()
    count = (end - start).days
    return [(first + timedelta(days=n)).isoformat() for n in range(count)]


def _monthly_charts(t: i18n.Translate, report: Report) -> dict[str, str]:
    data = report.data
    hosts = data.get("hosts", [])
    out: dict[str, str] = {}
    if any(h["daily_cpu"] for h in hosts):
        out["cpu"] = charts.daily_lines([(h["name"], h["daily_cpu"]) for h in hosts], t("report.chart.cpu"))
    if any(h["daily_mem"] for h in hosts):
        out["mem"] = charts.daily_lines(
            [(h["name"], h["daily_mem"]) for h in hosts], t("report.chart.memory")
        )
    measured = [(h["name"], h["availability"]) for h in hosts if h["availability"] is not None]
    measured += [(c["name"], c["uptime"]) for c in data.get("checks", []) if c["uptime"] is not None]
    if measured:  # the worst ones: a bar per server of a large customer would not fit a page
        worst = sorted(measured, key=lambda row: row[1])[:AVAILABILITY_BARS]
        out["availability"] = charts.availability_bars(worst, t("report.chart.availability"))
    incidents = data.get("incidents", {})
    if incidents.get("total"):
        days = _days(report.period_start, report.period_end)
        out["incidents"] = charts.incidents_by_day(incidents["by_day"], days, t("report.chart.incidents"))
    return out


def context(report: Report, lang: str, settings: Settings) -> dict[str, Any]:
    t = i18n.translator(lang)
    ctx: dict[str, Any] = {
        "report": report,
        "title": service.title(t, report),
        "data": report.data,
        "t": t,
        "lang": lang,
        "provider": settings.provider_name,
        "emergency": settings.emergency,
        "figure": figure,
        "printed_at": local_time(datetime.now(UTC)),
    }
    if report.kind is ReportKind.fault:
        ctx["timeline"] = _timeline(t, report.data.get("timeline", []))
    else:
        ctx["charts"] = _monthly_charts(t, report)
        ctx["availability_bars"] = AVAILABILITY_BARS
        rows = report.data.get("changes", {}).get("rows", [])
        ctx["changes"] = [
            {**r, "text": event_text(t, HostEvent(kind=r["kind"], attrs=r["attrs"]))} for r in rows
        ]
    return ctx


def html(report: Report, lang: str, settings: Settings) -> str:
    name = "fault_report.html" if report.kind is ReportKind.fault else "monthly_report.html"
    return environment().get_template(name).render(context(report, lang, settings))


def pdf(report: Report, lang: str, settings: Settings) -> bytes:
    from weasyprint import HTML  # a heavy import, only when a PDF is asked for

    document: bytes = HTML(string=html(report, lang, settings)).write_pdf()
    return document


def published_pdf(report: Report, lang: str, settings: Settings) -> bytes:
    """A published report never changes: printed once per language, then read from the data directory."""
    if report.status is not ReportStatus.published or report.published_at is None:
        return pdf(report, lang, settings)
    stamp = report.published_at.strftime("%Y%m%dT%H%M%S%f")  # ids can be reused after a delete
    path = settings.data_dir / "reports" / f"report-{report.id}-{stamp}-{lang}.pdf"
    if path.exists():
        return path.read_bytes()
    document = pdf(report, lang, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(document)
    partial.replace(path)  # a reader never sees half a file
    return document


def filename(report: Report, lang: str, ext: str) -> str:
    code = str(report.data.get("customer", {}).get("code", "")) or str(report.customer_id)
    if report.kind is ReportKind.fault:
        return f"fault-report-{code}-incident-{report.incident_id or report.id}-{lang}.{ext}"
    return f"monthly-report-{code}-{report.period_start.astimezone(CHINA):%Y-%m}-{lang}.{ext}"
