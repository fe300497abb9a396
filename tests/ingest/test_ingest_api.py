"""The agent endpoint over HTTP: good, malformed, oversized, skewed and replayed batches."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from opsdesk.core.runtime import Runtime
from opsdesk.hosts.models import HostEvent
from opsdesk.ingest.service import gzip_batch
from opsdesk.metrics import Matcher
from tests.conftest import LiveServer
from tests.world import PASSWORD, World


def batch(seq: int, t_ms: int | None = None, **over: Any) -> dict[str, Any]:
    t = t_ms if t_ms is not None else int(time.time() * 1000)
    body: dict[str, Any] = {
        "v": 1,
        "seq": seq,
        "instance": "test-instance",
        "t": t,
        "interval": 15,
        "agent": {"version": "0.1.0", "hostname": "web-a"},
        "samples": [["load1", {}, 0.5 + seq], ["cpu_usage_percent", {"mode": "user"}, 12.5]],
        "events": [],
        "inventory": None,
        "top": None,
        "dropped": 0,
    }
    body.update(over)
    return body


@pytest.fixture
def agent(world: World, live: LiveServer) -> httpx.Client:
    admin = live.login(world.admin, PASSWORD)
    resp = admin.post(f"/api/v1/assets/{world.a.asset}/agent-tokens", json={"name": "web-a"})
    assert resp.status_code == 201, resp.text
    return httpx.Client(
        base_url=live.url,
        headers={"Authorization": f"Bearer {resp.json()['token']}", "Content-Encoding": "gzip"},
    )


def post(agent: httpx.Client, body: dict[str, Any] | bytes) -> httpx.Response:
    data = body if isinstance(body, bytes) else gzip_batch(body)
    return agent.post("/api/v1/ingest/agent", content=data)


def stored(rt: Runtime, asset: int) -> int:
    return sum(len(r.points) for r in rt.metrics.read_range([Matcher.eq("asset", str(asset))], 0, 2**62, 1))


def test_a_good_batch_is_stored_with_server_side_labels(
    world: World, agent: httpx.Client, runtime: Runtime
) -> None:
    resp = post(agent, batch(1, events=[{"t": int(time.time() * 1000), "kind": "reboot", "attrs": {}}]))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 1, "duplicate": False, "samples": 2, "events": 1}
    keys = runtime.metrics.series([Matcher.eq("asset", str(world.a.asset))])
    assert {k.name for k in keys} == {"load1", "cpu_usage_percent"}
    assert all(k.get("customer") == str(world.a.customer) for k in keys)


def test_replayed_batch_is_not_stored_twice(world: World, agent: httpx.Client, runtime: Runtime) -> None:
    first = batch(1, events=[{"t": int(time.time() * 1000), "kind": "reboot", "attrs": {}}])
    assert post(agent, first).json()["duplicate"] is False
    again = post(agent, first)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert stored(runtime, world.a.asset) == 2
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(HostEvent)) == 1
    # a new install of the agent (new instance id) starts its numbers again and is accepted
    fresh = post(agent, batch(1, t_ms=first["t"] + 15_000, instance="reinstalled"))
    assert fresh.json()["duplicate"] is False and stored(runtime, world.a.asset) == 4


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"not gzip at all", 422, "gzip"),
        (gzip.compress(b"{not json"), 422, "JSON"),
        (gzip.compress(json.dumps({"v": 1}).encode()), 422, "seq"),
        (gzip.compress(json.dumps(batch(1, v=3)).encode()), 422, "v"),
        # version 2 sends series and values, not samples
        (gzip.compress(json.dumps(batch(1, v=2)).encode()), 422, "unknown field `samples`"),
        (gzip.compress(json.dumps(batch(1, samples=[["bad name", {}, 1]])).encode()), 422, "samples"),
        (gzip.compress(json.dumps(batch(1, samples=[["x", {}, "NaN"]])).encode()), 422, "samples"),
        (gzip.compress(json.dumps(batch(1, samples=[["x", {"asset": "99"}, 1]])).encode()), 422, "reserved"),
        (
            gzip.compress(
                json.dumps(batch(1, samples=[["x", {f"l{i}": "v" for i in range(17)}, 1]])).encode()
            ),
            422,
            "labels",
        ),
        (gzip.compress(json.dumps(batch(1, events=[{"t": 1, "kind": "bogus"}])).encode()), 422, "kind"),
    ],
)
def test_malformed_batches_are_refused_and_nothing_is_stored(
    world: World, agent: httpx.Client, runtime: Runtime, body: bytes, status: int, message: str
) -> None:
    resp = post(agent, body)
    assert resp.status_code == status, resp.text
    assert message in resp.json()["detail"]
    assert stored(runtime, world.a.asset) == 0


def test_clock_skew_is_refused_with_a_clear_message(
    world: World, agent: httpx.Client, runtime: Runtime
) -> None:
    ahead = post(agent, batch(1, t_ms=int(time.time() * 1000) + 3600_000))
    assert ahead.status_code == 422 and "future" in ahead.json()["detail"] and "NTP" in ahead.json()["detail"]
    behind = post(agent, batch(2, t_ms=int(time.time() * 1000) - 30 * 86400_000))
    assert behind.status_code == 422 and "past" in behind.json()["detail"]
    assert stored(runtime, world.a.asset) == 0


def test_oversized_batches_are_refused(world: World, agent: httpx.Client, runtime: Runtime) -> None:
    many = batch(1, samples=[["load1", {"i": str(i)}, 1.0] for i in range(20_001)])
    too_many = post(agent, many)
    assert too_many.status_code == 422 and "at most 20000" in too_many.json()["detail"]
    # a gzip bomb: small on the wire, huge inflated
    bomb = gzip.compress(b'{"v": 1, "pad": "' + b"a" * (20 * 1024 * 1024) + b'"}')
    assert len(bomb) < 2 * 1024 * 1024
    resp = post(agent, bomb)
    assert resp.status_code == 413 and "decompressed" in resp.json()["detail"]
    assert stored(runtime, world.a.asset) == 0


def test_agent_tokens_push_only_and_can_be_revoked(
    world: World, live: LiveServer, agent: httpx.Client
) -> None:
    # good for nothing but ingest
    assert agent.get(f"/api/v1/assets/{world.a.asset}").status_code == 401
    # a normal user token is not an agent token
    user_token = live.login(world.admin, PASSWORD).post("/api/v1/tokens", json={"name": "x"}).json()["token"]
    plain = httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {user_token}"})
    assert plain.post("/api/v1/ingest/agent", content=gzip_batch(batch(1))).status_code == 403
    # revoking stops the agent's data
    admin = live.login(world.admin, PASSWORD)
    agent_tokens = [t for t in admin.get("/api/v1/tokens").json() if t["name"] == "web-a"]
    assert admin.delete(f"/api/v1/tokens/{agent_tokens[0]['id']}").status_code == 204
    assert post(agent, batch(1)).status_code == 401


def test_only_admins_issue_agent_tokens(world: World, live: LiveServer) -> None:
    eng = live.login(world.engineer_a, PASSWORD)
    assert eng.post(f"/api/v1/assets/{world.a.asset}/agent-tokens", json={}).status_code == 403
