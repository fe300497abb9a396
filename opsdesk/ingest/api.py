"""The agent endpoint: agent tokens only, one batch per request, all or nothing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from opsdesk.accounts import tokens
from opsdesk.accounts.models import ApiToken
from opsdesk.accounts.tokens import digest
from opsdesk.core.db import utcnow
from opsdesk.core.runtime import Runtime
from opsdesk.ingest.schema import AgentBatch
from opsdesk.ingest.service import BatchRejected, PayloadTooLarge, decompress, parse
from opsdesk.ingest.writer import AssetRef, IngestWriter
from opsdesk.monitors.checks.base import CheckResult, Series
from opsdesk.monitors.models import Monitor, Runner
from opsdesk.monitors.results import Outcome
from opsdesk.tenancy.models import Asset

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])


class TokenCache:
    """Agent token -> asset, for a few seconds: the lookup was a tenth of each batch's cost.

    A revocation in this process empties the cache at once; one made by another process (a
    second web server, the CLI) takes effect within TTL_S.
    """

    TTL_S = 10.0

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, AssetRef, datetime | None]] = {}
        self._epoch = tokens.revocations

    def get(self, digest_: str, now: datetime) -> AssetRef | None:
        if self._epoch != tokens.revocations:
            self._entries.clear()
            self._epoch = tokens.revocations
        entry = self._entries.get(digest_)
        if entry is None or entry[0] < time.monotonic() or (entry[2] is not None and entry[2] <= now):
            return None
        return entry[1]

    def put(self, digest_: str, ref: AssetRef, expires_at: datetime | None) -> None:
        if len(self._entries) > 100_000:
            self._entries.clear()
        self._entries[digest_] = (time.monotonic() + self.TTL_S, ref, expires_at)


_cache = TokenCache()


def _authorise(rt: Runtime, token: str) -> AssetRef:
    now = utcnow()
    key = digest(token)
    cached = _cache.get(key, now)
    if cached is not None:
        return cached
    # A Core query on a pooled connection: this runs for every batch, an ORM session costs 3x.
    with rt.engine.connect() as conn:
        row = conn.execute(
            select(ApiToken.asset_id, ApiToken.revoked_at, ApiToken.expires_at, Asset.customer_id)
            .outerjoin(Asset, Asset.id == ApiToken.asset_id)
            .where(ApiToken.token_hash == key)
        ).first()
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise HTTPException(401, "unknown, revoked or expired token", headers={"WWW-Authenticate": "Bearer"})
    if row.asset_id is None:
        raise HTTPException(403, "not an agent token: issue one for the host's asset")
    if row.customer_id is None:
        raise HTTPException(403, "the token's asset no longer exists")
    ref = AssetRef(row.asset_id, row.customer_id)
    _cache.put(key, ref, row.expires_at)
    return ref


def _check(rt: Runtime, token: str, body: bytes, encoding: str) -> tuple[AssetRef, AgentBatch]:
    asset = _authorise(rt, token)
    limits = rt.settings.ingest
    try:
        raw = decompress(body, encoding, limits.max_decompressed_bytes)
        return asset, parse(raw, limits, int(utcnow().timestamp() * 1000))
    except PayloadTooLarge as exc:
        raise HTTPException(413, str(exc)) from exc
    except BatchRejected as exc:
        raise HTTPException(422, str(exc)) from exc


@router.post(
    "/agent",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}
    },
)
async def ingest_agent_batch(request: Request) -> dict[str, Any]:
    """Push one agent batch (gzip-compressed JSON, `Content-Encoding: gzip`). See docs/agent.md."""
    rt: Runtime = request.app.state.runtime
    writer: IngestWriter = request.app.state.ingest_writer
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        raise HTTPException(401, "agent token required", headers={"WWW-Authenticate": "Bearer"})
    body = await request.body()
    if len(body) > rt.settings.ingest.max_body_bytes:
        raise HTTPException(413, f"body over {rt.settings.ingest.max_body_bytes} bytes; send smaller batches")
    encoding = request.headers.get("content-encoding", "").lower()
    asset, batch = await run_in_threadpool(_check, rt, auth[7:].strip(), body, encoding)
    try:
        result = await asyncio.wrap_future(writer.submit((asset, batch)))
        if batch.check_results and not result.duplicate:
            await record_agent_checks(request, asset, batch)
        if not result.duplicate:
            request.app.state.alert_trigger.touch(asset.id)
    except Exception as exc:
        raise HTTPException(503, "could not store the batch; it is safe to resend") from exc
    return result.reply()


def _assigned(rt: Runtime, asset: AssetRef) -> dict[int, Monitor]:
    with rt.sessions() as session:
        rows = session.scalars(
            select(Monitor).where(
                Monitor.agent_asset_id == asset.id, Monitor.runner == Runner.agent, Monitor.enabled
            )
        )
        return {m.id: m for m in rows}


async def record_agent_checks(request: Request, asset: AssetRef, batch: AgentBatch) -> None:
    """Results of checks assigned to this agent; results for other monitors are ignored."""
    rt: Runtime = request.app.state.runtime
    assigned = await run_in_threadpool(_assigned, rt, asset)
    futures = [
        request.app.state.probe.writer.submit(
            Outcome(
                r.monitor,
                datetime.fromtimestamp(r.t / 1000, UTC),
                CheckResult(
                    r.ok,
                    r.code,
                    r.message,
                    r.metrics,
                    [Series(name, labels, value) for name, labels, value in r.series],
                    r.status,
                ),
            )
        )
        for r in batch.check_results
        if r.monitor in assigned
    ]
    for future in futures:
        await asyncio.wrap_future(future)


@router.get("/agent/monitors")
async def agent_monitors(request: Request) -> list[dict[str, Any]]:
    """The checks this agent runs inside its network: id, type and validated configuration."""
    rt: Runtime = request.app.state.runtime
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        raise HTTPException(401, "agent token required", headers={"WWW-Authenticate": "Bearer"})
    asset = await run_in_threadpool(_authorise, rt, auth[7:].strip())
    assigned = await run_in_threadpool(_assigned, rt, asset)
    return [{"id": m.id, "type": m.type, "config": m.config} for m in assigned.values()]
