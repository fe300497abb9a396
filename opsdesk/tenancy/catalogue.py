"""The provider's default service catalogue, from the service contract's clauses."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdesk.core.calendar import ServiceWindow
from opsdesk.tenancy.models import ServiceItem, ServiceKind

B, V = ServiceKind.base, ServiceKind.value_added
ALWAYS, WORKDAYS = ServiceWindow.always, ServiceWindow.workdays

# code, 中文名, English name, kind, window, requirement ids
DEFAULT_ITEMS: list[tuple[str, str, str, ServiceKind, ServiceWindow, str]] = [
    ("monitoring", "监控服务", "Monitoring", B, ALWAYS, "R-MON-1..8"),
    ("incident", "应急事故处理", "Incident handling", B, ALWAYS, "R-INC-1..6"),
    ("daily-ops", "日常运维服务", "Daily operations", B, WORKDAYS, "R-OPS-1..2"),
    ("hardening", "安全加固", "Security hardening", B, WORKDAYS, "R-SEC-1"),
    (
        "security-scan",
        "系统安全扫描与应用漏洞扫描",
        "Security and vulnerability scan",
        B,
        WORKDAYS,
        "R-SEC-2",
    ),
    (
        "malware-defence",
        "病毒木马查杀与入侵防御",
        "Malware removal and intrusion defence",
        B,
        ALWAYS,
        "R-SEC-3",
    ),
    ("pentest", "渗透测试", "Penetration testing", V, WORKDAYS, "R-SEC-4"),
    ("db-care", "一站式数据库维护", "Database care", B, ALWAYS, "R-DB-1"),
    ("reports", "运维服务报告", "Operations reports", B, WORKDAYS, "R-REP-1..3"),
]


def ensure_catalogue(session: Session) -> int:
    """Add the default items that are missing (by code); return how many were added."""
    existing = set(session.scalars(select(ServiceItem.code)))
    added = 0
    for code, name_zh, name_en, kind, window, req in DEFAULT_ITEMS:
        if code not in existing:
            session.add(
                ServiceItem(
                    code=code, name_zh=name_zh, name_en=name_en, kind=kind, window=window, requirement=req
                )
            )
            added += 1
    session.flush()
    return added
