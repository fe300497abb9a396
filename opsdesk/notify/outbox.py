"""The notification outbox: rows in the state store, delivered by workers that claim them.

Delivery is at-least-once, and exactly-once for receivers that de-duplicate by key:

* A notification is a row committed before anything is sent (in the same transaction as the
  incident change that caused it, when the caller enqueues in its own session), with an
  idempotency key that never changes. Enqueueing the same key again adds nothing.
* A worker claims due rows in one statement that marks them ``sending`` with a lease
  (``lease_until``) and counts the attempt. On PostgreSQL the claim selects with
  ``FOR UPDATE SKIP LOCKED``, so any number of workers take disjoint rows; on SQLite the same
  UPDATE is atomic because SQLite has one writer, and one worker runs.
* Only after the receiver has answered success is the row marked ``sent``, one commit per row.
  If the process dies before that, the lease runs out and another worker sends the row again,
  with the same key. So no row is lost; a row is sent twice only if the process died between
  the receiver's success and the commit of ``sent``: at most the rows in flight (``concurrency``).
  Receivers that honour the key (the webhook's ``Idempotency-Key`` header and body field, the
  email Message-ID, Alibaba Cloud's OutId) can drop that repeat; IM bots and Twilio cannot, so a
  crash can show their users one message twice, never zero times.
* A marking is fenced by ``claimed_by``: a worker whose lease was taken over does not
  overwrite what the new owner recorded.
* Other ways to a repeat, same key each time: a receiver that took the message but whose answer
  was lost (timeout, reset) is sent it again, and a worker stalled past its lease (the send
  timeout is kept below the lease, but a frozen VM is not) may race the worker that took over.
  Leases compare the workers' clocks, so hosts sharing PostgreSQL need synchronised time.
* Failures the channel calls temporary go back to ``pending`` with exponential backoff and
  jitter; after ``max_attempts`` (or at once, for a refusal that repeating cannot fix) the
  row becomes a dead letter, shown to staff, who can queue it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from opsdesk.core.db import utcnow
from opsdesk.notify import acklinks
from opsdesk.notify.channels import DeliveryError, InvalidChannel, Message, channel_for, parse_config
from opsdesk.notify.models import DeliveryState, Notification, NotifyChannel
from opsdesk.notify.templates import Notice, render

log = logging.getLogger("opsdesk.notify")
Clock = Callable[[], datetime]
ERROR_MAX = 2000


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 8
    base_backoff: float = 30.0  # seconds before the first retry; doubles each time
    max_backoff: float = 3600.0
    lease: float = 120.0  # a claimed row is taken back after this long without an answer
    send_timeout: float = 60.0  # kept below the lease, so a live worker never loses its row
    batch: int = 50
    concurrency: int = 10
    poll: float = 1.0


def backoff(attempt: int, base: float, cap: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds before attempt `attempt + 1`: exponential, capped, with jitter in [50%, 100%]."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return ceiling * (0.5 + rand() / 2)


@dataclass(frozen=True)
class Links:
    """Where messages link to, and the key that signs acknowledge links."""

    base_url: str
    secret_key: str
    ack_max_age: int = acklinks.DEFAULT_MAX_AGE

    def incident(self, incident_id: int) -> str:
        return f"{self.base_url.rstrip('/')}/incidents/{incident_id}"

    def ack(self, incident_id: int, who: str) -> str:
        return acklinks.ack_url(self.base_url, acklinks.make_token(self.secret_key, incident_id, who))


def channel_config(channel: NotifyChannel) -> BaseModel:
    """The channel's typed configuration with its secrets decrypted."""
    secrets = json.loads(channel.secrets) if channel.secrets else {}
    return parse_config(channel.type, {**channel.config, **secrets})


