"""Message texts in zh-CN and English, from the `notify.` keys of the locale catalogues.

A channel speaks "zh-CN", "en" or "both" (Chinese first, then English, in one message), so a
customer's group that mixes languages gets one message, not two.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from opsdesk.core.db import utcnow
from opsdesk.web import i18n

Event = Literal["opened", "update", "resolved", "reminder", "test"]
CHANNEL_LANGUAGES = ("zh-CN", "en", "both")
SEPARATOR = "\n\n————————\n\n"


@dataclass(frozen=True)
class Notice:
    """What happened, before it is put into words for a channel."""

    event: Event
    title: str
    customer: str = ""
    severity: str = ""  # P1..P4
    incident_id: int | None = None
    detail: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    params: dict[str, str]  # short values for SMS and voice templates


def languages(channel_language: str) -> tuple[str, ...]:
    return ("zh-CN", "en") if channel_language == "both" else (channel_language,)


def _one(notice: Notice, lang: str, link: str, ack_url: str, ack_hours: int) -> tuple[str, str, str]:
    t = i18n.translator(lang)
    values = {
        "customer": notice.customer or "-",
        "severity": notice.severity or "-",
        "title": notice.title,
        "incident": f"#{notice.incident_id}" if notice.incident_id is not None else "",
    }
    subject = t(f"notify.subject.{notice.event}", **values)
    lines = [t(f"notify.body.{notice.event}", **values)]
    if notice.detail:
        lines.append(t("notify.line.detail", detail=notice.detail))
    at = (notice.at or utcnow()).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(t("notify.line.at", at=at))
    if link:
        lines.append(t("notify.line.link", link=link))
    if ack_url:
        lines.append(t("notify.line.ack", url=ack_url, hours=ack_hours))
    spoken = t(f"notify.spoken.{notice.event}", **values)
    return subject, "\n".join(lines), spoken


def render(
    notice: Notice, channel_language: str, link: str = "", ack_url: str = "", ack_hours: int = 24
) -> Rendered:
    parts = [_one(notice, lang, link, ack_url, ack_hours) for lang in languages(channel_language)]
    first_lang = languages(channel_language)[0]
    params = {
        "severity": notice.severity,
        "customer": notice.customer,
        "title": notice.title,
        "incident": f"#{notice.incident_id}" if notice.incident_id is not None else "",
        "event": i18n.translator(first_lang)(f"notify.event.{notice.event}"),
        "spoken": parts[0][2],
    }
    return Rendered(
        subject=" / ".join(p[0] for p in parts),
        text=SEPARATOR.join(p[1] for p in parts),
        params=params,
    )
