"""Incidents reported by e-mail (R-INC-4): an SMTP listener for the NOC address.

Only a customer's designated contacts may report: the From address must be the e-mail of a
contact of exactly one customer. Anything else is refused at the SMTP level with a reason, so the
sender's mail server bounces it and nothing is lost silently. Checking that the From address is
genuine (SPF, DKIM) is the job of the provider's mail server in front of this listener.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from opsdesk.alerting import incidents
from opsdesk.alerting.models import IncidentSource
from opsdesk.alerting.rules import Severity
from opsdesk.core.runtime import Runtime
from opsdesk.tenancy.models import Contact

log = logging.getLogger("opsdesk.alerting.mail")

MAX_TITLE = 300
MAX_BODY = 10_000


class MailRefused(ValueError):
    """The message cannot become an incident; `reply` is the SMTP answer."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True)
class Reported:
    incident_id: int
    customer_id: int


def _text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # an unknown charset or a broken transfer encoding
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return str(content).strip()[:MAX_BODY]


def report_from_mail(rt: Runtime, raw: bytes) -> Reported:
    """Open the incident a contact's message reports; MailRefused says why it cannot."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    name, address = parseaddr(str(message.get("From", "")))
    address = address.strip().lower()
    if "@" not in address:
        raise MailRefused("550 5.1.7 no sender address in From")
    subject = " ".join(str(message.get("Subject", "")).split())[:MAX_TITLE]
    with rt.sessions() as session:
        contacts = list(session.scalars(select(Contact).where(func.lower(Contact.email) == address)))
        customers = {c.customer_id for c in contacts}
        if not customers:
            raise MailRefused(f"550 5.7.1 {address} is not a designated contact of any customer")
        if len(customers) > 1:
            raise MailRefused(f"550 5.7.1 {address} is a contact of several customers; use the portal")
        contact = contacts[0]
        incident = incidents.open_reported(
            session,
            contact.customer_id,
            subject if len(subject) >= 3 else f"E-mail from {contact.name or address}",
            _text_of(message),
            Severity.p3,  # the engineer on duty sets the real severity when triaging
            IncidentSource.email,
            actor=f"{contact.name or name} <{address}>",
        )
        session.commit()
        return Reported(incident.id, contact.customer_id)


class MailReportHandler:
    """aiosmtpd handler: each accepted message is one incident, written off the event loop."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            reported = await asyncio.to_thread(report_from_mail, self.rt, raw)
        except MailRefused as refused:
            log.info("mail report refused: %s", refused.reply)
            return refused.reply
        except Exception:
            log.exception("mail report could not be stored")
            return "451 4.3.0 could not store the report now; try again later"
        log.info("incident %d reported by e-mail (customer %d)", reported.incident_id, reported.customer_id)
        return f"250 2.0.0 reported as incident {reported.incident_id}"


def start_listener(rt: Runtime) -> Controller | None:
    """Start the listener when `mail_in.port` is set; the caller stops it."""
    cfg = rt.settings.mail_in
    if not cfg.port:
        return None
    controller = Controller(
        MailReportHandler(rt), hostname=cfg.host, port=cfg.port, data_size_limit=cfg.max_bytes
    )
    controller.start()
    log.info("accepting incident reports by e-mail on %s:%d", cfg.host, cfg.port)
    return controller
