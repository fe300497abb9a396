"""The outbox on both stores: enqueue once per key, deliver, retry with backoff, dead-letter, reclaim."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

from sqlalchemy import func, select

from opsdesk.core.db import utcnow
from opsdesk.core.runtime import Runtime
from opsdesk.notify.models import DeliveryState, Notification, NotifyChannel
from opsdesk.notify.outbox import OutboxWorker, Outcome, Policy, backoff, cancel_pending, retry_dead
from tests.notify.helpers import make_channel, queue, row, webhook
from tests.notify.receivers import HttpReceiver
from tests.world import World

FAST = Policy(max_attempts=4, base_backoff=0.05, max_backoff=1.0, lease=30, poll=0.01)


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    assert [backoff(n, 30, 3600, lambda: 1.0) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert [backoff(n, 30, 3600, lambda: 0.0) for n in (1, 2, 3)] == [15, 30, 60]
    assert backoff(20, 30, 3600, lambda: 1.0) == 3600  # capped


def test_enqueue_is_idempotent_by_key_and_fans_out_calls(runtime: Runtime, world: World) -> None:
    hook = webhook(runtime, world.a.customer, "http://127.0.0.1:9/hook")
    first = queue(runtime, hook, "incident:1:opened")
    again = queue(runtime, hook, "incident:1:opened")
    assert first == again and len(first) == 1
    voice = make_channel(
        runtime,
        world.a.customer,
        "aliyun_voice",
        {
            "endpoint": "http://127.0.0.1:9/",
            "access_key_id": "LTAI5tTestKeyId",
            "access_key_secret": "aliyun-secret-1",
            "tts_code": "TTS_1",
            "to": ["13800000000", "13900000000"],
        },
    )
    calls = queue(runtime, voice, "incident:1:opened")
    assert len(calls) == 2 and queue(runtime, voice, "incident:1:opened") == calls
    keys = sorted(row(runtime, i).idempotency_key for i in calls)
    assert keys == ["incident:1:opened/13800000000", "incident:1:opened/13900000000"]
    stored = row(runtime, calls[0])
    assert stored.customer_id == world.a.customer and stored.incident_id == 1
    assert "http://opsdesk.test/incidents/1" in stored.message["text"]
    assert stored.message["ack_url"].startswith("http://opsdesk.test/ack?t=")


def test_delivers_once_and_marks_sent(runtime: Runtime, world: World) -> None:
    with HttpReceiver() as rx:
        hook = webhook(runtime, world.a.customer, f"{rx.url}/hook")
        ids = queue(runtime, hook, "incident:2:opened", n=2)
        worker = OutboxWorker(runtime.sessions, FAST)
        asyncio.run(worker.drain())
        asyncio.run(worker.drain())  # nothing due any more: nothing sent again
    assert rx.keys() == ["incident:2:opened"]
    sent = row(runtime, ids[0])
    assert sent.state is DeliveryState.sent and sent.attempts == 1 and sent.sent_at is not None


def test_receiver_500_is_retried_with_backoff_then_dead_lettered(runtime: Runtime, world: World) -> None:
    with HttpReceiver(respond=lambda r: (500, '{"error":"boom"}')) as rx:
        hook = webhook(runtime, world.a.customer, f"{rx.url}/hook")
        (nid,) = queue(runtime, hook, "incident:3:opened", n=3, max_attempts=3)
        worker = OutboxWorker(runtime.sessions, FAST, rand=lambda: 1.0)  # no jitter: exact delays
        asyncio.run(worker.drain())
    assert rx.keys() == ["incident:3:opened"] * 3  # the same key on every attempt
    gaps = [b.at - a.at for a, b in zip(rx.requests, rx.requests[1:], strict=False)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1  # base, then doubled
    dead = row(runtime, nid)
    assert dead.state is DeliveryState.dead and dead.attempts == 3
    assert "HTTP 500" in dead.last_error and "boom" in dead.last_error
    with runtime.sessions.begin() as s:
        found = s.get(Notification, nid)
        assert found is not None
        retry_dead(found)
    again = row(runtime, nid)
    assert again.state is DeliveryState.pending and again.attempts == 0 and again.last_error


def test_refusal_is_dead_at_once_and_missing_channel_too(runtime: Runtime, world: World) -> None:
    with HttpReceiver(respond=lambda r: (401, '{"error":"bad signature"}')) as rx:
        hook = webhook(runtime, world.a.customer, f"{rx.url}/hook")
        (refused,) = queue(runtime, hook, "incident:4:opened")
        gone_channel = webhook(runtime, world.a.customer, f"{rx.url}/other")
        (orphan,) = queue(runtime, gone_channel, "incident:4:gone")
        with runtime.sessions.begin() as s:
            s.delete(s.get(NotifyChannel, gone_channel))
        asyncio.run(OutboxWorker(runtime.sessions, FAST).drain())
    assert rx.count() == 1
    first, second = row(runtime, refused), row(runtime, orphan)
    assert first.state is DeliveryState.dead and first.attempts == 1 and "HTTP 401" in first.last_error
    assert second.state is DeliveryState.dead and "deleted" in second.last_error


def test_a_dead_workers_rows_are_reclaimed_after_the_lease(runtime: Runtime, world: World) -> None:
    hook = webhook(runtime, world.a.customer, "http://127.0.0.1:9/hook")
    (nid,) = queue(runtime, hook, "incident:5:opened")
    now = utcnow()
    dead_worker = OutboxWorker(runtime.sessions, Policy(lease=60), worker_id="dead", clock=lambda: now)
    assert [j.id for j in dead_worker._claim()] == [nid]
    early = OutboxWorker(runtime.sessions, Policy(lease=60), worker_id="early", clock=lambda: now)
    assert early._claim() == []  # leased: nobody else takes it
    later = now + timedelta(seconds=61)
    heir = OutboxWorker(runtime.sessions, Policy(lease=60), worker_id="heir", clock=lambda: later)
    (job,) = heir._claim()
    assert job.id == nid and job.attempts == 2
    heir._finish(job, Outcome(sent=True))
    dead_worker._finish(job, Outcome(sent=False, retry=True, error="late answer"))  # fenced off
    final = row(runtime, nid)
    assert final.state is DeliveryState.sent and final.claimed_by == "heir" and final.last_error == ""


def test_concurrent_claims_never_take_the_same_row(runtime: Runtime, world: World) -> None:
    hook = webhook(runtime, world.a.customer, "http://127.0.0.1:9/hook")
    for n in range(120):
        queue(runtime, hook, f"incident:6:{n}")
    taken: list[list[int]] = [[], [], []]

    def claim_all(i: int) -> None:
        worker = OutboxWorker(runtime.sessions, Policy(batch=7), worker_id=f"w{i}")
        while jobs := worker._claim():
            taken[i].extend(j.id for j in jobs)

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [n for part in taken for n in part]
    assert len(every) == len(set(every)) == 120
    with runtime.sessions() as s:
        query = select(Notification.claimed_by, func.count()).where(Notification.channel_id == hook)
        owners = dict(s.execute(query.group_by(Notification.claimed_by)).all())
    assert sum(owners.values()) == 120 and set(owners) <= {"w0", "w1", "w2"}


def test_not_before_and_cancel(runtime: Runtime, world: World) -> None:
    hook = webhook(runtime, world.a.customer, "http://127.0.0.1:9/hook")
    later = utcnow() + timedelta(minutes=10)
    (nid,) = queue(runtime, hook, "incident:8:reminder", n=8, not_before=later)
    assert OutboxWorker(runtime.sessions, FAST)._claim() == []  # not due yet
    with runtime.sessions.begin() as s:
        assert cancel_pending(s, 8) == 1
    assert row(runtime, nid).state is DeliveryState.cancelled
