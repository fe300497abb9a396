"""Signed, expiring acknowledge links: whoever holds the link may take the incident.

The token carries the incident id and who it was sent to, signed with the configured secret
key (itsdangerous, HMAC), with the signing time inside; it is refused once older than max_age.
What acknowledging does belongs to incidents: that code registers a handler here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.orm import Session

SALT = "opsdesk.notify.ack"
DEFAULT_MAX_AGE = 24 * 3600
Clock = Callable[[], float]
# handler(session, incident_id, who) -> a line to show the person, e.g. "taken by ..."
AckHandler = Callable[[Session, int, str], str]


class AckLinkInvalid(Exception):
    """Tampered, truncated or signed with another key."""


class AckLinkExpired(AckLinkInvalid):
    """Genuine but too old."""


@dataclass(frozen=True)
class AckClaim:
    incident_id: int
    who: str


def _serializer(secret_key: str, clock: Clock) -> URLSafeTimedSerializer:
    class ClockedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(clock())

    return URLSafeTimedSerializer(secret_key, salt=SALT, signer=ClockedSigner)


def make_token(secret_key: str, incident_id: int, who: str, clock: Clock = time.time) -> str:
    return str(_serializer(secret_key, clock).dumps({"i": incident_id, "w": who}))


def verify(secret_key: str, token: str, max_age: int = DEFAULT_MAX_AGE, clock: Clock = time.time) -> AckClaim:
    try:
        data = _serializer(secret_key, clock).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise AckLinkExpired("this acknowledge link has expired") from exc
    except BadSignature as exc:
        raise AckLinkInvalid("this acknowledge link is not valid") from exc
    if not isinstance(data, dict) or not isinstance(data.get("i"), int) or not isinstance(data.get("w"), str):
        raise AckLinkInvalid("this acknowledge link is not valid")
    return AckClaim(incident_id=data["i"], who=data["w"])


def ack_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/ack?{urlencode({'t': token})}"


_handler: AckHandler | None = None


def set_handler(handler: AckHandler | None) -> None:
    global _handler
    _handler = handler


def handler() -> AckHandler | None:
    return _handler
