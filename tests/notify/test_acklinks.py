"""Acknowledge links: valid, expired, tampered; and the page that takes them."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.orm import Session

from opsdesk.core.runtime import Runtime
from opsdesk.notify import acklinks
from opsdesk.notify.models import Notification
from tests.conftest import LiveServer, csrf_from
from tests.notify.helpers import queue, webhook
from tests.world import World

KEY = "signing-key-for-tests"


def test_valid_token_gives_incident_and_who() -> None:
    token = acklinks.make_token(KEY, 42, "duty SMS +8613800000000")
    assert acklinks.verify(KEY, token) == acklinks.AckClaim(42, "duty SMS +8613800000000")


def test_expired_token_is_refused() -> None:
    token = acklinks.make_token(KEY, 42, "ops", clock=lambda: 1_000_000)
    assert acklinks.verify(KEY, token, max_age=3600, clock=lambda: 1_000_000 + 3599).incident_id == 42
    with pytest.raises(acklinks.AckLinkExpired):
        acklinks.verify(KEY, token, max_age=3600, clock=lambda: 1_000_000 + 3602)


def test_tampered_or_foreign_token_is_refused() -> None:
    token = acklinks.make_token(KEY, 42, "ops")
    payload, stamp, sig = token.split(".")
    other = acklinks.make_token(KEY, 43, "ops").split(".")[0]
    for forged in (f"{other}.{stamp}.{sig}", f"{payload}.{stamp}.{sig[:-2]}AA", token[:-1], "", "garbage"):
        with pytest.raises(acklinks.AckLinkInvalid) as err:
            acklinks.verify(KEY, forged)
        assert not isinstance(err.value, acklinks.AckLinkExpired)
    with pytest.raises(acklinks.AckLinkInvalid):
        acklinks.verify("another-key", token)


@pytest.fixture
def recorded() -> Iterator[list[tuple[int, str]]]:
    calls: list[tuple[int, str]] = []

    def handler(session: Session, incident_id: int, who: str) -> str:
        calls.append((incident_id, who))
        return f"#{incident_id}"

    acklinks.set_handler(handler)
    yield calls
    acklinks.set_handler(None)


def test_link_in_the_message_acknowledges_without_login(
    runtime: Runtime, world: World, live: LiveServer, recorded: list[tuple[int, str]]
) -> None:
    hook = webhook(runtime, world.a.customer, "http://127.0.0.1:9/hook")
    (nid,) = queue(runtime, hook, "incident:11:opened", n=11)
    with runtime.sessions() as s:
        row = s.get(Notification, nid)
        assert row is not None
        ack_url = row.message["ack_url"]
    token = parse_qs(urlsplit(ack_url).query)["t"][0]
    browser = live.client()
    shown = browser.get("/ack", params={"t": token})
    assert shown.status_code == 200 and "#11" in shown.text and recorded == []  # a GET changes nothing
    done = browser.post("/ack", data={"t": token, "csrf_token": csrf_from(shown.text)})
    assert done.status_code == 200, done.text
    assert recorded == [(11, "webhook channel")]
    bad = browser.get("/ack", params={"t": token[:-3] + "abc"})
    assert bad.status_code == 400
    secret = runtime.settings.secret("secret_key")
    old = acklinks.make_token(secret, 11, "x", clock=lambda: 1_000_000)
    assert browser.get("/ack", params={"t": old}).status_code == 410


def test_without_a_handler_acknowledging_is_unavailable(runtime: Runtime, live: LiveServer) -> None:
    token = acklinks.make_token(runtime.settings.secret("secret_key"), 5, "ops")
    browser = live.client()
    shown = browser.get("/ack", params={"t": token})
    assert browser.post("/ack", data={"t": token, "csrf_token": csrf_from(shown.text)}).status_code == 503