def build_message(channel: NotifyChannel, notice: Notice, key: str, links: Links, who: str) -> Message:
    link = ack = ""
    if notice.incident_id is not None:
        link = links.incident(notice.incident_id)
        ack = links.ack(notice.incident_id, who) if notice.event != "resolved" else ""
    text = render(notice, channel.language, link, ack, links.ack_max_age // 3600)
    return Message(
        key=key,
        subject=text.subject,
        text=text.text,
        link=link,
        ack_url=ack,
        severity=notice.severity,
        incident_id=notice.incident_id,
        params=text.params,
    )


def enqueue(
    session: Session,
    channel: NotifyChannel,
    notice: Notice,
    key: str,
    links: Links,
    recipients: list[str] | None = None,
    not_before: datetime | None = None,
    max_attempts: int = Policy.max_attempts,
    customer_id: int | None = None,
) -> list[Notification]:
    """Queue `notice` for `channel` in the caller's transaction; a key already queued is not queued again.

    Calls and texts get one row per number (key ``<key>/<number>``), so a failure on one number
    does not repeat the others. Rows become visible to workers when the caller commits.
    """
    kind = channel_for(channel.type)
    targets = recipients if recipients is not None else kind.recipients(channel_config(channel))
    groups = [(f"{key}/{r}", [r]) for r in targets] if kind.per_recipient else [(key, list(recipients or []))]
    out = []
    for row_key, to in groups:
        existing = session.scalars(
            select(Notification).where(Notification.idempotency_key == row_key)
        ).first()
        if existing is not None:
            out.append(existing)
            continue
        who = f"{channel.name} {to[0]}" if kind.per_recipient else channel.name
        row = Notification(
            customer_id=customer_id if customer_id is not None else channel.customer_id,
            channel_id=channel.id,
            idempotency_key=row_key,
            incident_id=notice.incident_id,
            recipients=to,
            message=build_message(channel, notice, row_key, links, who).as_dict(),
            state=DeliveryState.pending,
            max_attempts=max_attempts,
            next_attempt_at=not_before or utcnow(),
        )
        session.add(row)
        out.append(row)
    session.flush()
    return out


def retry_dead(notification: Notification, now: datetime | None = None) -> None:
    """Queue a dead letter (or a cancelled row) again with a fresh set of attempts."""
    notification.state = DeliveryState.pending
    notification.attempts = 0
    notification.next_attempt_at = now or utcnow()
    notification.lease_until = None
    notification.claimed_by = ""


def cancel_pending(session: Session, incident_id: int) -> int:
    """Drop the notifications of an incident not yet sent (e.g. escalations after an acknowledge)."""
    result = session.execute(
        update(Notification)
        .where(Notification.incident_id == incident_id, Notification.state == DeliveryState.pending)
        .values(state=DeliveryState.cancelled),
        execution_options={"synchronize_session": False},
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass
class Job:
    id: int
    key: str
    attempts: int
    max_attempts: int
    message: Message
    channel_type: str = ""
    config: Any = None
    to: list[str] | None = None
    error: str = ""  # set when the row cannot be sent at all (channel gone, disabled, broken)


@dataclass(frozen=True)
class Outcome:
    sent: bool
    retry: bool = False
    error: str = ""


class OutboxWorker:
    """Claims due rows and delivers them, `concurrency` at a time."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        policy: Policy | None = None,
        worker_id: str | None = None,
        clock: Clock = utcnow,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.sessions = sessions
        self.policy = policy or Policy()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.clock, self.rand = clock, rand
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: httpx.AsyncClient | None = None

    def poke(self) -> None:
        """Look for work now rather than at the next poll; safe from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    busy = await self.run_once()
                except Exception:
                    log.exception("outbox: claiming failed")
                    busy = 0
                if busy:
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.policy.poll)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def run_once(self) -> int:
        """Claim one batch and deliver it; the number of rows claimed."""
        jobs = await asyncio.to_thread(self._claim)
        if jobs:
            gate = asyncio.Semaphore(self.policy.concurrency)

            async def one(job: Job) -> None:
                # The slot is held until the outcome is committed, so at most `concurrency`
                # rows are ever delivered but not yet marked: the bound on repeats after a crash.
                async with gate:
                    outcome = await self._deliver(job)
                    await asyncio.to_thread(self._finish, job, outcome)

            await asyncio.gather(*(one(j) for j in jobs))
        return len(jobs)

    async def drain(self, max_rounds: int = 10_000) -> None:
        """Deliver until nothing is due (tests and one-off runs); waits out short backoffs."""
        for _ in range(max_rounds):
            if await self.run_once():
                continue
            if not await asyncio.to_thread(self._has_open):
                return
            await asyncio.sleep(min(self.policy.poll, 0.02))

    # -- the store side (run in a thread) --------------------------------------------------

    def _claim(self) -> list[Job]:
        now = self.clock()
        due = or_(
            and_(Notification.state == DeliveryState.pending, Notification.next_attempt_at <= now),
            and_(Notification.state == DeliveryState.sending, Notification.lease_until < now),
        )
        pick = (
            select(Notification.id)
            .where(due)
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(self.policy.batch)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has a single writer anyway
        )
        claim = (
            update(Notification)
            .where(Notification.id.in_(pick.scalar_subquery()))
            .values(
                state=DeliveryState.sending,
                lease_until=now + timedelta(seconds=self.policy.lease),
                claimed_by=self.worker_id,
                attempts=Notification.attempts + 1,
                updated_at=now,
            )
            .returning(Notification.id)
        )
        with self.sessions.begin() as session:
            ids = list(session.scalars(claim, execution_options={"synchronize_session": False}))
            if not ids:
                return []
            rows = session.scalars(select(Notification).where(Notification.id.in_(ids))).all()
            return [self._job(session, row) for row in rows]

    def _job(self, session: Session, row: Notification) -> Job:
        job = Job(row.id, row.idempotency_key, row.attempts, row.max_attempts, Message.from_dict(row.message))
        channel = session.get(NotifyChannel, row.channel_id) if row.channel_id is not None else None
        if channel is None:
            job.error = "the channel was deleted"
        elif not channel.enabled:
            job.error = "the channel is disabled"
        else:
            try:
                job.config = channel_config(channel)
            except (InvalidChannel, ValueError) as exc:
                job.error = f"channel configuration is not valid: {exc}"
            else:
                kind = channel_for(channel.type)
                job.channel_type = channel.type
                job.to = list(row.recipients) or kind.recipients(job.config)
        return job

    def _finish(self, job: Job, outcome: Outcome) -> None:
        now = self.clock()
        values: dict[str, Any] = {"lease_until": None, "updated_at": now}
        if outcome.sent:
            values.update(state=DeliveryState.sent, sent_at=now)
        elif outcome.retry and job.attempts < job.max_attempts:
            delay = backoff(job.attempts, self.policy.base_backoff, self.policy.max_backoff, self.rand)
            values.update(
                state=DeliveryState.pending,
                next_attempt_at=now + timedelta(seconds=delay),
                last_error=outcome.error[:ERROR_MAX],
            )
        else:
            values.update(state=DeliveryState.dead, last_error=outcome.error[:ERROR_MAX])
            log.warning(
                "outbox: %s is a dead letter after %d attempts: %s", job.key, job.attempts, outcome.error
            )
        mine = and_(
            Notification.id == job.id,
            Notification.claimed_by == self.worker_id,
            Notification.state == DeliveryState.sending,
        )
        with self.sessions.begin() as session:
            session.execute(
                update(Notification).where(mine).values(**values),
                execution_options={"synchronize_session": False},
            )

    def _has_open(self) -> bool:
        open_states = (DeliveryState.pending, DeliveryState.sending)
        with self.sessions() as session:
            return (
                session.scalars(select(Notification.id).where(Notification.state.in_(open_states))).first()
                is not None
            )

    # -- the receiver side -----------------------------------------------------------------

    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.policy.send_timeout, follow_redirects=False)
        return self._http

    async def _deliver(self, job: Job) -> Outcome:
        if job.error:
            return Outcome(sent=False, retry=False, error=job.error)
        if not job.to and channel_for(job.channel_type).per_recipient:
            return Outcome(sent=False, retry=False, error="no recipient: the channel lists no numbers")
        try:
            await asyncio.wait_for(
                channel_for(job.channel_type).send(job.config, job.message, job.to or [], self.http()),
                self.policy.send_timeout,
            )
        except DeliveryError as exc:
            return Outcome(sent=False, retry=exc.retry, error=str(exc))
        except (httpx.HTTPError, OSError, TimeoutError) as exc:
            return Outcome(sent=False, retry=True, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
        except Exception as exc:  # a bug in a channel must not stop the worker; retried, then dead
            log.exception("outbox: channel %s failed on %s", job.channel_type, job.key)
            return Outcome(sent=False, retry=True, error=f"{type(exc).__name__}: {exc}")
        return Outcome(sent=True)


async def send_now(channel: NotifyChannel, message: Message, timeout: float = 20) -> Outcome:
    """Send once without the outbox (the test button): the answer is the receiver's, at once."""
    try:
        config = channel_config(channel)
    except InvalidChannel as exc:
        return Outcome(sent=False, error=str(exc))
    kind = channel_for(channel.type)
    async with httpx.AsyncClient(timeout=timeout) as http:
        try:
            await asyncio.wait_for(kind.send(config, message, kind.recipients(config), http), timeout)
        except DeliveryError as exc:
            return Outcome(sent=False, retry=exc.retry, error=str(exc))
        except (httpx.HTTPError, OSError, TimeoutError) as exc:
            return Outcome(sent=False, retry=True, error=f"{type(exc).__name__}: {exc}".rstrip(": "))
    return Outcome(sent=True)
