"""The agent endpoint: agent tokens only, one batch per request, all or nothing."""

from __future__ import annotations

import asyncio
import time
import weakref
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from starlette.datastructures import State

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
from opsdesk.monitors.secrets import reveal
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


_TOKEN_ROWS = select(
    ApiToken.token_hash, ApiToken.asset_id, ApiToken.revoked_at, ApiToken.expires_at, Asset.customer_id
).outerjoin(Asset, Asset.id == ApiToken.asset_id)


def _token_rows(rt: Runtime, keys: list[str]) -> dict[str, Any]:
    """Token rows by digest. A Core query on a pooled connection: an ORM session costs 3x."""
    rows: dict[str, Any] = {}
    with rt.engine.connect() as conn:
        for i in range(0, len(keys), 500):  # well within every database's limit of parameters
            chunk = _TOKEN_ROWS.where(ApiToken.token_hash.in_(keys[i : i + 500]))
            rows.update((r.token_hash, r) for r in conn.execute(chunk))
    return rows


def _authorise(rt: Runtime, token: str) -> AssetRef:
    now = utcnow()
    key = digest(token)
    cached = _cache.get(key, now)
    if cached is not None:
        return cached
    return _admit(key, _token_rows(rt, [key]).get(key), now)


class TokenLookups:
    """Token digests missing from the cache, looked up together: one query and one hop to a
    worker thread for all the requests that missed in the same turn of the event loop (one
    instance per event loop and runtime).

    Agents post every 15 s and the cache keeps a token 10 s, so nearly every batch misses; a
    query and a thread hop per batch took about 8 % of the server's time under load.
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._waiting: dict[str, asyncio.Future[Any]] = {}

    async def row(self, key: str) -> Any:
        future = self._waiting.get(key)
        if future is None:
            if not self._waiting:
                asyncio.get_running_loop().call_soon(self._flush)
            future = self._waiting[key] = asyncio.get_running_loop().create_future()
        return await asyncio.shield(future)  # one request going away does not cancel the others

    def _flush(self) -> None:
        waiting, self._waiting = self._waiting, {}
        task = asyncio.ensure_future(run_in_threadpool(_token_rows, self.rt, list(waiting)))
        task.add_done_callback(lambda done: _settle(waiting, done))


def _settle(waiting: dict[str, asyncio.Future[Any]], done: asyncio.Future[dict[str, Any]]) -> None:
    failure = asyncio.CancelledError() if done.cancelled() else done.exception()
    for key, future in waiting.items():
        if future.done():
            continue
        if failure is not None:
            future.set_exception(failure)
        else:
            future.set_result(done.result().get(key))


_lookups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, TokenLookups]] = (
    weakref.WeakKeyDictionary()
)


async def _authorise_async(rt: Runtime, token: str) -> AssetRef:
    """As _authorise, from a coroutine: misses are looked up together (TokenLookups)."""
    key = digest(token)
    by_runtime = _lookups.setdefault(asyncio.get_running_loop(), {})
    lookups = by_runtime.get(id(rt))  # the instance keeps its runtime alive: the id stays its own
    if lookups is None:
        lookups = by_runtime[id(rt)] = TokenLookups(rt)
    row = await lookups.row(key)
    return _admit(key, row, utcnow())


def _admit(key: str, row: Any, now: datetime) -> AssetRef:
    """The token's asset from its row (None: no such token), or the HTTP refusal; cached."""
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise HTTPException(401, "unknown, revoked or expired token", headers={"WWW-Authenticate": "Bearer"})
    if row.asset_id is None:
        raise HTTPException(403, "not an agent token: issue one for the host's asset")
    if row.customer_id is None:
        raise HTTPException(403, "the token's asset no longer exists")
    ref = AssetRef(row.asset_id, row.customer_id)
    _cache.put(key, ref, row.expires_at)
    return ref


def _authorise_cached(token: str) -> AssetRef | None:
    """The token's asset if the cache holds it: no database, so no thread needed."""
    return _cache.get(digest(token), utcnow())


