"""The fast ingest path gives the answers of the original one: validation, keys, writer, HTTP."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from opsdesk.accounts import tokens
from opsdesk.accounts.principal import Role, Scope
from opsdesk.accounts.service import create_user
from opsdesk.core.config import IngestSettings
from opsdesk.core.group_commit import GroupCommitter, write_samples
from opsdesk.core.runtime import Runtime
from opsdesk.hosts.models import HostEvent, HostState
from opsdesk.ingest import service
from opsdesk.ingest.schema import AgentBatch, BatchRejected, check_limits
from opsdesk.ingest.service import SeriesKeys, _parse_via_python, gzip_batch, parse
from opsdesk.ingest.writer import AssetRef, apply_batches
from opsdesk.metrics import Matcher, Sample, SeriesKey
from opsdesk.web.app import create_app
from tests.conftest import LiveServer
from tests.world import PASSWORD, World

LIMITS = IngestSettings()


def body(seq: int = 1, t: int | None = None, **over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "v": 1,
        "seq": seq,
        "instance": "i-1",
        "t": t if t is not None else int(time.time() * 1000),
        "interval": 15,
        "agent": {"version": "0.1.0", "hostname": "web-a"},
        "samples": [["load1", {}, 0.5], ["cpu_usage_percent", {"mode": "user", "core": "0"}, 12.5]],
        "events": [],
        "inventory": None,
        "top": None,
        "dropped": 0,
    }
    out.update(over)
    return out


def raw(**over: Any) -> bytes:
    return json.dumps(body(**over)).encode()


MALFORMED = [
    b"{not json",
    b"[1, 2]",
    raw() + b" trailing",
    json.dumps({"v": 1}).encode(),
    raw(v=3),
    raw(seq=0),
    raw(samples=[["bad name", {}, 1]]),
    raw(samples=[["x", {}, "NaN"]]),
    raw().replace(b"0.5", b"NaN"),
    raw().replace(b"0.5", b"Infinity"),
    raw().replace(b"0.5", b"1e400"),
    raw(samples=[["x", {"mode": 1}, 1]]),
    raw(samples=[["x", {"mode": "v" * 257}, 1]]),
    raw(samples=[["x", {}, 1, 2]]),
    raw(samples=[["x", {}]]),
    raw(events=[{"t": 1, "kind": "bogus"}]),
    raw(extra=1),
    raw().replace(b'"web-a"', b'"\\ud800"'),
    raw(samples=[["x", {"asset": "99"}, 1]]),
    raw(samples=[["ok", {}, 1], ["x", {"mode": "a", "Bad-Name": "b"}, 1]]),
    raw(samples=[["ok", {}, 1], ["x", {f"l{i}": "v" for i in range(17)}, 1]]),
    raw(samples=[["x", {"__name__": "y"}, 1]]),
    # bounds the msgspec fast path checks itself (refused there, worded by pydantic)
    raw(samples=[["load1\n", {}, 1]]),
    raw(samples=[["x" * 129, {}, 1]]),
    raw(interval=0.5),
    raw(instance=""),
    raw(dropped=-1),
    raw(agent={"version": "v" * 33, "hostname": "h"}),
    raw(events=[{"t": 1, "kind": "reboot", "extra": 1}]),
    raw(events=[{"t": 1, "kind": "reboot"}] * 1001),
]


@pytest.mark.parametrize("data", MALFORMED)
def test_every_refusal_has_the_message_of_the_python_path(data: bytes) -> None:
    now = int(time.time() * 1000)
    with pytest.raises(BatchRejected) as fast:
        parse(data, LIMITS, now)
    # The reference: json.loads, model_validate, then the limits, label by label.
    with pytest.raises(BatchRejected) as reference:
        batch = _parse_via_python(data)
        check_limits(
            batch,
            now,
            LIMITS.max_samples,
            LIMITS.max_labels,
            LIMITS.max_future_seconds,
            LIMITS.max_past_seconds,
        )
    assert str(fast.value) == str(reference.value)
    assert type(fast.value) is type(reference.value)


def test_a_label_error_names_the_first_bad_sample_even_after_good_batches() -> None:
    now = int(time.time() * 1000)
    parse(raw(samples=[["x", {"mode": "a", "device": "b"}, 1]]), LIMITS, now)  # names now known good
    samples = [["x", {"mode": "a"}, 1], ["y", {"device": "b", "customer": "2"}, 1], ["z", {"9bad": "c"}, 1]]
    with pytest.raises(BatchRejected, match=r"samples\[1\]: label name 'customer' is reserved"):
        parse(raw(samples=samples), LIMITS, now)
    many = [["x", {"mode": "a"}, 1]] * 3 + [["y", {f"mode{i}": "a" for i in range(17)}, 1]]
    with pytest.raises(BatchRejected, match=r"samples\[3\]: 17 labels, at most 16"):
        parse(raw(samples=many), LIMITS, now)


def test_good_batches_parse_as_the_python_path_does() -> None:
    now = int(time.time() * 1000)
    for data in (
        raw(),
        raw(samples=[["x", {"mode": "a"}, "1.5"], ["y", {}, 2]]),
        raw(inventory={"os": "linux"}),
        raw(top={"cpu": [{"pid": 1, "name": "init", "cpu": 0.5}]}, dropped=2),
        raw(
            events=[
                {"t": now, "kind": "reboot", "attrs": {"why": ["kernel", 1]}},
                {"t": now, "kind": "reboot"},
            ]
        ),
        raw(agent={"version": "0.1.0", "hostname": "web-a", "os": "ignored"}, interval=15.5, seq=2**40),
        raw(samples=[["x", {"mode": "é" * 256}, -0.0], ["y", {}, 1e308], ["load1", {}, 3]]),
        raw(samples=[["x", {}, True]]),  # msgspec refuses, pydantic takes it as 1.0
        raw(check_results=[{"monitor": 1, "t": now, "ok": True, "code": "ok", "message": "fine"}]),
    ):
        batch = parse(data, LIMITS, now)
        assert batch == AgentBatch.model_validate(json.loads(data))
        assert batch.model_dump() == AgentBatch.model_validate(json.loads(data)).model_dump()
    # JSON that only Python's reader takes (UTF-16) is still accepted, through the original path.
    utf16 = json.dumps(body()).encode("utf-16")
    assert parse(utf16, LIMITS, now).samples == parse(raw(), LIMITS, now).samples


def test_series_keys_are_built_once_and_equal_the_original_ones() -> None:
    keys = SeriesKeys()
    batch = AgentBatch.model_validate(
        body(samples=[["cpu", {"mode": "user", "core": "0"}, 1.0], ["load1", {}, 2.0], ["x", {"e": ""}, 3.0]])
    )
    first, t, values = keys.block(batch, 7, 3)
    again = keys.block(batch, 7, 3)
    assert first == [
        SeriesKey({"mode": "user", "core": "0", "asset": "7", "customer": "3", "__name__": "cpu"}),
        SeriesKey.of("load1", asset="7", customer="3"),
        SeriesKey.of("x", asset="7", customer="3"),  # an empty label value is no label, as before
    ]
    assert again[0] is first  # the same list: the metric store remembers its heads by it
    assert t == batch.t and values == [1.0, 2.0, 3.0]
    # another asset's samples are its own series
    other = keys.block(batch, 8, 3)[0]
    assert other[1] == SeriesKey.of("load1", asset="8", customer="3")
    # a bounded cache: past MAX it starts again, with the same keys
    keys.MAX = 2
    assert keys.block(batch, 7, 3)[0] == first


# -- the writer -------------------------------------------------------------------------------


@pytest.fixture
def agent_token(world: World, runtime: Runtime) -> str:
    with runtime.sessions.begin() as s:
        admin = create_user(s, "agent-admin", "agent-admin-password", Role.admin)
        _, plain = tokens.issue(s, admin, "agent", [Scope.write], asset_id=world.a.asset)
    return plain


def write_group(rt: Runtime, jobs: list[tuple[AssetRef, AgentBatch]], now: datetime) -> list[Any]:
    with rt.sessions() as session:
        blocks, results = apply_batches(session, jobs, now)
        if blocks:
            rt.metrics.write_blocks(blocks)
        session.commit()
    return results


def test_writer_applies_a_hosts_batches_in_order_within_one_group(world: World, runtime: Runtime) -> None:
    asset = AssetRef(world.a.asset, world.a.customer)
    t = int(time.time() * 1000)
    now = datetime.now(UTC).replace(microsecond=0)
    first = AgentBatch.model_validate(
        body(1, t, events=[{"t": t, "kind": "reboot", "attrs": {"why": "kernel"}}], inventory={"os": "linux"})
    )
    second = AgentBatch.model_validate(body(2, t + 15_000, dropped=3, interval=30))
    results = write_group(runtime, [(asset, first), (asset, second), (asset, first)], now)
    assert [(r.seq, r.duplicate, r.samples, r.events) for r in results] == [
        (1, False, 2, 1),
        (2, False, 2, 0),
        (1, True, 0, 0),  # a replay of the first, within the same group
    ]
    with runtime.sessions() as s:
        state = s.scalars(select(HostState).where(HostState.asset_id == world.a.asset)).one()
        assert (state.instance, state.last_seq, state.dropped_total, state.interval_s) == ("i-1", 2, 3, 30.0)
        assert state.customer_id == world.a.customer
        assert state.inventory == {"os": "linux"} and state.inventory_at == now
        assert state.first_seen_at == now and state.last_seen_at == now
        assert state.last_sample_at == datetime.fromtimestamp((t + 15_000) / 1000, UTC)
        events = s.scalars(
            select(HostEvent).where(HostEvent.asset_id == world.a.asset).order_by(HostEvent.id)
        )
        assert [(e.kind, e.attrs) for e in events] == [
            ("reboot", {"why": "kernel"}),
            ("agent_buffer_dropped", {"batches": 3}),
        ]
    # Later: a replay still shows the host alive; an older batch does not move last_sample_at back;
    # a batch without inventory keeps the stored one.
    later = datetime.now(UTC).replace(microsecond=0)
    replay = write_group(runtime, [(asset, second)], later)
    assert replay[0].duplicate
    old = AgentBatch.model_validate(body(1, t - 60_000, instance="reinstalled"))
    assert not write_group(runtime, [(asset, old)], later)[0].duplicate
    with runtime.sessions() as s:
        state = s.scalars(select(HostState).where(HostState.asset_id == world.a.asset)).one()
        assert state.last_seen_at == later and (state.instance, state.last_seq) == ("reinstalled", 1)
        assert state.last_sample_at == datetime.fromtimestamp((t + 15_000) / 1000, UTC)
        assert state.inventory == {"os": "linux"}


def test_writer_stores_new_and_known_hosts_in_one_group(world: World, runtime: Runtime) -> None:
    a, b = AssetRef(world.a.asset, world.a.customer), AssetRef(world.b.asset, world.b.customer)
    t = int(time.time() * 1000)
    now = datetime.now(UTC)
    write_group(runtime, [(a, AgentBatch.model_validate(body(1, t)))], now)
    top = {"cpu": [{"pid": 1, "name": "init"}]}
    results = write_group(
        runtime,
        [(a, AgentBatch.model_validate(body(2, t + 1, top=top))), (b, AgentBatch.model_validate(body(1, t)))],
        now,
    )
    assert [r.duplicate for r in results] == [False, False]
    with runtime.sessions() as s:
        states = {h.asset_id: h for h in s.scalars(select(HostState))}
        assert states[world.a.asset].top == top and states[world.a.asset].last_seq == 2
        assert states[world.b.asset].customer_id == world.b.customer and states[world.b.asset].top is None


# -- group commit from coroutines ---------------------------------------------------------------


def test_run_answers_every_coroutine_and_passes_failures_on(runtime: Runtime) -> None:
    def double(_session: Any, jobs: list[int], _now: datetime) -> tuple[list[Sample], list[int]]:
        if -1 in jobs:
            raise ValueError("refused")
        return [], [2 * j for j in jobs]

    committer: GroupCommitter[int, int, Sample] = GroupCommitter(
        runtime, double, "test-committer", write_samples
    )

    async def main() -> tuple[list[int], BaseException | None]:
        answers = await asyncio.gather(*(committer.run(j) for j in range(50)))
        waiting = asyncio.ensure_future(committer.run(7))
        waiting.cancel()  # a request that went away does not disturb the others
        try:
            await committer.run(-1)
            failure = None
        except ValueError as exc:
            failure = exc
        assert await committer.run(4) == 8
        return list(answers), failure

    try:
        answers, failure = asyncio.run(main())
    finally:
        committer.close()
    assert answers == [2 * j for j in range(50)]
    assert isinstance(failure, ValueError)
    # the thread API is unchanged
    committer2: GroupCommitter[int, int, Sample] = GroupCommitter(
        runtime, double, "test-committer-2", write_samples
    )
    try:
        assert committer2.submit(21).result(10) == 42
    finally:
        committer2.close()


# -- over HTTP: the fast path and the route answer alike ------------------------------------------


@pytest.fixture
def app_client(runtime: Runtime) -> Iterator[httpx.AsyncClient]:
    app = create_app(runtime)
    yield httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://agent.test")
    app.state.ingest_writer.close()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data  # no Content-Length: the fast path leaves such a request to the route


def test_fast_path_and_route_give_the_same_answers(
    world: World, runtime: Runtime, agent_token: str, app_client: httpx.AsyncClient
) -> None:
    good = {"Authorization": f"Bearer {agent_token}", "Content-Encoding": "gzip"}
    t = int(time.time() * 1000)
    cases: list[tuple[dict[str, str], bytes]] = [
        ({**good, "Authorization": "Bearer not-a-token"}, gzip_batch(body(1, t))),
        (good, b"not gzip"),
        (good, gzip.compress(b"{not json")),
        (good, gzip_batch(body(1, t, samples=[["x", {"asset": "1"}, 1]]))),
        (good, gzip_batch(body(1, t + 3_600_000))),
        (good, gzip.compress(b'{"v": 1, "pad": "' + b"a" * (17 * 1024 * 1024) + b'"}')),
        ({**good, "Content-Encoding": "br"}, gzip_batch(body(1, t))),
    ]

    async def main() -> None:
        async with app_client as client:
            for headers, data in cases:
                fast = await client.post("/api/v1/ingest/agent", content=data, headers=headers)
                route = await client.post("/api/v1/ingest/agent", content=_chunks(data), headers=headers)
                assert "content-length" not in route.request.headers
                assert (fast.status_code, fast.json()) == (route.status_code, route.json())
                assert fast.headers.get("www-authenticate") == route.headers.get("www-authenticate")
                assert fast.headers["content-type"] == route.headers["content-type"] == "application/json"
                assert fast.status_code in (401, 413, 422), fast.text
            # stored through either; a replay is a duplicate through the other
            fast = await client.post("/api/v1/ingest/agent", content=gzip_batch(body(1, t)), headers=good)
            route = await client.post(
                "/api/v1/ingest/agent", content=_chunks(gzip_batch(body(1, t))), headers=good
            )
            assert fast.json() == {"accepted": 1, "duplicate": False, "samples": 2, "events": 0}
            assert route.json() == {"accepted": 1, "duplicate": True, "samples": 0, "events": 0}
            # no token at all: left to the ordinary stack, where (without a session) CSRF refuses first
            none = await client.post("/api/v1/ingest/agent", content=gzip_batch(body(2, t)))
            assert none.status_code == 403 and "CSRF" in none.json()["detail"]
            # both are counted in the request figures
            figures = await client.get("/metrics")
            line = 'opsdesk_http_requests_total{method="POST",route="/api/v1/ingest/agent",status="422"}'
            assert f"{line} 10.0" in figures.text  # 5 such cases, each sent both ways

    asyncio.run(main())


def test_fast_path_takes_only_well_formed_agent_posts(runtime: Runtime, agent_token: str) -> None:
    from opsdesk.ingest.fastpath import IngestFastPath

    app = create_app(runtime)
    passed: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        passed.append(f"{scope['method']} {scope['path']}")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    fast = IngestFastPath(inner, app.state, app.state.figures)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=fast), base_url="http://agent.test")
    auth = {"Authorization": f"Bearer {agent_token}", "Content-Encoding": "gzip"}
    data = gzip_batch(body(1))

    async def main() -> list[int]:
        async with client:
            return [
                (await client.post("/api/v1/ingest/agent", content=data, headers=auth)).status_code,
                (await client.post("/api/v1/ingest/agent", content=data)).status_code,
                (await client.post("/api/v1/ingest/agent", content=_chunks(data), headers=auth)).status_code,
                (await client.post("/api/v1/ingest/agent/", content=data, headers=auth)).status_code,
                (await client.get("/api/v1/ingest/agent", headers=auth)).status_code,
            ]

    try:
        statuses = asyncio.run(main())
    finally:
        app.state.ingest_writer.close()
    assert statuses == [200, 204, 204, 204, 204]
    assert passed == ["POST /api/v1/ingest/agent"] * 2 + [
        "POST /api/v1/ingest/agent/",
        "GET /api/v1/ingest/agent",
    ]


def test_reply_json_is_reply() -> None:
    for result in (service.IngestResult(3, False, 91, 2), service.IngestResult(4, True, 0, 0)):
        assert json.loads(result.reply_json()) == result.reply()


def test_check_results_of_assigned_monitors_are_recorded(
    world: World, live: LiveServer, runtime: Runtime
) -> None:
    from opsdesk.monitors.models import Monitor, Runner

    with runtime.sessions.begin() as s:
        monitor = s.get(Monitor, world.a.monitor)
        assert monitor is not None
        monitor.runner, monitor.agent_asset_id = Runner.agent, world.a.asset
    admin = live.login(world.admin, PASSWORD)
    token = admin.post(f"/api/v1/assets/{world.a.asset}/agent-tokens", json={"name": "a"}).json()["token"]
    t = int(time.time() * 1000)
    result = {"t": t, "ok": False, "code": "refused", "message": "connection refused", "metrics": {"ms": 3.5}}
    batch = body(1, t, check_results=[{"monitor": world.a.monitor, **result}, {"monitor": 999_999, **result}])
    resp = httpx.post(
        f"{live.url}/api/v1/ingest/agent",
        content=gzip_batch(batch),
        headers={"Authorization": f"Bearer {token}", "Content-Encoding": "gzip"},
    )
    assert resp.status_code == 200, resp.text
    with runtime.sessions() as s:
        monitor = s.get(Monitor, world.a.monitor)
        assert monitor is not None and monitor.last_result is not None
        assert monitor.last_result["code"] == "refused" and monitor.state.value == "down"
    up = runtime.metrics.latest([Matcher.name("check_up"), Matcher.eq("monitor", str(world.a.monitor))])
    assert [(x.t, x.value) for x in up] == [(t, 0.0)]
    assert not runtime.metrics.latest([Matcher.eq("monitor", "999999")])  # not this agent's check


def test_large_batches_are_validated_off_the_event_loop_with_the_same_answers(
    world: World, runtime: Runtime, agent_token: str, app_client: httpx.AsyncClient
) -> None:
    from opsdesk.ingest.api import INLINE_BODY_BYTES, INLINE_JSON_BYTES

    t = int(time.time() * 1000)
    many = [["load1", {"i": str(i), "h": f"{i * 7919:x}"}, i * 0.37] for i in range(19_000)]
    large = gzip_batch(body(1, t, samples=many))
    assert len(large) > INLINE_BODY_BYTES and len(json.dumps(many)) > INLINE_JSON_BYTES
    bad = gzip_batch(body(2, t, samples=[*many, ["x", {"customer": "1"}, 1.0]]))
    auth = {"Authorization": f"Bearer {agent_token}", "Content-Encoding": "gzip"}

    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with app_client as client:
            ok = await client.post("/api/v1/ingest/agent", content=large, headers=auth)
            refused = await client.post("/api/v1/ingest/agent", content=bad, headers=auth)
            return ok, refused

    ok, refused = asyncio.run(main())
    assert ok.json() == {"accepted": 1, "duplicate": False, "samples": 19_000, "events": 0}
    assert refused.status_code == 422
    assert refused.json()["detail"] == "samples[19000]: label name 'customer' is reserved or invalid"


def test_usual_batches_take_the_msgspec_path() -> None:
    now = int(time.time() * 1000)
    events = [{"t": now, "kind": "reboot", "attrs": {}}]
    usual = raw(events=events, top={"cpu": []}, inventory={"os": "linux"})
    assert service._decode_fast(usual, LIMITS.max_labels, None) is not None
    # check results, refusals and unknown metric names are left to pydantic
    result = {"monitor": 1, "t": now, "ok": True, "code": "ok", "message": "fine"}
    assert service._decode_fast(raw(check_results=[result]), LIMITS.max_labels, None) is None
    assert service._decode_fast(raw(v=3), LIMITS.max_labels, None) is None
    assert service._decode_fast(raw(samples=[["9bad", {}, 1]]), LIMITS.max_labels, None) is None


def test_token_misses_in_one_turn_are_looked_up_together(
    world: World, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi import HTTPException

    from opsdesk.ingest import api

    with runtime.sessions.begin() as s:
        admin = create_user(s, "lookup-admin", "lookup-admin-password", Role.admin)
        issued = [tokens.issue(s, admin, f"a{i}", [Scope.write], asset_id=world.a.asset) for i in range(3)]
        plain = [token for _, token in issued]
        _, not_agent = tokens.issue(s, admin, "api", [Scope.write])
    queries: list[list[str]] = []
    real = api._token_rows

    def counted(rt: Runtime, keys: list[str]) -> dict[str, Any]:
        queries.append(keys)
        return real(rt, keys)

    monkeypatch.setattr(api, "_token_rows", counted)

    async def main() -> list[Any]:
        calls = [api._authorise_async(runtime, t) for t in [*plain, plain[0], "nope", not_agent]]
        return await asyncio.gather(*calls, return_exceptions=True)

    api._cache._entries.clear()
    answers = asyncio.run(main())
    assert len(queries) == 1 and len(queries[0]) == 5  # one query, each digest once
    assert answers[:4] == [AssetRef(world.a.asset, world.a.customer)] * 4
    assert isinstance(answers[4], HTTPException) and answers[4].status_code == 401
    assert isinstance(answers[5], HTTPException) and answers[5].status_code == 403
    # the sync path (agent_monitors) gives the same answers
    with pytest.raises(HTTPException) as refused:
        api._authorise(runtime, "nope")
    assert refused.value.status_code == 401
