"""Incidents reported by e-mail (R-INC-4), through a real SMTP conversation with the listener."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from opsdesk.alerting.mail_reports import start_listener
from opsdesk.alerting.models import Incident, IncidentEvent, IncidentSource
from opsdesk.core.runtime import Runtime
from opsdesk.tenancy.models import Contact, ContactRole
from tests.conftest import free_port
from tests.world import World


@pytest.fixture
def listener(runtime: Runtime, world: World) -> Iterator[int]:
    contacts = [
        (world.a.customer, "Ops@Customer-A.test"),
        (world.b.customer, "ops@b.test"),
        (world.a.customer, "x@both.test"),  # the same address at two customers: ambiguous
        (world.b.customer, "x@both.test"),
    ]
    with runtime.sessions.begin() as s:
        for customer, email in contacts:
            s.add(Contact(customer_id=customer, role=ContactRole.secondary, name="Ops desk", email=email))
    port = free_port()
    runtime.settings.mail_in.port = port
    runtime.settings.mail_in.max_bytes = 64 * 1024
    controller = start_listener(runtime)
    assert controller is not None
    try:
        yield port
    finally:
        controller.stop()


def send(port: int, sender: str, subject: str, body: str) -> None:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "noc@provider.test"
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(message)


def test_a_contacts_mail_opens_an_incident_for_its_customer(
    runtime: Runtime, world: World, listener: int
) -> None:
    send(
        listener,
        "Li Lei <ops@customer-a.test>",
        "订单系统 打不开  (order system down)",
        "从 10:05 开始 502。\n",
    )
    with runtime.sessions() as s:
        incident = s.scalars(select(Incident).where(Incident.source == IncidentSource.email)).one()
        assert incident.customer_id == world.a.customer
        assert incident.title == "订单系统 打不开 (order system down)"
        kinds = {
            e.kind: e
            for e in s.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident.id))
        }
        assert "从 10:05 开始 502" in kinds["reported"].body
        assert "ops@customer-a.test" in kinds["reported"].actor


def test_strangers_and_ambiguous_senders_are_refused_and_nothing_is_stored(
    runtime: Runtime, listener: int
) -> None:
    with pytest.raises(smtplib.SMTPDataError) as stranger:
        send(listener, "someone@elsewhere.test", "help", "hi")
    assert stranger.value.smtp_code == 550 and b"not a designated contact" in stranger.value.smtp_error
    with pytest.raises(smtplib.SMTPDataError) as both:
        send(listener, "x@both.test", "help", "hi")
    assert both.value.smtp_code == 550 and b"several customers" in both.value.smtp_error
    with pytest.raises(smtplib.SMTPException):  # over mail_in.max_bytes
        send(listener, "ops@b.test", "big", "x" * 100_000)
    with runtime.sessions() as s:
        assert s.scalars(select(Incident).where(Incident.source == IncidentSource.email)).all() == []