# A usual batch is 2-4 KB gzipped, 10-30 KB of JSON, and is validated on the event loop in a
# fraction of a millisecond: less than a hop to a worker thread and back (which would hold the
# GIL all the same). A large one goes to a thread, so that it cannot stall the loop.
INLINE_BODY_BYTES = 64 * 1024
INLINE_JSON_BYTES = 512 * 1024


def _inflate(rt: Runtime, body: bytes, encoding: str) -> bytes:
    try:
        return decompress(body, encoding, rt.settings.ingest.max_decompressed_bytes)
    except PayloadTooLarge as exc:
        raise HTTPException(413, str(exc)) from exc
    except BatchRejected as exc:
        raise HTTPException(422, str(exc)) from exc


def _parse(rt: Runtime, raw: bytes, asset_id: int) -> AgentBatch:
    try:
        return parse(raw, rt.settings.ingest, int(time.time() * 1000), asset_id)
    except BatchRejected as exc:
        raise HTTPException(422, str(exc)) from exc


async def _validate(rt: Runtime, body: bytes, encoding: str, asset_id: int) -> AgentBatch:
    if len(body) > INLINE_BODY_BYTES:
        raw = await run_in_threadpool(_inflate, rt, body, encoding)
    else:
        raw = _inflate(rt, body, encoding)
    if len(raw) > INLINE_JSON_BYTES:
        return await run_in_threadpool(_parse, rt, raw, asset_id)
    return _parse(rt, raw, asset_id)


async def take_batch(state: State, auth: str, body: bytes, encoding: str) -> bytes:
    """Authorise, validate and store one batch; the JSON answer, or an HTTPException.

    Shared by the route below and the fast path in front of the middleware (fastpath.py).
    """
    rt: Runtime = state.runtime
    writer: IngestWriter = state.ingest_writer
    if not auth.lower().startswith("bearer "):
        raise HTTPException(401, "agent token required", headers={"WWW-Authenticate": "Bearer"})
    if len(body) > rt.settings.ingest.max_body_bytes:
        raise HTTPException(413, f"body over {rt.settings.ingest.max_body_bytes} bytes; send smaller batches")
    token = auth[7:].strip()
    asset = _authorise_cached(token)
    if asset is None:
        asset = await _authorise_async(rt, token)
    batch = await _validate(rt, body, encoding.lower(), asset.id)
    try:
        result = await writer.run((asset, batch))
        if batch.check_results and not result.duplicate:
            await record_agent_checks(state, asset, batch)
        if not result.duplicate:
            state.alert_trigger.touch(asset.id)
    except Exception as exc:
        raise HTTPException(503, "could not store the batch; it is safe to resend") from exc
    return result.reply_json()


@router.post(
    "/agent",
    openapi_extra={
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}, "required": True}
    },
)
async def ingest_agent_batch(request: Request) -> Response:
    """Push one agent batch (gzip-compressed JSON, `Content-Encoding: gzip`). See docs/agent.md."""
    auth = request.headers.get("authorization", "")
    body = await request.body() if auth.lower().startswith("bearer ") else b""
    answer = await take_batch(request.app.state, auth, body, request.headers.get("content-encoding", ""))
    return Response(answer, media_type="application/json")


def _assigned(rt: Runtime, asset: AssetRef) -> dict[int, Monitor]:
    with rt.sessions() as session:
        rows = session.scalars(
            select(Monitor).where(
                Monitor.agent_asset_id == asset.id, Monitor.runner == Runner.agent, Monitor.enabled
            )
        )
        return {m.id: m for m in rows}


async def record_agent_checks(state: State, asset: AssetRef, batch: AgentBatch) -> None:
    """Results of checks assigned to this agent; results for other monitors are ignored."""
    rt: Runtime = state.runtime
    assigned = await run_in_threadpool(_assigned, rt, asset)
    futures = [
        state.probe.writer.submit(
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
    # Secrets are stored encrypted (monitors/secrets.py); the agent gets them plain over its own channel.
    return [{"id": m.id, "type": m.type, "config": reveal(m.config)} for m in assigned.values()]
